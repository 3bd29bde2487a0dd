"""A team's metric catalogue: built-in metrics for everyone, a team's own for that team."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from catalogue.models import MetricDefinition
from catalogue.selectors import metric_by_key, metric_list_for_team
from catalogue.services import metric_create

pytestmark = pytest.mark.django_db

NEW = {
    "key": "checkout_abandons",
    "name": "Checkout abandons",
    "unit": "count",
    "kind": "count",
    "direction": "lower",
}


def test_the_builtin_catalogue_is_seeded_with_the_seeds_metrics(team):
    keys = set(metric_list_for_team(team_id=team.pk).values_list("key", flat=True))
    assert {"p1_defects", "p2_defects", "p3_defects", "sessions", "errors", "requests",
            "error_rate", "p95_latency", "csat", "nps"} <= keys  # fmt: skip


def test_a_teams_metric_is_its_own(team, other_team, po):
    metric = metric_create(team=team, user=po, **NEW)
    assert metric_by_key(key="checkout_abandons", team_id=team.pk) == metric
    assert metric_by_key(key="checkout_abandons", team_id=other_team.pk) is None


@pytest.mark.parametrize("key", ["csat", "CSAT", "checkout_abandons"])
def test_a_key_cannot_repeat_a_builtin_or_team_metric(team, key, po):
    metric_create(team=team, user=po, **NEW)
    count = MetricDefinition.objects.count()
    with pytest.raises(ValidationError) as refused:
        metric_create(team=team, user=po, **{**NEW, "key": key})
    assert "key" in refused.value.message_dict
    assert MetricDefinition.objects.count() == count


def test_bad_kind_is_refused_naming_the_field(team, po):
    with pytest.raises(ValidationError) as refused:
        metric_create(team=team, user=po, **{**NEW, "kind": "vibes"})
    assert "kind" in refused.value.message_dict


def test_htmx_add_swaps_the_catalogue(client_for, team, developer):
    response = client_for(developer).post(
        reverse("catalogue:metric_add", args=[team.pk]), NEW, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert "<html" not in response.content.decode()
    assert "Checkout abandons" in response.content.decode()
    assert "metricsChanged" in response.headers["HX-Trigger"]


def test_invalid_add_is_422_with_the_reason_and_saves_nothing(client_for, team, po):
    count = MetricDefinition.objects.count()
    response = client_for(po).post(
        reverse("catalogue:metric_add", args=[team.pk]),
        {**NEW, "key": "csat"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422
    assert "already a metric" in response.content.decode()
    assert MetricDefinition.objects.count() == count


def test_plain_post_redirects_back(client_for, team, sm):
    response = client_for(sm).post(reverse("catalogue:metric_add", args=[team.pk]), NEW)
    assert response.status_code == 302
    assert MetricDefinition.objects.filter(team=team, key=NEW["key"]).exists()


def test_stakeholders_read_but_cannot_add(client_for, team, stakeholder):
    client = client_for(stakeholder)
    page = client.get(reverse("catalogue:metric_list", args=[team.pk]))
    added = client.post(reverse("catalogue:metric_add", args=[team.pk]), NEW)
    assert page.status_code == 200
    assert "Add a metric" not in page.content.decode()
    assert added.status_code == 403
    assert not MetricDefinition.objects.filter(team=team).exists()


def test_outsiders_get_404_and_anonymous_users_login(client, client_for, team, outsider):
    for method, name in (("get", "catalogue:metric_list"), ("post", "catalogue:metric_add")):
        url = reverse(name, args=[team.pk])
        assert getattr(client_for(outsider), method)(url, NEW).status_code == 404
        response = getattr(client, method)(url, NEW)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    assert not MetricDefinition.objects.filter(team=team).exists()


def test_catalogue_query_count_is_constant(client_for, team, po, django_assert_num_queries):
    client = client_for(po)
    url = reverse("catalogue:metric_list", args=[team.pk])
    client.get(url)
    with django_assert_num_queries(4) as baseline:
        client.get(url)
    for i in range(5):
        metric_create(team=team, user=po, **{**NEW, "key": f"extra_{i}"})
    with django_assert_num_queries(len(baseline.captured_queries)):
        client.get(url)
