"""The deployment files name only settings that exist (a typo in an environment variable is
silently ignored by the service, so it is caught here)."""

from __future__ import annotations

import re

import yaml

from claims_api.config import Settings
from tests.support.paths import REPO


def test_compose_sets_only_real_settings_and_runs_the_scale_out_layout():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "minio", "app-1", "app-2", "worker", "proxy", "migrate"} <= set(services)
    known = {f"FRESHCLAIM_{name.upper()}" for name in Settings.model_fields}
    for name, service in services.items():
        environment = service.get("environment") or {}
        unknown = {k for k in environment if k.startswith("FRESHCLAIM_")} - known
        assert not unknown, (name, unknown)
    for replica in ("app-1", "app-2"):
        assert services[replica]["environment"]["FRESHCLAIM_BACKGROUND_WORKERS"] == "false"
    assert services["worker"]["command"] == ["freshclaim", "worker"]


def test_the_proxy_balances_both_replicas():
    conf = (REPO / "deploy" / "nginx.conf").read_text()
    assert set(re.findall(r"server (app-\d):8000", conf)) == {"app-1", "app-2"}


def test_the_image_is_multi_stage_non_root_and_checks_its_health():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.M)) >= 2
    assert re.search(r"^USER (?!root|0\b)", dockerfile, re.M)
    assert "HEALTHCHECK" in dockerfile
