"""Settings come from the environment and a bad value stops start-up with a message naming it.

Each case starts a fresh interpreter that configures Django (``django.setup()``) with the test
run's environment plus the variables under test, the same way a web or worker process starts.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from pilotplan.env import envbool, envint, envlist, envstr, envtimezone, envurl

ROOT = Path(__file__).resolve().parents[2]

# Variables the test process may carry (make test sets DEBUG=true) that would change the outcome.
_SETTINGS_VARS = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "TIME_ZONE",
    "EMAIL_BACKEND",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
    "EMAIL_TIMEOUT",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "DATABASE_CONN_MAX_AGE",
    "DATABASE_PREPARED_STATEMENTS",
    "CELERY_TASK_TIME_LIMIT",
    "CELERY_TASK_SOFT_TIME_LIMIT",
    "HEALTHZ_HEARTBEAT_MAX_AGE",
}


def production_env() -> dict[str, str]:
    """A complete, valid production environment (DEBUG off, a long random key)."""
    return {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "pilotplan.example.com",
    }


def django_setup(**variables: str) -> subprocess.CompletedProcess[str]:
    """Configure Django in a new process with ``variables`` on top of this run's environment."""
    env = {k: v for k, v in os.environ.items() if k not in _SETTINGS_VARS}
    env["DJANGO_SETTINGS_MODULE"] = "pilotplan.settings"
    env.update(variables)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def startup_error(result: subprocess.CompletedProcess[str]) -> str:
    """The ImproperlyConfigured message the process died with."""
    assert result.returncode != 0, "Django started although the configuration is invalid"
    last_line = result.stderr.strip().splitlines()[-1]
    prefix = "django.core.exceptions.ImproperlyConfigured: "
    assert last_line.startswith(prefix), result.stderr
    return last_line.removeprefix(prefix)


# --- start-up in a fresh process -----------------------------------------------------------------


def test_valid_production_environment_starts():
    result = django_setup(**production_env())

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("raw", "threshold"), [(None, "5"), ("false", "None")])
def test_prepared_statements_can_be_turned_off(raw, threshold):
    variables = {"DATABASE_PREPARED_STATEMENTS": raw} if raw else {}
    env = {k: v for k, v in os.environ.items() if k not in _SETTINGS_VARS}
    env.update(production_env(), DJANGO_SETTINGS_MODULE="pilotplan.settings", **variables)
    read = "from django.conf import settings as s; print(s.DATABASES['default']['OPTIONS']"
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {read}['prepare_threshold'])"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == threshold, result.stderr


def test_debug_that_is_not_a_boolean_is_refused():
    message = startup_error(django_setup(**{**production_env(), "DEBUG": "maybe"}))

    assert "DEBUG" in message
    assert "'maybe'" in message


def test_production_without_secret_key_is_refused():
    env = production_env()
    del env["SECRET_KEY"]

    message = startup_error(django_setup(**env))

    assert "SECRET_KEY is required" in message


def test_production_with_short_secret_key_is_refused():
    message = startup_error(django_setup(**{**production_env(), "SECRET_KEY": "x" * 49}))

    assert "SECRET_KEY" in message
    assert "50" in message


def test_production_with_the_development_secret_key_is_refused():
    key = "django-insecure-local-development-only"

    message = startup_error(django_setup(**{**production_env(), "SECRET_KEY": key}))

    assert "SECRET_KEY" in message


def test_debug_runs_without_a_secret_key():
    result = django_setup(DEBUG="true")

    assert result.returncode == 0, result.stderr


def test_database_other_than_postgresql_is_refused():
    env = {**production_env(), "DATABASE_URL": "mysql://root@127.0.0.1:3306/pilotplan"}

    message = startup_error(django_setup(**env))

    assert "DATABASE_URL" in message
    assert "postgres" in message


def test_redis_url_with_another_scheme_is_refused():
    env = {**production_env(), "REDIS_URL": "http://127.0.0.1:6379/0"}

    message = startup_error(django_setup(**env))

    assert "REDIS_URL" in message
    assert "redis" in message


def test_unknown_time_zone_is_refused():
    message = startup_error(django_setup(**{**production_env(), "TIME_ZONE": "Mars/Olympus"}))

    assert "TIME_ZONE" in message
    assert "Mars/Olympus" in message


def test_email_port_that_is_not_a_number_is_refused():
    message = startup_error(django_setup(**{**production_env(), "EMAIL_PORT": "abc"}))

    assert "EMAIL_PORT" in message


def test_email_tls_and_ssl_together_are_refused():
    env = {**production_env(), "EMAIL_USE_TLS": "true", "EMAIL_USE_SSL": "true"}

    message = startup_error(django_setup(**env))

    assert "EMAIL_USE_TLS" in message
    assert "EMAIL_USE_SSL" in message


# --- the helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        (" yes ", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
        ("", False),
    ],
)
def test_envbool_reads_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("PILOTPLAN_TEST_FLAG", raw)

    assert envbool("PILOTPLAN_TEST_FLAG", not expected) is expected


@pytest.mark.parametrize("default", [True, False])
def test_envbool_unset_is_the_default(monkeypatch, default):
    monkeypatch.delenv("PILOTPLAN_TEST_FLAG", raising=False)

    assert envbool("PILOTPLAN_TEST_FLAG", default) is default


def test_envbool_refuses_anything_else(monkeypatch):
    monkeypatch.setenv("PILOTPLAN_TEST_FLAG", "enabled")

    with pytest.raises(ImproperlyConfigured, match=r"PILOTPLAN_TEST_FLAG='enabled'"):
        envbool("PILOTPLAN_TEST_FLAG", False)


