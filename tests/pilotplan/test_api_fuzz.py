"""The API contract under a schema-based fuzzer: schemathesis runs against a live server with
each credential and must find no server error and no answer the OpenAPI schema does not allow.

One test per credential (a session, a team API key, a personal access token), each bounded in
time (``FUZZ_MAX_TIME`` seconds, default 60) with a fixed seed (``FUZZ_SEED``), so the run stays a
fixed part of ``make test``: the fuzzer's examples, coverage, fuzzing and stateful phases (the
stateful one follows the schema's links). On a failure the fuzzer's report (with a curl command to
reproduce each finding) is in the assertion message.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from accounts.api_keys import api_key_create
from accounts.models import Team, User
from accounts.tokens import personal_token_create

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
MAX_TIME = int(os.environ.get("FUZZ_MAX_TIME", "60"))
SEED = os.environ.get("FUZZ_SEED", "1")  # fixed, so that a run can be repeated
CSRF = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz"  # 32 characters: an unmasked CSRF secret


def _fuzz(base_url: str, tmp_path: Path, *, config: str = "", headers: dict[str, str] | None = None,
          exclude: tuple[str, ...] = ()) -> None:  # fmt: skip
    """Run the fuzzer over the whole schema; fail with its report on any finding."""
    settings = tmp_path / "schemathesis.toml"
    settings.write_text(config)
    command = [
        str(SCHEMATHESIS), "--config-file", str(settings), "run", f"{base_url}/api/schema/",
        "--url", base_url, "--checks", "all",
        # Schema-valid input may still name a plan that does not exist (404): not a finding.
        "--exclude-checks", ",".join(("positive_data_acceptance", *exclude)),
        "--max-time", str(MAX_TIME), "--workers", "1", "--no-color", "--seed", SEED,
    ]  # fmt: skip
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=MAX_TIME * 4 + 120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]


@pytest.fixture(autouse=True)
def _room_to_fuzz(settings) -> None:  # type: ignore[no-untyped-def]
    """The fuzzer sends hundreds of requests a minute from one address: lift the API's rate limits
    (their own tests are in tests/accounts/test_rate_limits.py) so it explores instead of reading
    429s."""
    settings.API_RATE_PER_CREDENTIAL = settings.API_RATE_PER_ADDRESS = 1_000_000
    settings.API_RATE_INGEST = 1_000_000


def test_the_schema_holds_for_a_session(live_server, po: User, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(po)
    session = client.cookies["sessionid"].value
    # CSRF needs a cookie of its own beside the session's, so both travel in our own Cookie
    # header; the fuzzer cannot take that header away, so its checks that send a request without
    # credentials (ignored_auth, and the missing-cookie cases of negative_data_rejection) are left
    # to the key runs, whose credentials it manages itself.
    _fuzz(
        live_server.url,
        tmp_path,
        headers={"Cookie": f"sessionid={session}; csrftoken={CSRF}", "X-CSRFToken": CSRF},
        exclude=("ignored_auth", "negative_data_rejection"),
    )


def test_the_schema_holds_for_a_team_key(live_server, team: Team, po: User, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _key, plaintext = api_key_create(
        team=team, name="Fuzzer", scopes=["read", "write", "ingest", "gate"], created_by=po
    )
    _fuzz(live_server.url, tmp_path, config=f'[auth.openapi.apiKey]\nbearer = "{plaintext}"\n')


def test_the_schema_holds_for_a_personal_token(live_server, po: User, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _token, plaintext = personal_token_create(
        user=po, name="Fuzzer", scopes=["read", "write"],
        expires_at=timezone.now() + dt.timedelta(days=1),
    )  # fmt: skip
    config = f'[auth.openapi.personalToken]\nbearer = "{plaintext}"\n'
    _fuzz(live_server.url, tmp_path, config=config)
