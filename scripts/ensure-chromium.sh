#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (a Playwright browser download is not possible
# everywhere). Install it when missing and we are allowed to; otherwise those tests skip.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium for the browser tests"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "note: /usr/bin/chromium is missing and cannot be installed here; browser tests will skip" >&2
fi
