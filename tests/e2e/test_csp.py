"""The Content-Security-Policy in a real browser (finding 6 of issue #10): log in, visit every
page of the app, and assert that each carries the header and that the browser reports no
violation (``securitypolicyviolation`` events, console messages) and no console error."""

from __future__ import annotations

import pytest
from django.urls import reverse

from pilots.models import PlanInvitation
from tests.e2e.test_page_shell import Shell, _log_in, shell  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Registered before any page script runs: every violation the browser reports is kept.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", e => window.__csp.push(
  `${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`));
"""


def test_no_page_violates_the_policy(browser, live_server, shell: Shell, po):  # noqa: F811
    PlanInvitation.objects.create(plan=shell.draft, email=po.email.upper(), invited_by=po)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    console: list[str] = []
    page.on(
        "console",
        lambda m: (
            console.append(f"{m.type}: {m.text}")
            if m.type == "error" or "Content Security Policy" in m.text
            else None
        ),
    )
    page.on("pageerror", lambda error: console.append(f"exception: {error}"))
    base = live_server.url

    login_page = page.goto(base + reverse("accounts:login"))
    assert "default-src 'self'" in login_page.headers["content-security-policy"]
    _log_in(page, base, po)

    pages = [
        *shell.pages,
        ("api docs", reverse("api-docs")),
        ("invitations", reverse("pilots:invitation_list")),
    ]
    problems: list[str] = []
    for name, path in pages:
        response = page.goto(base + path)
        page.wait_for_load_state("networkidle")  # HTMX panels, charts, Swagger UI
        policy = response.headers.get("content-security-policy", "")
        if "default-src 'self'" not in policy:
            problems.append(f"{name}: no Content-Security-Policy header")
        problems += [f"{name}: {v}" for v in page.evaluate("window.__csp")]
        problems += [f"{name}: {c}" for c in console]
        console.clear()
    context.close()

    assert problems == []
