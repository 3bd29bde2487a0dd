"""Every recipe of docs/gate.md, read from the page and applied to live answers (a real server,
``live_server``) for a Go, a Roll back and a not-yet-decidable plan.

Argo Rollouts, Azure DevOps and Spinnaker judge the body: their YAML / JSON is parsed and its
condition evaluated on the body by a tiny evaluator that knows exactly the forms the page uses
(anything else fails the test, so the page cannot drift to an untested form). Flagger judges the
status code (2xx up to 202 is a yes). GitHub Actions and GitLab CI run shell: their script runs
in bash, curl and all, and the exit code is the answer.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from decisions.models import GateCall
from tests.decisions.gate_plans import go_plan, read_key, roll_back_plan, undecidable_plan

DOC = Path(__file__).resolve().parents[2] / "docs" / "gate.md"
RECIPE = re.compile(r"<!-- recipe: (\w+) -->\n```(\w+)\n(.*?)\n```", re.S)
EXAMPLE_URL = "https://pilotplan.example.com"
EXAMPLE_PLAN = "/plans/42/"
PLACEHOLDER_KEY = "pp_replace_with_a_read_key"

pytestmark = pytest.mark.django_db(transaction=True)


def recipes() -> dict[str, tuple[str, str]]:
    return {name: (lang, text) for name, lang, text in RECIPE.findall(DOC.read_text())}


def test_the_page_has_every_recipe_once():
    found = RECIPE.findall(DOC.read_text())
    assert sorted(name for name, _, _ in found) == sorted(
        ["argo", "azure", "flagger", "github", "gitlab", "spinnaker"]
    )
    assert DOC.read_text().count("<!-- recipe:") == len(found)


# --- what the tools do, as small as the page needs ---------------------------------------------


def fetch(
    url: str, *, method: str = "GET", headers: dict[str, str] | None = None, body: Any = None
) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    assert url.startswith("http://"), url  # the live server, nothing else
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our server
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def argo_condition(expression: str, result: dict[str, Any]) -> bool:
    """Argo Rollouts' successCondition, in the one form the page uses."""
    match = re.fullmatch(r"result\.(\w+) == (true|false)", expression)
    assert match, f"an untested condition form: {expression!r}"
    return result[match[1]] is (match[2] == "true")


def azure_criteria(expression: str, root: dict[str, Any]) -> bool:
    """Azure DevOps' successCriteria, in the one form the page uses."""
    match = re.fullmatch(r"eq\(root\['(\w+)'\], (true|false)\)", expression)
    assert match, f"an untested criteria form: {expression!r}"
    return root[match[1]] is (match[2] == "true")


def spinnaker_status(stage: dict[str, Any], body: dict[str, Any]) -> str:
    """Spinnaker's webhook monitor: the value at ``statusJsonPath`` (a single value, upper-cased
    as Orca does) mapped by ``successStatuses`` / ``terminalStatuses``; anything else keeps the
    stage RUNNING."""
    match = re.fullmatch(r"\$\.(\w+)", stage["statusJsonPath"])
    assert match, f"an untested JSON path form: {stage['statusJsonPath']!r}"
    value = body[match[1]]
    assert isinstance(value, str | int | float | bool), "Orca needs a single value"
    text = json.dumps(value).upper() if isinstance(value, bool) else str(value).upper()
    statuses = {s.strip().upper(): "SUCCEEDED" for s in stage["successStatuses"].split(",")}
    statuses |= {s.strip().upper(): "TERMINAL" for s in stage["terminalStatuses"].split(",")}
    return statuses.get(text, "RUNNING")


def flagger_says_yes(status: int) -> bool:
    """Flagger's webhook client: an error for any status above 202."""
    return 200 <= status <= 202


# --- the plans ---------------------------------------------------------------------------------


@pytest.fixture
def world(team, po, live_server):  # type: ignore[no-untyped-def]
    _key, plaintext = read_key(team, po)
    plans = {
        "go": go_plan(team, po),
        "roll_back": roll_back_plan(team, po),
        "not_yet_decidable": undecidable_plan(team, po),
    }
    return {"url": live_server.url, "key": plaintext, "plans": plans}


def filled(text: str, world: dict[str, Any], plan_id: int) -> str:
    assert EXAMPLE_PLAN in text  # (Azure's address is the service connection's)
    return text.replace(EXAMPLE_URL, world["url"]).replace(EXAMPLE_PLAN, f"/plans/{plan_id}/")


def fill(text: str, pattern: str, values: dict[str, str]) -> str:
    """The tool's own variable syntax (``{{args.x}}``, ``$(x)``) filled from ``values``."""
    return re.sub(pattern, lambda m: values[m[1]], text)


PROMOTE = {"go": True, "roll_back": False, "not_yet_decidable": False}
ROLL_BACK = {"go": False, "roll_back": True, "not_yet_decidable": False}


def test_argo_rollouts_analysis_template(world):
    lang, text = recipes()["argo"]
    assert lang == "yaml"
    args = {"api-key": world["key"]}
    for kind, plan in world["plans"].items():
        template = yaml.safe_load(filled(text, world, plan.pk))
        assert template["kind"] == "AnalysisTemplate"
        [metric] = template["spec"]["metrics"]
        web = metric["provider"]["web"]
        assert web["jsonPath"] == "{$}"  # the whole body is `result`
        headers = {
            h["key"]: fill(h["value"], r"\{\{args\.([\w-]+)\}\}", args) for h in web["headers"]
        }
        status, body = fetch(web["url"], headers=headers)
        assert status == 200, body
        assert argo_condition(metric["successCondition"], body) is PROMOTE[kind], kind
    assert GateCall.objects.filter(pipeline_run="argo-rollouts", mode="json").count() == 3


