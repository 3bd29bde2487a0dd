"""The event examples of docs/webhooks.md ("One example per event"), read from the document, so
the tests compare what is sent with what receivers were told, not with our own code."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
EXAMPLE = re.compile(r"^#### `(?P<type>[a-z_.]+)`\n\n```json\n(?P<body>.*?)\n```", re.M | re.S)


@cache
def documented_examples() -> dict[str, dict[str, Any]]:
    """Each event's example payload, by its heading's type."""
    return {
        m["type"]: json.loads(m["body"]) for m in EXAMPLE.finditer(DOC.read_text(encoding="utf-8"))
    }


def _differences(sent: Any, documented: Any, where: str) -> list[str]:
    """Where the keys differ, at every level. An object documented as null (or sent as null) is
    a nullable one (``actor`` of a system step); a list compares its first item."""
    if sent is None or documented is None:
        return []
    if isinstance(sent, dict) and isinstance(documented, dict):
        found = []
        if set(sent) != set(documented):
            found.append(
                f"{where}: sent {sorted(set(sent) - set(documented))} not documented, "
                f"documented {sorted(set(documented) - set(sent))} not sent"
            )
        for key in set(sent) & set(documented):
            found += _differences(sent[key], documented[key], f"{where}.{key}")
        return found
    if isinstance(sent, list) and isinstance(documented, list):
        if sent and documented:
            return _differences(sent[0], documented[0], f"{where}[0]")
        return []
    if isinstance(sent, dict | list) or isinstance(documented, dict | list):
        return [f"{where}: sent {type(sent).__name__}, documented {type(documented).__name__}"]
    return []


def assert_documented(payload: dict[str, Any]) -> None:
    """The payload has exactly the keys of its event's example in docs/webhooks.md."""
    examples = documented_examples()
    assert payload["type"] in examples, f"{payload['type']} has no example in docs/webhooks.md"
    differences = _differences(payload, examples[payload["type"]], payload["type"])
    assert not differences, "\n".join(differences)
