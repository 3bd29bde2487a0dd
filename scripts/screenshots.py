"""Refresh the screenshots in docs/img/ from a running Pilotplan with the demo data loaded.

    python scripts/screenshots.py http://127.0.0.1:8000

Run it a few minutes after ``make run``: by then the demo's running pilot has a fired rollback
trigger (README, "Demo logins"), which the cockpit shot shows on top.

Logs in as the Checkout team's Product Owner through the real login form, in Debian's Chromium
driven by Playwright (``apt-get install chromium``; Playwright downloads no browser of its own).

For the plan pages it uses the Checkout plan started from the built-in template, and starts one
(New plan → From the template) when there is none yet, so running it again adds no plans. The
conflict screenshot has the Scrum Master and the Product Owner edit the same section at once, in
two browser contexts; the Scrum Master's save wins, so that plan's Cohort description changes.

The daily pages — the run cockpit (at 1440 px and on a phone), My work, the History tab — and
the learning-loop pages (team backlog, feedback triage, participants, change-control log, and the
public feedback page on a phone) use the demo's running Checkout pilot and what ``seed_demo``
gave it; they only read (the phone shot opens the form and sends nothing). The team page shows
one open invitation: it is sent (to ``INVITEE``) only while the team has none, so a second run
sends nothing.

``monitoring.png`` and ``decision-page.png`` come from the browser tests instead (they need
seeded samples): ``SCREENSHOTS_DIR=docs/img`` with ``tests/e2e/test_monitoring.py`` and
``tests/e2e/test_decision_page.py``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from playwright.sync_api import Locator, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "img"
LOGIN = "po@checkout.demo"
# Home and My work as the Platform team's Product Owner: the demo gives them a decision due, entry
# criteria to confirm and a post-pilot review (the Checkout PO has nothing waiting).
WORK_LOGIN = "po@platform.demo"
SECOND_LOGIN = "sm@checkout.demo"  # the other editor in the conflict screenshot
TEMPLATE_PLAN = "Saved cards pilot (from template)"  # the title the built-in template gives
RUNNING_PLAN = "Saved cards for returning shoppers"  # the demo's running pilot (pilotplan/demo.py)
TEAM_TEMPLATE = "Checkout feature pilot, 2 weeks"  # saved from the running pilot, once
INVITEE = "new.developer@checkout.demo"  # the open invitation on the team page
WIDE = {"width": 1440, "height": 900}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
PASSWORD = "pilotplan-demo"  # noqa: S105 - the documented demo password (README, "Demo logins")
# The same flags as the browser tests: no sandbox (containers, root), and no background traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def shoot(page: Page, name: str, out: Path, *, full_page: bool = True) -> None:
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def shoot_element(locator: Locator, name: str, out: Path) -> None:
    path = out / f"{name}.png"
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=str(path))
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def shoot_down_to(page: Page, locator: Locator, name: str, out: Path, margin: int = 24) -> None:
    """The page from its top down to the bottom of ``locator``: the header, the tabs and what
    the picture is about, without the rest of a long page."""
    box = locator.bounding_box()
    assert box is not None, f"{name}: nothing to shoot"
    top = page.evaluate("window.scrollY")
    width = page.viewport_size["width"] if page.viewport_size else 1280
    clip = {"x": 0, "y": 0, "width": width, "height": top + box["y"] + box["height"] + margin}
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, clip=clip)
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def log_in(page: Page, base: str, login: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("E-mail").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/")
    # Wait until htmx has loaded, so the page is what a person sees.
    page.wait_for_load_state("networkidle")


def template_plan_url(page: Page, base: str) -> str:
    """The plan page of the Checkout plan started from the template; starts it if missing."""
    page.goto(f"{base}/plans/")
    link = page.get_by_role("link", name=TEMPLATE_PLAN, exact=True)
    if link.count():
        link.first.click()
    else:
        page.goto(f"{base}/plans/new")
        start = page.get_by_test_id("start-template")
        start.get_by_label("Team").select_option(label="Checkout")
        start.get_by_role("button", name="Start from the template").click()
    expect(page.get_by_test_id("plan-health")).to_be_visible()
    page.wait_for_load_state("networkidle")
    return page.url.split("#")[0]


def open_edit(page: Page, key: str) -> Locator:
    page.get_by_test_id(f"edit-{key}").click()
    form = page.get_by_test_id(f"section-form-{key}")
    expect(form).to_be_visible()
    return form


def running_plan_id(page: Page, base: str) -> int:
    """The id of the demo's running Checkout pilot (seeded by ``make run``)."""
    page.goto(f"{base}/plans/")
    link = page.get_by_role("link", name=RUNNING_PLAN, exact=True)
    if not link.count():
        raise SystemExit(f"No plan “{RUNNING_PLAN}”: start the app with the demo data (make run)")
    href = link.first.get_attribute("href") or ""
    match = re.search(r"/plans/(\d+)", href)
    if match is None:
        raise SystemExit(f"Unexpected plan link {href!r}")
    return int(match.group(1))


