"""Refresh the screenshots in docs/img/ from a running Pilotplan with the demo data loaded.

    python scripts/screenshots.py http://127.0.0.1:8000

Logs in as the Checkout team's Product Owner through the real login form, in Debian's Chromium
driven by Playwright (``apt-get install chromium``; Playwright downloads no browser of its own).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "img"
LOGIN = "po@checkout.demo"
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


def shoot(page: Page, name: str, out: Path) -> None:
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


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

            page.get_by_label("E-mail").fill(LOGIN)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{base}/")
            # Wait until htmx has loaded, so the page is what a person sees.
            page.wait_for_load_state("networkidle")
            shoot(page, "home", out)

            # The inline "New team" form, unfolded (what the user guide describes).
            page.get_by_text("New team").click()
            expect(page.get_by_test_id("team-form")).to_be_visible()
            page.get_by_test_id("team-form").scroll_into_view_if_needed()
            shoot(page, "team-create", out)
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
