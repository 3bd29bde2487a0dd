"""Uploading samples as CSV in the browser (without a browser: the test client)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from metrics.models import Sample
from pilots.models import PilotPlan
from tests.factories import running_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan(team, po):
    today = timezone.localdate(timezone=dt.UTC)
    return running_plan(
        team=team, owner=po, start_date=today - dt.timedelta(days=2), template=False
    )


def at(minutes_ago: int) -> str:
    return (timezone.now() - dt.timedelta(minutes=minutes_ago)).isoformat()


def csv_file(text: str, name: str = "samples.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def url(plan) -> str:
    return reverse("metrics:sample_upload", args=[plan.pk])


GOOD = (
    "metric,observed_at,value,source,id\n"
    f"p95_latency,{at(3)},210,grafana,\n"
    f"p95_latency,{at(2)},220,,\n"
    f"p1_defects,{at(1)},1,jira,BUG-7\n"
)


def test_the_upload_page_shows_the_format(client_for, plan, developer, django_assert_num_queries):
    client = client_for(developer)
    with django_assert_num_queries(4):  # session, user, plan (with team), role
        response = client.get(url(plan))
    assert response.status_code == 200
    assert "metric,observed_at,value,source,id" in response.content.decode()


def test_a_good_file_is_stored_and_redirects_with_a_message(client_for, plan, po):
    client = client_for(po)

    response = client.post(url(plan), {"file": csv_file(GOOD)})

    assert response.status_code == 302
    assert response.url == url(plan)
    page = client.get(response.url).content.decode()
    assert "Stored 3 new samples (0 already stored)." in page
    assert sorted(Sample.objects.values_list("source", "external_id")) == [
        ("csv", ""),
        ("grafana", ""),
        ("jira", "BUG-7"),
    ]


def test_uploading_the_same_file_again_stores_nothing_twice(client_for, plan, po):
    client = client_for(po)
    client.post(url(plan), {"file": csv_file(GOOD)})
    response = client.post(url(plan), {"file": csv_file(GOOD)}, follow=True)
    assert "Stored 0 new samples (3 already stored)." in response.content.decode()
    assert Sample.objects.count() == 3


def test_columns_may_come_in_any_order_and_source_and_id_may_be_left_out(client_for, plan, po):
    text = f"\ufeffValue,Metric,Observed_at\n5,csat,{at(1)}\n\n4,csat,{at(2)}\n\n"
    response = client_for(po).post(url(plan), {"file": csv_file(text)})
    assert response.status_code == 302
    assert Sample.objects.count() == 2


def test_a_bad_file_lists_every_problem_by_line_and_stores_nothing(client_for, plan, po):
    text = (
        "metric,observed_at,value,source,id\n"
        f"p95_latency,{at(3)},210,,\n"
        f"vibes,{at(2)},1,,\n"
        f'p95_latency,"{at(1)}",abc,,\n'
        "p95_latency,2025-01-01T10:00:00,1,,\n"
    )

    response = client_for(po).post(url(plan), {"file": csv_file(text)})

    assert response.status_code == 422
    rows = [(e.line, e.field) for e in response.context["errors"]]
    assert rows == [(3, "metric"), (4, "value"), (5, "observed_at")]
    page = response.content.decode()
    assert "3 problems" in page
    assert "is not a metric of this team" in page
    assert not Sample.objects.exists()


def test_a_quoted_value_spanning_lines_keeps_the_line_numbers_right(client_for, plan, po):
    text = (
        "metric,observed_at,value,source,id\n"
        f'p95_latency,{at(2)},1,"multi\nline",\n'
        f"vibes,{at(1)},1,,\n"
    )
    response = client_for(po).post(url(plan), {"file": csv_file(text)})
    assert [(e.line, e.field) for e in response.context["errors"]] == [(4, "metric")]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (" , \n", 1, "The file is empty"),
        ("metric,when,value\n", 1, "Unknown column “when”"),
        ("metric,value\n", 1, "no “observed_at” column"),
        ("metric,observed_at,value,value\n", 1, "appears twice"),
        ("metric,observed_at,value\n", None, "no samples"),
        ("metric,observed_at,value\np95_latency,2025-05-05T10:00:00Z\n", 2, "has 2 cells"),
    ],
)
def test_a_malformed_file_is_422_with_the_reason(client_for, plan, po, text, line, reason):
    response = client_for(po).post(url(plan), {"file": csv_file(text)})
    assert response.status_code == 422
    error = response.context["errors"][0]
    assert error.line == line
    assert reason in error.message


def test_a_file_that_is_not_utf8_is_refused(client_for, plan, po):
    upload = SimpleUploadedFile("x.csv", "metric,observed_at,value\ncsat,é,1\n".encode("latin-1"))
    response = client_for(po).post(url(plan), {"file": upload})
    assert response.status_code == 422
    assert "not UTF-8" in response.content.decode()


def test_more_than_10000_samples_are_refused(client_for, plan, po):
    text = "metric,observed_at,value,source\n" + "".join(
        f"csat,{at(1)},3,s{i}\n" for i in range(10_001)
    )
    response = client_for(po).post(url(plan), {"file": csv_file(text)})
    assert response.status_code == 422
    assert "more than 10,000 samples" in response.content.decode()
    assert not Sample.objects.exists()


def test_no_file_or_an_empty_one_is_a_form_error(client_for, plan, po):
    client = client_for(po)
    response = client.post(url(plan), {})
    assert response.status_code == 422
    assert "required" in response.content.decode()
    response = client.post(url(plan), {"file": csv_file("")})
    assert response.status_code == 422
    assert "empty" in response.content.decode()


def test_a_plan_that_is_not_running_says_so(client_for, plan, po):
    PilotPlan.objects.filter(pk=plan.pk).update(status=PilotPlan.Status.APPROVED)
    client = client_for(po)
    assert "samples are accepted while a plan is Running" in client.get(url(plan)).content.decode()
    response = client.post(url(plan), {"file": csv_file(GOOD)})
    assert response.status_code == 422
    assert "is Approved" in response.content.decode()
    assert not Sample.objects.exists()


def test_htmx_swaps_the_card_with_the_result(client_for, plan, po):
    client = client_for(po)

    bad = client.post(url(plan), {"file": csv_file("metric,value\n")}, HTTP_HX_REQUEST="true")
    good = client.post(url(plan), {"file": csv_file(GOOD)}, HTTP_HX_REQUEST="true")

    assert bad.status_code == 422
    assert "<html" not in bad.content.decode()
    assert good.status_code == 200
    assert "<html" not in good.content.decode()
    assert "Stored 3 new samples" in good.content.decode()
    assert "samplesChanged" in good.headers["HX-Trigger"]


def test_the_plan_page_links_to_the_upload_for_editors_only(client_for, plan, po, stakeholder):
    link = url(plan)
    assert (
        link in client_for(po).get(reverse("pilots:plan_document", args=[plan.pk])).content.decode()
    )
    page = client_for(stakeholder).get(reverse("pilots:plan_document", args=[plan.pk]))
    assert link not in page.content.decode()


# --- who may upload ----------------------------------------------------------------------------


def test_a_stakeholder_is_403(client_for, plan, stakeholder):
    client = client_for(stakeholder)
    assert client.get(url(plan)).status_code == 403
    assert client.post(url(plan), {"file": csv_file(GOOD)}).status_code == 403
    assert not Sample.objects.exists()


def test_an_outsider_is_404(client_for, plan, outsider):
    client = client_for(outsider)
    assert client.get(url(plan)).status_code == 404
    assert client.post(url(plan), {"file": csv_file(GOOD)}).status_code == 404


def test_anonymous_is_sent_to_login(client, plan):
    response = client.post(url(plan), {"file": csv_file(GOOD)})
    assert response.status_code == 302
    assert "/login/" in response.url
    assert not Sample.objects.exists()