def test_envint_reads_a_whole_number(monkeypatch):
    monkeypatch.setenv("PILOTPLAN_TEST_INT", "587")

    assert envint("PILOTPLAN_TEST_INT", 25) == 587


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_envint_unset_or_blank_is_the_default(monkeypatch, raw):
    if raw is None:
        monkeypatch.delenv("PILOTPLAN_TEST_INT", raising=False)
    else:
        monkeypatch.setenv("PILOTPLAN_TEST_INT", raw)

    assert envint("PILOTPLAN_TEST_INT", 25) == 25


@pytest.mark.parametrize("raw", ["abc", "2.5", "10s"])
def test_envint_refuses_a_non_number(monkeypatch, raw):
    monkeypatch.setenv("PILOTPLAN_TEST_INT", raw)

    with pytest.raises(ImproperlyConfigured, match=r"PILOTPLAN_TEST_INT.*not a whole number"):
        envint("PILOTPLAN_TEST_INT", 25)


def test_envint_refuses_a_value_below_the_minimum(monkeypatch):
    monkeypatch.setenv("PILOTPLAN_TEST_INT", "0")

    with pytest.raises(ImproperlyConfigured, match="PILOTPLAN_TEST_INT=0 must be at least 1"):
        envint("PILOTPLAN_TEST_INT", 25, minimum=1)


def test_envint_accepts_the_minimum_itself(monkeypatch):
    monkeypatch.setenv("PILOTPLAN_TEST_INT", "1")

    assert envint("PILOTPLAN_TEST_INT", 25, minimum=1) == 1


def test_envlist_splits_on_commas_and_drops_blanks(monkeypatch):
    monkeypatch.setenv("PILOTPLAN_TEST_LIST", " a.example.com, b.example.com,, ")

    assert envlist("PILOTPLAN_TEST_LIST", ["default"]) == ["a.example.com", "b.example.com"]


def test_envlist_unset_is_the_default_and_empty_is_empty(monkeypatch):
    monkeypatch.delenv("PILOTPLAN_TEST_LIST", raising=False)
    assert envlist("PILOTPLAN_TEST_LIST", ["default"]) == ["default"]

    monkeypatch.setenv("PILOTPLAN_TEST_LIST", "")
    assert envlist("PILOTPLAN_TEST_LIST", ["default"]) == []


def test_envstr_reads_the_value_or_the_default(monkeypatch):
    monkeypatch.delenv("PILOTPLAN_TEST_STR", raising=False)
    assert envstr("PILOTPLAN_TEST_STR", "fallback") == "fallback"

    monkeypatch.setenv("PILOTPLAN_TEST_STR", "value")
    assert envstr("PILOTPLAN_TEST_STR", "fallback") == "value"


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York"])
def test_envtimezone_accepts_iana_zones(monkeypatch, zone):
    monkeypatch.setenv("PILOTPLAN_TEST_TZ", zone)

    assert envtimezone("PILOTPLAN_TEST_TZ", "UTC") == zone


def test_envtimezone_unset_is_the_default(monkeypatch):
    monkeypatch.delenv("PILOTPLAN_TEST_TZ", raising=False)

    assert envtimezone("PILOTPLAN_TEST_TZ", "Asia/Tokyo") == "Asia/Tokyo"


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "Europe", "", "../../etc/passwd", "/etc/localtime"]
)
def test_envtimezone_refuses_anything_that_is_not_a_zone(monkeypatch, zone):
    monkeypatch.setenv("PILOTPLAN_TEST_TZ", zone)

    with pytest.raises(ImproperlyConfigured, match=r"PILOTPLAN_TEST_TZ.*not an IANA time zone"):
        envtimezone("PILOTPLAN_TEST_TZ", "UTC")


@pytest.mark.parametrize(
    "url", ["postgres://u@db:5432/app", "postgresql://u:p@db/app", "postgres://%2Ftmp/app"]
)
def test_envurl_accepts_the_allowed_schemes(monkeypatch, url):
    monkeypatch.setenv("PILOTPLAN_TEST_URL", url)

    assert envurl("PILOTPLAN_TEST_URL", None, schemes=("postgres", "postgresql")) == url


def test_envurl_unset_is_the_default(monkeypatch):
    monkeypatch.delenv("PILOTPLAN_TEST_URL", raising=False)

    assert envurl("PILOTPLAN_TEST_URL", "redis://r:6379/0", schemes=("redis",)) == (
        "redis://r:6379/0"
    )


@pytest.mark.parametrize("url", ["mysql://root@db/app", "sqlite:///db.sqlite3", "db:5432/app"])
def test_envurl_refuses_other_schemes(monkeypatch, url):
    monkeypatch.setenv("PILOTPLAN_TEST_URL", url)

    with pytest.raises(ImproperlyConfigured, match="PILOTPLAN_TEST_URL must start with"):
        envurl("PILOTPLAN_TEST_URL", None, schemes=("postgres", "postgresql"))


@pytest.mark.parametrize("raw", [None, ""])
def test_envurl_refuses_a_missing_value_without_default(monkeypatch, raw):
    if raw is None:
        monkeypatch.delenv("PILOTPLAN_TEST_URL", raising=False)
    else:
        monkeypatch.setenv("PILOTPLAN_TEST_URL", raw)

    with pytest.raises(ImproperlyConfigured, match="PILOTPLAN_TEST_URL is required"):
        envurl("PILOTPLAN_TEST_URL", None, schemes=("redis",))


def test_the_suite_runs_on_the_test_settings_with_a_cheap_password_hash() -> None:
    """``make test`` (scripts/dev.py) must not leave the production settings in effect: every role
    fixture sets a password, and the production hasher costs ~0.3 s each."""
    from django.contrib.auth.hashers import get_hasher

    assert os.environ["DJANGO_SETTINGS_MODULE"] == "pilotplan.settings_test"
    assert get_hasher().algorithm == "md5"
