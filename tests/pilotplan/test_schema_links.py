"""The OpenAPI schema's links (core.schema.schema_links): each names an operation that exists,
fills only parameters that operation has from values the source has, and together they chain a
client from a team or a new plan to every If-Match-guarded write and to the samples."""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture(scope="module")
def operations(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        op["operationId"]: {**op, "path": path}
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def _parameters(operation: dict[str, Any], where: str) -> set[str]:
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == where}


def _links(operations: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        (source_id, status, name, link)
        for source_id, source in operations.items()
        for status, answer in source["responses"].items()
        for name, link in answer.get("links", {}).items()
    ]


def link(
    operations: dict[str, dict[str, Any]], source: str, status: str, target: str
) -> dict[str, Any]:
    return operations[source]["responses"][status]["links"][target]


def test_every_link_names_an_operation_and_parameters_both_ends_have(operations):
    links = _links(operations)
    assert len(links) > 300
    for source_id, status, _name, definition in links:
        source, target = operations[source_id], operations.get(definition["operationId"])
        assert target is not None, f"{source_id} {status} → {definition['operationId']}"
        for key, expression in definition.get("parameters", {}).items():
            where, name = key.split(".", 1)
            assert name in _parameters(target, where), f"{source_id} → {key}"
            if expression.startswith("$request.path."):
                assert expression.removeprefix("$request.path.") in _parameters(source, "path")
            if expression == "$response.header.ETag":
                assert "ETag" in source["responses"][status].get("headers", {}), source_id
        assert status.startswith("2")


def test_every_if_match_write_is_reached_with_an_etag(operations):
    """Each write that requires If-Match is the target of a link that passes the ETag."""
    fed = {
        definition["operationId"]
        for _source, _status, _name, definition in _links(operations)
        if definition.get("parameters", {}).get("header.If-Match") == "$response.header.ETag"
    }
    guarded = {
        op_id
        for op_id, op in operations.items()
        if any(
            p["in"] == "header" and p["name"] == "If-Match" and p.get("required")
            for p in op.get("parameters", [])
        )
    }
    assert guarded and guarded <= fed, sorted(guarded - fed)


def test_a_new_plan_leads_to_its_sections_rows_and_samples(operations):
    for target in (
        "plans_retrieve",
        "plans_sections_overview_retrieve",
        "plans_rows_risks_list",
        "plans_samples_create",
    ):
        assert link(operations, "plans_create", "201", target)["parameters"] == {
            "path.plan_id": "$response.body#/id"
        }
    listed = link(operations, "plans_list", "200", "plans_retrieve")
    assert listed["parameters"] == {"path.plan_id": "$response.body#/results/0/id"}
    new_plan = link(operations, "teams_list", "200", "plans_create")
    assert new_plan["requestBody"] == {"team": "$response.body#/results/0/id"}


def test_a_section_read_leads_to_its_writes_with_its_etag(operations):
    for target in ("plans_sections_overview_update", "plans_sections_overview_partial_update"):
        for source, status in (
            ("plans_sections_overview_retrieve", "200"),
            ("plans_sections_overview_partial_update", "200"),
        ):
            assert link(operations, source, status, target)["parameters"] == {
                "path.plan_id": "$request.path.plan_id",
                "header.If-Match": "$response.header.ETag",
            }


def test_rows_chain_from_the_list_to_create_change_move_and_remove(operations):
    create = link(operations, "plans_rows_risks_list", "200", "plans_rows_risks_create")
    assert create["parameters"]["header.If-Match"] == "$response.header.ETag"
    for target in (
        "plans_rows_risks_partial_update",
        "plans_rows_risks_move",
        "plans_rows_risks_destroy",
    ):
        assert link(operations, "plans_rows_risks_create", "201", target)["parameters"] == {
            "path.plan_id": "$request.path.plan_id",
            "path.row_id": "$response.body#/id",
            "header.If-Match": "$response.header.ETag",
        }


def test_pushed_samples_are_read_back(operations):
    for status in ("200", "201"):
        back = link(operations, "plans_samples_create", status, "plan_metric_samples_list")
        assert back["parameters"] == {
            "path.plan_id": "$request.path.plan_id",
            "path.key": "$request.body#/samples/0/metric",
        }
    team_back = link(operations, "teams_samples_create", "201", "plan_metric_samples_list")
    assert team_back["parameters"]["path.plan_id"] == "$request.body#/samples/0/plan"


def test_team_resources_chain_from_create_to_read_change_and_remove(operations):
    assert link(operations, "teams_create", "201", "team_api_keys_create")
    key = link(operations, "team_api_keys_create", "201", "team_api_keys_revoke")
    assert key["parameters"]["path.key_id"] == "$response.body#/id"
    item = link(operations, "teams_backlog_create", "201", "teams_backlog_update")
    assert item["parameters"] == {
        "path.team_id": "$request.path.team_id",
        "path.item_id": "$response.body#/id",
        "header.If-Match": "$response.header.ETag",
    }
    assert link(operations, "teams_backlog_retrieve", "200", "teams_backlog_update")
    assert link(operations, "teams_backlog_create", "201", "teams_backlog_destroy")
    for target in ("teams_webhooks_retrieve", "teams_webhooks_update", "teams_webhooks_destroy"):
        hook = link(operations, "teams_webhooks_create", "201", target)
        assert hook["parameters"]["path.subscription_id"] == "$response.body#/id"
