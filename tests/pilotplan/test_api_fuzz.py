"""The API contract under a schema-based fuzzer: schemathesis runs against a live server with
each credential and must find no server error and no answer the OpenAPI schema does not allow.

One test per credential (a session, a team API key, a personal access token) runs the fuzzer's
examples, coverage and fuzzing phases, each bounded in time (``FUZZ_MAX_TIME`` seconds, default
30) with a fixed seed (``FUZZ_SEED``). One more runs its **stateful** phase (``FUZZ_STATEFUL_TIME``
seconds, default 30) as the Product Owner's personal token: it follows the schema's links
(``core.schema.schema_links``) from a list or a new resource to the next request: a new plan, its
sections read and changed with their ETag in ``If-Match``, rows added, changed, moved and
removed, samples pushed and read back, backlog items created and changed. Run apart because the
phases before it would spend its share of one budget. The team has a plan and a backlog item to
start from. On a failure the fuzzer's report (with a curl command to reproduce each finding) is in
the assertion message.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from accounts.api_keys import api_key_create
from accounts.models import Team, User
from accounts.tokens import personal_token_create
from backlog.services import backlog_item_create
from tests.factories import PilotPlanFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# The defaults keep the four runs near two minutes of `make test`; with the seed fixed, a longer
# budget (FUZZ_MAX_TIME=300) explores further when the API changes a lot.
MAX_TIME = int(os.environ.get("FUZZ_MAX_TIME", "30"))
STATEFUL_TIME = int(os.environ.get("FUZZ_STATEFUL_TIME", "30"))
SEED = os.environ.get("FUZZ_SEED", "1")  # fixed, so that a run can be repeated
UNIT_PHASES = "examples,coverage,fuzzing"
CSRF = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz"  # 32 characters: an unmasked CSRF secret


def _fuzz(base_url: str, tmp_path: Path, *, config: str = "", headers: dict[str, str] | None = None,
          exclude: tuple[str, ...] = (), phases: str = UNIT_PHASES, max_time: int = MAX_TIME,
          ) -> str:  # fmt: skip
    """Run the fuzzer over the whole schema; fail with its report on any finding."""
    settings = tmp_path / "schemathesis.toml"
    settings.write_text(config)
    command = [
        str(SCHEMATHESIS), "--config-file", str(settings), "run", f"{base_url}/api/schema/",
        "--url", base_url, "--checks", "all",
        # Schema-valid input may still name a plan that does not exist (404): not a finding.
        "--exclude-checks", ",".join(("positive_data_acceptance", *exclude)),
        "--max-time", str(max_time), "--workers", "1", "--no-color", "--seed", SEED,
        "--phases", phases,
    ]  # fmt: skip
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=max_time * 4 + 120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]
    print(done.stdout[-8000:])  # the report of a passing run, for `pytest -rP`
    return done.stdout


@pytest.fixture(autouse=True)
def _room_to_fuzz(settings) -> None:  # type: ignore[no-untyped-def]
    """The fuzzer sends hundreds of requests a minute from one address: lift the API's rate limits
    (their own tests are in tests/accounts/test_rate_limits.py) so it explores instead of reading
    429s."""
    settings.API_RATE_PER_CREDENTIAL = settings.API_RATE_PER_ADDRESS = 1_000_000
    settings.API_RATE_INGEST = 1_000_000


@pytest.fixture(autouse=True)
def _something_to_start_from(team: Team, po: User) -> None:
    """A plan and a backlog item, so that the lists the links start from are not empty."""
    PilotPlanFactory(team=team, owner=po)
    backlog_item_create(team_id=team.pk, user=po, title="Fuzz the API")


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


def test_linked_requests_hold_for_a_product_owner(live_server, po: User, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The stateful phase: sequences of requests joined by the schema's links, as the PO (who
    may create plans, edit every section and manage the backlog)."""
    _token, plaintext = personal_token_create(
        user=po, name="Fuzzer", scopes=["read", "write"],
        expires_at=timezone.now() + dt.timedelta(days=1),
    )  # fmt: skip
    config = f'[auth.openapi.personalToken]\nbearer = "{plaintext}"\n'
    report = _fuzz(
        live_server.url, tmp_path, config=config, phases="stateful", max_time=STATEFUL_TIME
    )
    # The links were followed: scenarios ran and at least one link was covered.
    assert re.search(r"Scenarios:\s+[1-9]", report), report[-5000:]
    assert not re.search(r"API Links:\s+0 covered", report), report[-5000:]
