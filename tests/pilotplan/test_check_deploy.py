"""``DEBUG=false`` alone gives a deployment that passes ``manage.py check --deploy``."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Overrides a developer or make test may have set; production must not depend on them.
_OVERRIDES = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    # tests/conftest.py sets it for Playwright; async.E001 rightly flags it in a deployment.
    "DJANGO_ALLOW_ASYNC_UNSAFE",
}


def check_deploy(**variables: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _OVERRIDES}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "pilotplan.settings",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(64),  # 86 random characters
            "ALLOWED_HOSTS": "pilotplan.example.com",
        }
    )
    env.update(variables)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_defaults_pass_the_deployment_checklist():
    result = check_deploy()

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_checklist_really_runs_and_flags_hsts_turned_off():
    result = check_deploy(SECURE_HSTS_SECONDS="0")

    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout
