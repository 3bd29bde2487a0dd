"""Security headers (finding 6 of issue #10): Content-Security-Policy on every page, no inline
script or style in our templates, Permissions-Policy, and Cache-Control: no-store on pages for a
logged-in person and on every API answer, but not on static files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted(
    p
    for p in ROOT.glob("**/templates/**/*.html")
    if ".venv" not in p.parts and "node_modules" not in p.parts
)


def directives(response) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    header = response.headers["Content-Security-Policy"]
    parts = [d.strip().split() for d in header.split(";") if d.strip()]
    return {p[0]: p[1:] for p in parts}


# --- Content-Security-Policy ---------------------------------------------------------------------


def test_every_page_has_a_strict_policy(client_for, po, team):
    for client, url in [
        (Client(), reverse("accounts:login")),
        (client_for(po), reverse("pilots:plan_list")),
        (client_for(po), reverse("accounts:team_list")),
    ]:
        policy = directives(client.get(url))
        assert policy["default-src"] == ["'self'"], url
        for directive in ("script-src", "style-src"):
            assert "'unsafe-inline'" not in policy[directive], (url, directive)
            assert "'unsafe-eval'" not in policy[directive], (url, directive)
        assert policy["object-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]


def test_the_api_docs_use_the_nonce_for_their_inline_script(client_for, po):
    response = client_for(po).get(reverse("api-docs"))

    nonce = re.search(r"'nonce-([^']+)'", " ".join(directives(response)["script-src"]))
    assert nonce, directives(response)
    html = response.content.decode()
    inline = re.findall(r"<(script|style)([^>]*)>", html)
    assert inline and all(f'nonce="{nonce.group(1)}"' in attrs for _, attrs in inline)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_templates_carry_no_inline_script_or_style(template):
    text = re.sub(r"{% comment %}.*?{% endcomment %}|{#.*?#}", "", template.read_text(), flags=re.S)
    # Our override of drf-spectacular's page puts the request's nonce on each inline block.
    if "csp_nonce" in text:
        text = re.sub(r"<(script|style)[^>]*nonce=[^>]*>", "", text)
    assert not re.search(r"\sstyle\s*=", text), "a style= attribute"
    assert "<style" not in text, "a <style> block"
    assert not re.search(r"\son[a-z]+\s*=", text), "an inline event handler"
    assert "hx-on" not in text, "hx-on (htmx evaluates it)"
    assert not re.search(r"hx-trigger=\"[^\"]*\[", text), "an hx-trigger filter (htmx evals it)"
    assert "javascript:" not in text
    for attrs in re.findall(r"<script([^>]*)>", text):
        assert "src=" in attrs or "application/json" in attrs, "an inline <script>"


def test_htmx_is_configured_for_the_policy(client_for, po):
    html = client_for(po).get(reverse("pilots:plan_list")).content.decode()

    config = re.search(r'<meta name="htmx-config" content=\'([^\']+)\'>', html).group(1)
    assert '"allowEval":false' in config
    assert '"includeIndicatorStyles":false' in config
    assert '"allowScriptTags":false' in config


# --- Permissions-Policy and Cache-Control --------------------------------------------------------


def test_permissions_policy_everywhere(client_for, po):
    for response in [
        Client().get(reverse("accounts:login")),
        client_for(po).get(reverse("pilots:plan_list")),
        Client().get("/api/v1/"),
    ]:
        policy = response.headers["Permissions-Policy"]
        for feature in ("camera=()", "microphone=()", "geolocation=()"):
            assert feature in policy


def test_logged_in_pages_are_not_stored(client_for, po):
    response = client_for(po).get(reverse("pilots:plan_list"))

    assert "no-store" in response.headers["Cache-Control"]


def test_api_answers_are_not_stored(client_for, po):
    assert "no-store" in client_for(po).get("/api/v1/").headers["Cache-Control"]
    # Refusals too: an anonymous request and a bad API key.
    assert "no-store" in Client().get("/api/v1/plans/").headers["Cache-Control"]
    bad_key = Client().get("/api/v1/plans/", HTTP_AUTHORIZATION="Bearer pp_abc_def")
    assert "no-store" in bad_key.headers["Cache-Control"]


def test_static_files_keep_their_caching(client_for, po, settings):
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    response = client_for(po).get("/static/css/app.css")

    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")
