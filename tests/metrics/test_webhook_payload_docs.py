"""docs/webhooks.md shows one example payload per event, and the payloads we send have exactly
its keys. Each event's own test compares what it sent with its example (``assert_documented``,
in tests/metrics/test_webhook_events.py, test_alerts.py, test_webhook_pages.py and
tests/decisions/test_webhook_events.py); this module checks the examples themselves and pins
the version rules."""

from __future__ import annotations

import pytest

from accounts.events import PAYLOAD_VERSION, RENDERERS
from accounts.models import WEBHOOK_PAYLOAD_VERSIONS, EventType
from tests.metrics.webhook_docs import DOC, _differences, documented_examples


def test_every_event_has_one_example_in_the_document():
    assert set(documented_examples()) == set(EventType.values)


@pytest.mark.parametrize("event", EventType.values)
def test_each_example_is_a_current_payload_of_its_event(event):
    example = documented_examples()[event]
    assert set(example) == {"type", "version", "timestamp", "data"}
    assert (example["type"], example["version"]) == (event, PAYLOAD_VERSION)


def test_the_events_table_gives_each_event_its_version():
    text = DOC.read_text(encoding="utf-8")
    for event in EventType.values:
        assert f"| `{event}` | {PAYLOAD_VERSION} |" in text


def test_every_version_a_subscription_can_pin_is_rendered_and_documented():
    text = DOC.read_text(encoding="utf-8")
    assert set(RENDERERS) == set(WEBHOOK_PAYLOAD_VERSIONS)
    for version in WEBHOOK_PAYLOAD_VERSIONS:
        assert f"\n| {version} | " in text


def test_the_comparison_finds_a_missing_or_extra_key():
    documented = {"data": {"plan": {"id": 1, "title": "t"}, "actor": None}}
    assert _differences({"data": {"plan": {"id": 1}, "actor": None}}, documented, "e")
    assert _differences({"data": {"plan": {"id": 1, "title": "t", "x": 1}}}, documented, "e")
    assert not _differences(
        {"data": {"plan": {"id": 2, "title": "u"}, "actor": {"id": 3}}}, documented, "e"
    )
