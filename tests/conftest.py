"""Fixtures shared by every test: one user per role in one team, an outsider, clients, a browser.

Tests run against the real PostgreSQL and Redis named by DATABASE_URL / REDIS_URL (``make test``
provides them). With ``CI=true`` a missing browser or service fails the run instead of skipping.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator

import pytest
from django.test import Client

from accounts.models import Membership, Team, User
from tests.factories import (
    PASSWORD,
    MembershipFactory,
    TeamFactory,
    UserFactory,
    seed_metric_catalogue,
)

# Playwright's sync API keeps an event loop running in the test thread; Django's ORM refuses to
# run under a running loop unless told that this thread is synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def missing(reason: str) -> None:
    """Skip locally, fail in CI: a missing dependency must never pass silently there."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: missing dependencies fail the run)", pytrace=False)
    pytest.skip(reason)


# --- people ------------------------------------------------------------------------------------


@pytest.fixture
def team(db: None) -> Team:
    return TeamFactory(name="Checkout", slug="checkout")


def _member(team: Team, role: str, email: str) -> User:
    return MembershipFactory(team=team, role=role, user=UserFactory(email=email)).user


@pytest.fixture
def po(team: Team) -> User:
    return _member(team, Membership.Role.PRODUCT_OWNER, "po@example.test")


@pytest.fixture
def sm(team: Team) -> User:
    return _member(team, Membership.Role.SCRUM_MASTER, "sm@example.test")


@pytest.fixture
def developer(team: Team) -> User:
    return _member(team, Membership.Role.DEVELOPER, "dev@example.test")


@pytest.fixture
def devops(team: Team) -> User:
    return _member(team, Membership.Role.DEVOPS, "devops@example.test")


@pytest.fixture
def stakeholder(team: Team) -> User:
    return _member(team, Membership.Role.STAKEHOLDER, "stakeholder@example.test")


@pytest.fixture
def other_team(db: None) -> Team:
    return TeamFactory(name="Elsewhere", slug="elsewhere")


@pytest.fixture
def outsider(other_team: Team) -> User:
    """A Product Owner, but of another team: sees nothing of ``team``."""
    return _member(other_team, Membership.Role.PRODUCT_OWNER, "outsider@example.test")


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def client_for() -> Callable[[User], Client]:
    """``client_for(user)``: a test client logged in as ``user``."""

    def make(user: User) -> Client:
        c = Client()
        c.force_login(user)
        return c

    return make


# --- browser -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium")
    if not path:
        missing("Debian's chromium is not installed (apt-get install chromium)")
    assert path
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[object]:
    """One headless Chromium for the session (Debian's, launched by Playwright)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def settle(page) -> None:  # type: ignore[no-untyped-def]
    """Let the page's last requests finish before the test's teardown empties the database: a
    request still running in the live server (an HTMX swap the test did not wait for) holds
    locks that the teardown's TRUNCATE would deadlock on."""
    from playwright.sync_api import TimeoutError as PageTimeout

    with contextlib.suppress(PageTimeout):  # a page that never settles is closed anyway
        page.wait_for_load_state("networkidle", timeout=5_000)


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    settle(page)
    context.close()


@pytest.fixture
def login(live_server):  # type: ignore[no-untyped-def]
    """``login(page, user)``: log ``user`` in through the real login form."""

    def do(page, user: User) -> None:  # type: ignore[no-untyped-def]
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("E-mail").fill(user.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{live_server.url}/")

    return do


# --- data that migrations seed -------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _live_server_idle_before_flush(request: pytest.FixtureRequest) -> Iterator[None]:
    """A browser test ends by emptying every table (``TRUNCATE``); a request the live server is
    still answering (an HTMX swap or a poll the test did not wait for, or one a closed page left
    behind: the server finishes it anyway) holds locks that deadlock with it, and the next test
    starts from a database that was not emptied. Set up before the browser fixtures and after
    the database, so torn down between them: wait until no other session on the test database
    is busy."""
    if "live_server" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("transactional_db")
    yield
    from django.db import connection

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def _metric_catalogue(request: pytest.FixtureRequest) -> None:
    """Browser and concurrency tests (``transaction=True``) end by emptying every table, the
    migration-seeded metric catalogue included; put it back before any test that uses the DB."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None and not {"db", "transactional_db", "live_server"} & set(request.fixturenames):
        return
    request.getfixturevalue("django_db_setup")
    with request.getfixturevalue("django_db_blocker").unblock():
        _metric_catalogue_ensure()


def _metric_catalogue_ensure() -> None:
    from catalogue.models import MetricDefinition

    builtin = MetricDefinition.objects.filter(team=None)
    # A catalogue seeded before the expected intervals existed has the default everywhere.
    if (
        builtin.count() < 10
        or not builtin.filter(key="p95_latency", expected_interval_minutes=5).exists()
    ):
        seed_metric_catalogue()


@contextlib.contextmanager
def rows_for_the_module(django_db_blocker) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """For a module-scoped fixture whose rows are costly to make (the whole demo takes ~10 s):
    what the body writes is made once, inside one transaction that stays open while the module's
    tests run and is rolled back at the end. Each test's own transaction (``django_db``, not
    ``transaction=True``) is a savepoint inside it, so a test still starts from exactly these
    rows and anything it changes is undone before the next test."""
    from django.db import transaction

    with django_db_blocker.unblock(), transaction.atomic():
        # Transactional tests empty every table, the catalogue included (see above).
        _metric_catalogue_ensure()
        yield
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def _api_key_throttle_reset(settings) -> None:  # type: ignore[no-untyped-def]
    """Refused API keys are counted per address in Redis, outside each test's transaction (login
    failures live in the database and roll back by themselves): start every test at zero, in a
    key space of this xdist worker's own so that parallel workers cannot reset each other."""
    from accounts.throttle import api_key_failures_reset

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    settings.API_KEY_FAILURES_PREFIX = f"test-{worker}:api-key-failures"
    api_key_failures_reset()


@pytest.fixture(autouse=True)
def _feedback_rate_prefix(settings) -> None:  # type: ignore[no-untyped-def]
    """Feedback and enrolment rate limits count in Redis, outside each test's transaction: each
    test counts under a key prefix of its own, so no test inherits another's submissions."""
    import uuid

    settings.FEEDBACK_RATE_PREFIX = f"test-feedback-rate:{uuid.uuid4().hex}"
    settings.ENROL_RATE_PREFIX = f"test-enrol-rate:{uuid.uuid4().hex}"
    settings.API_RATE_PREFIX = f"test-api-rate:{uuid.uuid4().hex}"
