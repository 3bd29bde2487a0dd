"""The deployment files keep the shape the README promises.

No Docker engine runs where the tests run, so docker-compose.yml is read as YAML and the Dockerfile
as text. None of these tests touch the database.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("web", "worker", "worker-triggers", "beat")


def compose() -> dict[str, Any]:
    # safe_load resolves the `<<: *app` merges, so each service shows its effective keys.
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def command_words(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else [str(word) for word in command]


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_compose_has_the_stores_the_migrate_job_and_the_app_processes() -> None:
    assert set(services()) == {
        "postgres", "redis", "migrate", "web", "worker", "worker-triggers", "beat"
    }  # fmt: skip
    assert services()["postgres"]["image"] == "postgres:15"
    assert services()["redis"]["image"] == "redis:7"


def test_app_processes_share_one_configuration_block() -> None:
    all_services = services()
    web = all_services["web"]
    for name in ("worker", "worker-triggers", "beat", "migrate"):
        other = all_services[name]
        assert other["image"] == web["image"] and other["build"] == web["build"], name
        # The very same object: the environment comes from the x-app anchor, not from a copy
        # that could drift.
        assert other["environment"] is web["environment"], name
    assert "x-app" in compose()


def test_app_environment_has_what_production_settings_require() -> None:
    environment = services()["web"]["environment"]
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"):
        assert environment.get(name), name
    assert str(environment["DEBUG"]).lower() == "false"
    # Required, never defaulted: compose refuses to start without it (${VAR:?message}).
    assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?")
    assert "@postgres:5432/" in environment["DATABASE_URL"]
    assert environment["REDIS_URL"].startswith("redis://redis:6379/")
    # Beat's state file must be writable by the non-root user, outside the read-only code folder.
    assert environment["CELERY_BEAT_SCHEDULE_FILENAME"].startswith("/tmp/")  # noqa: S108


def test_each_app_process_runs_its_own_command() -> None:
    all_services = services()
    web = command_words(all_services["web"])
    assert web[:2] == ["gunicorn", "pilotplan.wsgi:application"]
    assert "0.0.0.0:8000" in web
    for name in ("worker", "worker-triggers"):
        assert command_words(all_services[name])[:4] == ["celery", "-A", "pilotplan", "worker"]
    assert command_words(all_services["beat"])[:4] == ["celery", "-A", "pilotplan", "beat"]
    assert command_words(all_services["migrate"])[-2:] == ["migrate", "--noinput"]
    assert all_services["migrate"]["restart"] == "no"


def consumed_queues(service: dict[str, Any]) -> set[str]:
    """The queues a ``celery worker`` command consumes (``-Q a,b``; the default queue without)."""
    words = command_words(service)
    if "-Q" not in words:
        return {"celery"}
    return set(words[words.index("-Q") + 1].split(","))


def test_trigger_evaluation_has_a_worker_of_its_own() -> None:
    """A tick queues one check per running plan on the default queue; trigger evaluation (after
    every ingestion) and the tick itself are routed to "triggers", which one worker consumes
    and the default worker does not, so a breach never waits behind the checks."""
    from django.conf import settings

    routes = settings.CELERY_TASK_ROUTES
    assert routes["metrics.tasks.triggers_evaluate"]["queue"] == "triggers"
    assert routes["metrics.tasks.tick"]["queue"] == "triggers"
    workers = {
        name: consumed_queues(service)
        for name, service in services().items()
        if command_words(service)[:4] == ["celery", "-A", "pilotplan", "worker"]
    }
    assert workers == {
        "worker": {settings.CELERY_TASK_DEFAULT_QUEUE},
        "worker-triggers": {"triggers"},
    }
    # Every queue a task is routed to has a consumer.
    assert {route["queue"] for route in routes.values()} <= set().union(*workers.values())


def test_dev_run_starts_a_worker_for_each_queue() -> None:
    text = (ROOT / "scripts" / "dev.py").read_text()
    assert '"-Q", "celery",' in text and '"-Q", "triggers",' in text


def test_stores_and_web_have_healthchecks() -> None:
    all_services = services()
    assert "pg_isready" in " ".join(all_services["postgres"]["healthcheck"]["test"])
    assert "redis-cli ping" in " ".join(all_services["redis"]["healthcheck"]["test"])
    web_probe = " ".join(all_services["web"]["healthcheck"]["test"])
    # python's urllib, because the slim image has no curl.
    assert "urllib" in web_probe and "/healthz" in web_probe


def test_postgres_keeps_its_data_in_a_named_volume() -> None:
    volumes = services()["postgres"]["volumes"]
    named = [v.split(":", 1)[0] for v in volumes if v.endswith(":/var/lib/postgresql/data")]
    assert named and named[0] in compose()["volumes"]
    assert "--appendonly" in command_words(services()["redis"])


def test_app_processes_wait_for_healthy_stores_and_finished_migrations() -> None:
    all_services = services()
    for name in APP_SERVICES:
        depends_on = all_services[name]["depends_on"]
        assert depends_on["postgres"]["condition"] == "service_healthy", name
        assert depends_on["redis"]["condition"] == "service_healthy", name
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
    assert all_services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_there_is_exactly_one_beat() -> None:
    all_services = services()
    beats = [name for name, service in all_services.items() if "beat" in command_words(service)[:4]]
    assert beats == ["beat"]
    beat = all_services["beat"]
    assert int(beat.get("deploy", {}).get("replicas", 1)) == 1
    assert int(beat.get("scale", 1)) == 1


def test_compose_names_no_registry_host() -> None:
    # Plain image names resolve through the engine's configured registry; a host name here
    # would pin every deployment to one registry.
    for service in services().values():
        image = service["image"]
        first = image.split("/", 1)[0]
        assert "/" not in image or not ("." in first or ":" in first), image


def test_dockerfile_runs_as_non_root_and_installs_the_runtime_pins() -> None:
    text = dockerfile()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in {"root", "0"}
    installs = re.findall(r"^RUN pip install .*$", text, re.M)
    assert installs and all(line.endswith("-r requirements.txt") for line in installs), installs
    assert "collectstatic --noinput" in text
    assert re.search(r"^ENV .*STATIC_ROOT=/app/staticfiles", text, re.M | re.S)
    assert re.search(r"^EXPOSE 8000$", text, re.M)
    assert re.search(r'^CMD \["gunicorn", "pilotplan\.wsgi:application"', text, re.M)


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-dev.txt"])
def test_requirements_are_exact_pins_without_urls(name: str) -> None:
    pin = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?==[A-Za-z0-9.+!_-]+$")
    include = re.compile(r"^-r [A-Za-z0-9._-]+\.txt$")
    lines = [line.strip() for line in (ROOT / name).read_text().splitlines()]
    for line in lines:
        if not line or line.startswith("#"):
            continue
        assert "://" not in line, line
        assert pin.match(line) or include.match(line), f"{name}: {line!r} is not name==version"


def test_collectstatic_succeeds_with_the_production_storage(tmp_path: Path) -> None:
    """What the Dockerfile's build step does, minus Docker: a failure here is a failed build."""
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "x" * 50,
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "static" / "staticfiles.json").exists()


def test_readme_documents_every_environment_variable_the_code_reads() -> None:
    settings_text = (ROOT / "pilotplan" / "settings.py").read_text()
    dev_text = (ROOT / "scripts" / "dev.py").read_text()
    # settings.py reads through pilotplan/env.py's helpers; dev.py reads os.environ directly.
    env_helper = re.compile(r"\benv(?:str|bool|int|list|timezone|url)?\(\s*\"([A-Z0-9_]+)\"")
    os_environ = re.compile(r"os\.environ(?:\.get\(|\[)\s*\"([A-Z0-9_]+)\"")
    names = set(env_helper.findall(settings_text)) | set(os_environ.findall(dev_text))
    assert {"DEBUG", "SECRET_KEY", "DATABASE_URL", "PILOTPLAN_DATA_DIR"} <= names
    readme = (ROOT / "README.md").read_text()
    undocumented = sorted(name for name in names if f"`{name}`" not in readme)
    assert not undocumented, f"add these to README.md's Configuration table: {undocumented}"