def test_flagger_canary_webhooks(world):
    lang, text = recipes()["flagger"]
    assert lang == "yaml"
    for kind, plan in world["plans"].items():
        canary = yaml.safe_load(filled(text, world, plan.pk))
        hooks = {h["type"]: h for h in canary["spec"]["analysis"]["webhooks"]}
        assert set(hooks) == {"confirm-promotion", "rollback"}
        answers = {}
        for hook_type, hook in hooks.items():
            metadata = dict(hook["metadata"])
            assert metadata["api_key"] == PLACEHOLDER_KEY
            metadata["api_key"] = world["key"]
            payload = {"name": "checkout", "namespace": "shop", "phase": "Progressing",
                       "checksum": "abc", "metadata": metadata}  # fmt: skip
            status, body = fetch(hook["url"], method="POST", body=payload)
            assert status in (200, 409), (status, body)
            answers[hook_type] = flagger_says_yes(status)
        assert answers["confirm-promotion"] is PROMOTE[kind], kind
        assert answers["rollback"] is ROLL_BACK[kind], kind
    assert GateCall.objects.filter(pipeline_run="flagger-checkout", mode="strict").count() == 6


def test_azure_devops_invoke_rest_api_gate(world):
    lang, text = recipes()["azure"]
    assert lang == "yaml"
    for kind, plan in world["plans"].items():
        pipeline = yaml.safe_load(filled(text, world, plan.pk))
        [job] = pipeline["jobs"]
        assert job["pool"] == "server"  # the task runs agentless
        [step] = job["steps"]
        assert step["task"] == "InvokeRESTAPI@1"
        inputs = step["inputs"]
        assert inputs["method"] == "GET" and inputs["waitForCompletion"] == "false"
        variables = {"PILOTPLAN_API_KEY": world["key"], "Build.BuildId": "4711"}
        headers = json.loads(fill(inputs["headers"], r"\$\(([\w.]+)\)", variables))
        # The service connection's server URL is the live server.
        status, body = fetch(world["url"] + inputs["urlSuffix"], headers=headers)
        passed = 200 <= status < 300 and azure_criteria(inputs["successCriteria"], body)
        assert passed is PROMOTE[kind], kind
    assert GateCall.objects.filter(pipeline_run="4711").count() == 3


def test_spinnaker_webhook_stage(world):
    lang, text = recipes()["spinnaker"]
    assert lang == "json"
    for kind, plan in world["plans"].items():
        stage = json.loads(filled(text, world, plan.pk))
        assert stage["type"] == "webhook" and stage["method"] == "GET"
        assert stage["waitForCompletion"] is True
        assert stage["statusUrlResolution"] == "getMethod"  # polls the same URL
        url = stage["url"].replace("${execution.id}", "01HSPINNAKER")
        headers = {
            name: value.replace(PLACEHOLDER_KEY, world["key"])
            for name, value in stage["customHeaders"].items()
        }
        status, body = fetch(url, headers=headers)
        assert status == 200, body
        expected = "SUCCEEDED" if PROMOTE[kind] else "TERMINAL"
        assert spinnaker_status(stage, body) == expected, kind
    assert GateCall.objects.filter(pipeline_run="01HSPINNAKER").count() == 3


def run_bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_github_actions_step(world):
    lang, text = recipes()["github"]
    assert lang == "yaml"
    [step] = yaml.safe_load(text)
    assert "--fail-with-body" in step["run"]
    assert step["env"]["PILOTPLAN_API_KEY"] == "${{ secrets.PILOTPLAN_API_KEY }}"
    for kind, plan in world["plans"].items():
        env = dict(step["env"])
        env |= {"PILOTPLAN_URL": world["url"], "PILOTPLAN_API_KEY": world["key"],
                "PLAN_ID": str(plan.pk), "GITHUB_REPOSITORY": "shop/checkout",
                "GITHUB_RUN_ID": "99"}  # fmt: skip
        done = run_bash(step["run"], env)
        assert (done.returncode == 0) is PROMOTE[kind], (kind, done.stdout, done.stderr)
        assert json.loads(done.stdout)["plan"]["id"] == plan.pk  # the body, printed either way
    assert GateCall.objects.filter(pipeline_run="shop/checkout/99", mode="strict").count() == 3


def test_gitlab_ci_job(world):
    lang, text = recipes()["gitlab"]
    assert lang == "yaml"
    job = yaml.safe_load(text)["pilotplan-gate"]
    script = "\n".join(job["script"])
    assert "--fail" in script
    for kind, plan in world["plans"].items():
        env = {k: str(v) for k, v in job["variables"].items()}
        env |= {"PILOTPLAN_URL": world["url"], "PILOTPLAN_API_KEY": world["key"],
                "PLAN_ID": str(plan.pk), "CI_PROJECT_PATH": "shop/checkout",
                "CI_PIPELINE_ID": "7"}  # fmt: skip
        done = run_bash(script, env)
        assert (done.returncode == 0) is PROMOTE[kind], (kind, done.stdout, done.stderr)
    assert GateCall.objects.filter(pipeline_run="shop/checkout/7", mode="strict").count() == 3
