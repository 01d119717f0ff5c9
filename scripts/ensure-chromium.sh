#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (a Playwright browser download is not possible
# everywhere). Install it when missing and we are allowed to; otherwise those tests skip.
# A CJK font (WenQuanYi Micro Hei, 5 MB) lets the Chinese workbench screenshots show text.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
if ! fc-list :lang=zh 2>/dev/null | grep -q .; then
  need+=(fonts-wqy-microhei)
fi
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing ${need[*]} for the browser tests"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "note: ${need[*]} missing and cannot be installed here; browser tests may skip" >&2
fi