def checkout_team_id(page: Page, base: str) -> int:
    """The id of the demo's Checkout team, from the team list."""
    page.goto(f"{base}/teams/")
    row = page.get_by_test_id("team-row").filter(has_text="Checkout")
    href = row.get_by_test_id("team-link").first.get_attribute("href") or ""
    match = re.search(r"/teams/(\d+)", href)
    if match is None:
        raise SystemExit(f"Unexpected team link {href!r}")
    return int(match.group(1))


def daily_pages(page: Page, phone: Page, base: str, out: Path) -> None:
    """The two pages a person opens every day — the running pilot's cockpit (wide and on a
    phone) and My work — then the History tab, the team page and the template library."""
    plan_id = running_plan_id(page, base)

    page.set_viewport_size(WIDE)
    page.goto(f"{base}/plans/{plan_id}/")
    expect(page.get_by_test_id("cockpit")).to_be_visible()
    page.wait_for_load_state("networkidle")
    shoot_down_to(page, page.get_by_test_id("cockpit"), "cockpit", out)

    phone.goto(f"{base}/plans/{plan_id}/cockpit")
    expect(phone.get_by_test_id("cockpit")).to_be_visible()
    phone.wait_for_load_state("networkidle")
    shoot(phone, "cockpit-phone", out, full_page=False)

    page.goto(f"{base}/plans/{plan_id}/history")
    expect(page.get_by_test_id("history-session").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    sessions = page.get_by_test_id("history-session")
    shoot_down_to(page, sessions.nth(min(4, sessions.count() - 1)), "history", out)

    team_id = checkout_team_id(page, base)
    page.goto(f"{base}/teams/{team_id}/")
    expect(page.get_by_test_id("team-members")).to_be_visible()
    page.wait_for_load_state("networkidle")
    if page.get_by_test_id("invitations-empty").count():
        invite = page.get_by_test_id("invite-form")
        invite.get_by_label("E-mail").fill(INVITEE)
        invite.get_by_label("Role").select_option(label="Developer")
        invite.get_by_role("button", name="Send invitation").click()
        expect(page.get_by_test_id("invitation-row").first).to_be_visible()
        page.goto(f"{base}/teams/{team_id}/")
        page.wait_for_load_state("networkidle")
    shoot(page, "team-admin", out)

    page.goto(f"{base}/teams/{team_id}/templates")
    expect(page.get_by_test_id("team-templates")).to_be_visible()
    if not page.get_by_test_id("template-row").filter(has_text=TEAM_TEMPLATE).count():
        form = page.get_by_test_id("template-form")
        form.get_by_label("Plan").select_option(label=RUNNING_PLAN)
        form.get_by_label("Template name").fill(TEAM_TEMPLATE)
        form.get_by_role("button", name="Save as template").click()
        expect(page.get_by_test_id("template-row").filter(has_text=TEAM_TEMPLATE)).to_be_visible()
        page.goto(f"{base}/teams/{team_id}/templates")
    page.wait_for_load_state("networkidle")
    shoot(page, "templates", out)
    page.set_viewport_size({"width": 1280, "height": 800})


def learning_loop(page: Page, phone: Page, base: str, out: Path) -> None:
    """The team backlog, the cohort and its representativeness, feedback triage, the public
    feedback page on a phone, and the change-control log of the running pilot."""
    plan_id = running_plan_id(page, base)

    page.goto(f"{base}/teams/")
    page.get_by_role("row").filter(has_text="Checkout").get_by_test_id("team-backlog").click()
    expect(page.get_by_test_id("backlog-row").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    shoot_down_to(page, page.get_by_test_id("backlog-row").last, "backlog", out)

    page.goto(f"{base}/plans/{plan_id}/participants")
    expect(page.get_by_test_id("cohort-fit").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    shoot_down_to(page, page.get_by_test_id("participant-counts"), "participants-fit", out)

    page.goto(f"{base}/plans/{plan_id}/feedback")
    expect(page.get_by_test_id("feedback-row").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    shoot_down_to(page, page.get_by_test_id("feedback-row").nth(3), "feedback-triage", out)
    feedback_url = page.get_by_test_id("feedback-link-url").input_value()

    page.goto(f"{base}/plans/{plan_id}/change-control")
    expect(page.get_by_test_id("change-control-entry").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    shoot_down_to(page, page.get_by_test_id("change-control-log"), "change-control", out)

    # The public page as a cohort member opens it on a phone, scores chosen; nothing is sent.
    phone.goto(feedback_url)
    form = phone.get_by_test_id("feedback-form")
    expect(form).to_be_visible()
    form.get_by_text("4 – Happy").click()
    form.locator("input[name=nps][value='9']").check()
    phone.wait_for_load_state("networkidle")
    shoot(phone, "feedback-phone", out, full_page=False)


def take(base_url: str, out: Path) -> None:
    chromium = shutil.which("chromium")
    if not chromium:
        raise SystemExit("Debian's chromium is not installed (apt-get install chromium)")
    out.mkdir(parents=True, exist_ok=True)
    base = base_url.rstrip("/")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.set_default_timeout(15_000)
            page = context.new_page()

            page.goto(f"{base}/login/")
            expect(page.get_by_role("heading", name="Log in")).to_be_visible()
            shoot(page, "login", out)

            # Home and My work of someone with work waiting, in a context of their own.
            worker = browser.new_context(viewport=WIDE)
            worker.set_default_timeout(15_000)
            try:
                work = worker.new_page()
                log_in(work, base, WORK_LOGIN)
                expect(work.get_by_test_id("my-work-summary")).to_be_visible()
                work.wait_for_load_state("networkidle")
                shoot(work, "home", out)
                work.goto(f"{base}/my-work")
                expect(work.get_by_role("heading", name="My work", level=1)).to_be_visible()
                work.wait_for_load_state("networkidle")
                shoot(work, "my-work", out)
            finally:
                worker.close()

            log_in(page, base, LOGIN)

            # The inline "New team" form on the team list, unfolded (what the user guide describes).
            page.goto(f"{base}/teams/")
            page.get_by_text("New team").click()
            expect(page.get_by_test_id("team-form")).to_be_visible()
            page.get_by_test_id("team-form").scroll_into_view_if_needed()
            shoot(page, "team-create", out)

            page.goto(f"{base}/plans/")
            expect(page.get_by_role("heading", name="Pilots")).to_be_visible()
            shoot(page, "plan-list", out)

            page.goto(f"{base}/plans/new")
            expect(page.get_by_test_id("start-template")).to_be_visible()
            shoot(page, "plan-new", out, full_page=False)

            # A draft's document at 1440 px: the header with its lifecycle buttons, the first
            # sections, the section index and plan health beside them.
            plan_url = template_plan_url(page, base)
            page.set_viewport_size(WIDE)
            page.goto(plan_url)
            expect(page.get_by_test_id("section-index")).to_be_visible()
            page.wait_for_load_state("networkidle")
            shoot(page, "plan-document", out, full_page=False)

            # Further down, through the index: the index stays in view beside the sections.
            page.get_by_test_id("section-index").get_by_role("link", name="Exit criteria").click()
            page.wait_for_timeout(400)
            shoot(page, "plan-page", out, full_page=False)
            page.set_viewport_size({"width": 1280, "height": 800})
            page.goto(plan_url)
            page.wait_for_load_state("networkidle")

            # A section in edit mode, swapped in place of its view.
            open_edit(page, "cohort")
            shoot_element(page.get_by_test_id("section-cohort"), "section-edit", out)
            page.get_by_test_id("section-form-cohort").get_by_role("button", name="Cancel").click()
            expect(page.get_by_test_id("edit-cohort")).to_be_visible()

            # Rows of a list section.
            shoot_element(page.get_by_test_id("section-exit_criteria"), "section-rows", out)

            # Two editors, one section: the Product Owner opens Cohort, the Scrum Master saves
            # it first, and the Product Owner's save is refused with the other values shown.
            po_form = open_edit(page, "cohort")
            other = browser.new_context(viewport={"width": 1280, "height": 800})
            other.set_default_timeout(15_000)
            try:
                sm = other.new_page()
                log_in(sm, base, SECOND_LOGIN)
                sm.goto(plan_url)
                sm_form = open_edit(sm, "cohort")
                sm_form.get_by_label("Description").fill(
                    "200 internal users in Region A and B, opt-in only"
                )
                sm_form.get_by_role("button", name="Save").click()
                expect(sm.get_by_test_id("edit-cohort")).to_be_visible()
            finally:
                other.close()
            po_form.get_by_label("Description").fill("150 internal users in Region A, opt-in only")
            po_form.get_by_role("button", name="Save").click()
            expect(page.get_by_test_id("section-conflict")).to_be_visible()
            shoot_element(page.get_by_test_id("section-cohort"), "section-conflict", out)

            mobile = browser.new_context(**PHONE)
            mobile.set_default_timeout(15_000)
            try:
                phone = mobile.new_page()
                log_in(phone, base, LOGIN)
                daily_pages(page, phone, base, out)
                learning_loop(page, phone, base, out)
            finally:
                mobile.close()
        finally:
            browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("base_url", help="e.g. http://127.0.0.1:8000")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PNGs (docs/img)")
    args = parser.parse_args()
    take(args.base_url, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
