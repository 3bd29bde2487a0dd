"""docs/architecture.md is checked against the code: its layer table is the import contract
``make lint`` enforces, and every module, function or class it names exists."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text()
PACKAGES = (
    "pilotplan",
    "decisions",
    "metrics",
    "backlog",
    "pilots",
    "catalogue",
    "accounts",
    "core",
)


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_the_layer_table_is_the_import_contract():
    layers = next(c for c in _contracts() if c["type"] == "layers")["layers"]
    table = DOC[DOC.index("<!-- layers") : DOC.index("```mermaid")]
    rows = re.findall(r"^\| \d+ \| (.+?) \|", table, re.M)
    documented = [" | ".join(re.findall(r"`(\w+)`", row)) for row in rows]
    assert documented == layers


def test_every_package_is_in_a_layer_and_checked_for_cycles():
    layers = next(c for c in _contracts() if c["type"] == "layers")["layers"]
    in_layers = {name.strip() for layer in layers for name in layer.split("|")}
    acyclic = next(c for c in _contracts() if c["type"] == "acyclic_siblings")["ancestors"]
    assert in_layers == set(PACKAGES) == set(acyclic)


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_every_name_the_page_gives_exists():
    names = {
        name
        for name in re.findall(r"`([a-z_]+(?:\.[A-Za-z_]+)+)`", DOC)
        if name.split(".")[0] in PACKAGES and not name.startswith("pilotplan/")
    }
    assert len(names) > 20  # the page names real code, not nothing
    missing = sorted(name for name in names if not _resolves(name))
    assert missing == []


def test_the_cycle_finder_names_each_cycle_and_nothing_else():
    import grimp

    from scripts.import_cycles import cycles

    graph = grimp.ImportGraph()
    for importer, imported in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("e", "f"),
                               ("f", "e"), ("g", "a")]:  # fmt: skip
        graph.add_import(importer=importer, imported=imported)
    assert sorted(cycles(graph)) == [["a", "b", "c"], ["e", "f"]]
