"""``core.precompiled``: a query compiled once answers what its plain queryset answers, for every
plan and every shape it is used with, and a builder that cannot be precompiled is refused."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Membership, User
from core.precompiled import Precompiled, PrecompileError, _queryset, run_together
from pilots import selectors
from pilots.models import PilotPlan, ScopeItem
from pilots.services import plan_create_from_template
from tests.factories import MembershipFactory, TeamFactory, UserFactory, row_append

pytestmark = pytest.mark.django_db


def _fields(row: Any) -> dict[str, Any]:
    values = {f.attname: getattr(row, f.attname) for f in row._meta.concrete_fields}
    return {**values, "total": getattr(row, selectors.ROWS_TOTAL, None)}


@pytest.fixture
def plans(team, po) -> list[PilotPlan]:  # type: ignore[no-untyped-def]
    """Two plans of the template with different rows, and one with no rows in one list."""
    first = plan_create_from_template(team=team, author=po, today=dt.date(2026, 1, 7))
    second = plan_create_from_template(team=team, author=po, today=dt.date(2026, 1, 7))
    for n in range(13):  # more than a list shows
        row_append(first, "scope-items", po, kind=ScopeItem.Kind.INCLUDED, title=f"Story {n}")
    row_append(
        second, "scope-items", po, kind=ScopeItem.Kind.EXCLUDED, title="Not this", reason="Later"
    )
    return [first, second]


@pytest.mark.parametrize("rows", [selectors.ROWS_SHOWN + 1, 50, None])
def test_every_row_list_answers_as_its_plain_queryset(plans, rows) -> None:  # type: ignore[no-untyped-def]
    for plan in plans:
        for model in selectors.ROW_LISTS:
            key = (model, rows)
            plain = list(selectors._row_list(key=key, plan_id=plan.pk))
            precompiled = selectors._ROW_LISTS.run(key=key, plan_id=plan.pk)
            assert [_fields(r) for r in precompiled] == [_fields(r) for r in plain], model
            # The neighbours come joined, as select_related gives them: no query to read them.
            with CaptureQueriesContext(connection) as queries:
                for row in precompiled:
                    for neighbour in selectors.ROW_LISTS[model]:
                        getattr(row, neighbour)
            assert len(queries) == 0, model


def test_the_plan_page_loads_what_the_plain_queries_load(plans, po) -> None:  # type: ignore[no-untyped-def]
    for plan in plans:
        loaded = selectors.plan_page(user=po, plan_id=plan.pk)
        plain = selectors.plan_for_user(
            user=po, plan_id=plan.pk, queryset=selectors.plan_detail_queryset()
        )
        plain_health = selectors.plan_first_rows_queryset().get(pk=plan.pk)
        for name in selectors._health_annotations():
            assert getattr(loaded, name) == getattr(plain_health, name), name
        assert loaded.title == plain.title and loaded.team == plain.team
        assert loaded.viewer_role == plain.viewer_role
        assert [s.key for s in loaded.sections.all()] == [s.key for s in plain.sections.all()]
        key = (ScopeItem, selectors.ROWS_SHOWN + 1)
        shown = [r.pk for r in selectors._row_list(key=key, plan_id=plan.pk)]
        assert [r.pk for r in loaded.scope_items.all()] == shown
        assert set(shown) <= {r.pk for r in plain.scope_items.all()}
        assert all(row.plan is loaded for row in loaded.scope_items.all())
        # Narrowing a loaded list queries this plan's rows, not every plan's.
        assert set(loaded.scope_items.filter(kind=ScopeItem.Kind.EXCLUDED)) == set(
            ScopeItem.objects.filter(plan=plan, kind=ScopeItem.Kind.EXCLUDED)
        )


def test_the_plan_page_keeps_its_access_rule(plans) -> None:  # type: ignore[no-untyped-def]
    outsider = MembershipFactory(
        team=TeamFactory(slug="other"), role=Membership.Role.PRODUCT_OWNER, user=UserFactory()
    ).user
    with pytest.raises(Http404):
        selectors.plan_page(user=outsider, plan_id=plans[0].pk)
    missing = PilotPlan.objects.order_by("-pk").first().pk + 1000  # type: ignore[union-attr]
    with pytest.raises(Http404):
        selectors.plan_page(user=outsider, plan_id=missing)


def test_a_builder_that_reads_the_clock_is_refused(po: User) -> None:
    impure = Precompiled(
        lambda *, plan_id: PilotPlan.objects.filter(pk=plan_id, created_at__lte=timezone.now())
    )
    with pytest.raises(PrecompileError, match="changes between builds"):
        impure.run(plan_id=1)


def test_a_value_written_into_the_sql_is_refused() -> None:
    limited = Precompiled(lambda *, rows: PilotPlan.objects.all()[: 10 + abs(rows)])
    with pytest.raises(PrecompileError):
        limited.run(rows=5)


def test_a_value_the_query_does_not_use_is_refused() -> None:
    unused = Precompiled(lambda *, plan_id: PilotPlan.objects.all())
    with pytest.raises(PrecompileError, match="Not a parameter"):
        unused.run(plan_id=1)


def test_the_portfolio_answers_for_any_number_of_plans_as_its_plain_queryset(plans) -> None:  # type: ignore[no-untyped-def]
    from decisions import selectors as portfolio

    def described(rows: list[PilotPlan]) -> list[tuple[Any, ...]]:
        names = ("pk", "title", "unresolved_episodes", "latest_met", "signed_reviews")
        return sorted(tuple(getattr(p, n) for n in names) for p in rows)

    for ids in ([plans[0].pk], [p.pk for p in plans], [plans[1].pk, plans[0].pk, 10**9]):
        plain = list(portfolio._portfolio_plans(plan_ids=ids))
        assert described(portfolio._PORTFOLIO_PLANS.run(plan_ids=ids)) == described(plain)
        assert {p.pk for p in plain} == set(ids) - {10**9}
    assert [r.plan.pk for r in portfolio.portfolio_rows(plan_ids=[plans[1].pk, plans[0].pk])] == [
        plans[1].pk,
        plans[0].pk,
    ]
    assert portfolio.portfolio_rows(plan_ids=[]) == []


def test_the_plan_pages_backlog_and_cohort_reads_answer_as_their_plain_querysets(  # type: ignore[no-untyped-def]
    plans, po
) -> None:
    from backlog.participants import selectors as participants
    from backlog.selectors import _scope_item_statuses, scope_item_statuses
    from backlog.services import backlog_item_create

    first = plans[0]
    reference = first.scope_items.exclude(reference="").first().reference  # type: ignore[union-attr]
    item = backlog_item_create(team_id=first.team_id, user=po, title="The story")
    ScopeItem.objects.filter(plan=first, reference=reference).update(reference=item.reference)
    reference = item.reference
    for plan in plans:
        plain = dict(_scope_item_statuses(team_id=plan.team_id, plan_id=plan.pk))
        statuses = scope_item_statuses(plan)
        assert set(statuses) == set(plain)
        assert participants.cohort_fit_for_plan(plan_id=plan.pk) == list(
            participants.CohortFit.objects.filter(plan=plan).order_by("dimension")
        )
    assert reference in scope_item_statuses(first)


def test_row_lists_join_only_the_neighbours_they_show(plans) -> None:  # type: ignore[no-untyped-def]
    """``select_related()`` without names follows every non-null foreign key: each row would
    come with its own copy of the plan, its team and its people."""
    for model, neighbours in selectors.ROW_LISTS.items():
        for rows in (selectors.ROWS_SHOWN + 1, None):
            sql = str(selectors._row_list(key=(model, rows), plan_id=plans[0].pk).query)
            assert sql.count(" JOIN ") == len(neighbours), (model, sql)
            assert '"pilots_pilotplan"' not in sql, model


def test_queries_run_together_answer_as_each_run_alone(plans) -> None:  # type: ignore[no-untyped-def]
    bound = [
        selectors._ROW_LISTS.bind(key=(model, rows), plan_id=plan.pk)
        for plan in plans
        for model in selectors.ROW_LISTS
        for rows in (2, None)
    ]
    bound.append(selectors._SECTIONS.bind(plan_id=plans[1].pk))
    with CaptureQueriesContext(connection) as queries:
        together = run_together(*bound)
    assert len(queries) == len(bound)  # each logged as Django logs a query, values written in
    assert f'"plan_id" = {plans[0].pk}' in queries.captured_queries[0]["sql"]
    alone = [list(_queryset(query)) for query in bound]  # what Precompiled.run reads
    assert [[_fields(r) for r in rows] for rows in together] == [
        [_fields(r) for r in rows] for rows in alone
    ]
    assert any(len(rows) == 2 for rows in together)  # the shapes differ: LIMIT 2 and every row
    assert run_together() == []


def test_a_precompiled_query_is_prepared_once_per_connection(plans) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL plans a precompiled query once per connection (a server-side prepared
    statement), not on every call: the plan page's own query took 4 ms to plan and 0.5 ms to
    run."""

    def prepared() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                ['%FROM "pilots_plansection"%'],
            )
            return cursor.fetchone()[0]

    for plan in plans * 3:
        sections = selectors._SECTIONS.run(plan_id=plan.pk)
        assert {s.plan_id for s in sections} == {plan.pk}
    assert prepared() == 1
    # DATABASE_PREPARED_STATEMENTS=false (prepare_threshold None): the same rows, unprepared.
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # psycopg notices and forgets its own
    raw = connection.connection
    raw.prepare_threshold, threshold = None, raw.prepare_threshold
    try:
        assert [s.pk for s in selectors._SECTIONS.run(plan_id=plans[0].pk)] == [
            s.pk for s in plans[0].sections.all()
        ]
        assert prepared() == 0
    finally:
        raw.prepare_threshold = threshold


def test_an_error_in_queries_run_together_is_a_database_error(plans) -> None:  # type: ignore[no-untyped-def]
    good = selectors._SECTIONS.bind(plan_id=plans[0].pk)
    bad = selectors._SECTIONS.bind(plan_id="not a number")
    with pytest.raises(DatabaseError), transaction.atomic():
        run_together(good, bad)
    assert len(run_together(good)[0]) == len(selectors._SECTIONS.run(plan_id=plans[0].pk))


def test_the_reads_of_every_push_and_plan_request_answer_as_their_plain_querysets(  # type: ignore[no-untyped-def]
    plans, team, po
) -> None:
    """The plan of ``plan_for_user``, the role of ``role_in_team`` and the metric table of
    ingestion: precompiled because nearly every request about a plan, and every push, asks
    them."""
    from accounts import permissions
    from catalogue.models import MetricDefinition
    from metrics import ingest
    from pilots import access

    other = TeamFactory(slug="other")
    outsider = MembershipFactory(team=other, role=Membership.Role.DEVELOPER).user
    MetricDefinition.objects.create(
        team=other, key="their_metric", name="Theirs", kind="count", direction="lower"
    )
    MetricDefinition.objects.create(
        team=team, key="our_metric", name="Ours", kind="gauge", direction="lower"
    )
    for plan in plans:
        (found,) = access._PLAN_WITH_TEAM.run(plan_id=plan.pk)
        plain = PilotPlan.objects.select_related("team").get(pk=plan.pk)
        assert {f.attname: getattr(found, f.attname) for f in PilotPlan._meta.concrete_fields} == {
            f.attname: getattr(plain, f.attname) for f in PilotPlan._meta.concrete_fields
        }
        assert found.team == plain.team and found.team.slug == plain.team.slug
    assert access._PLAN_WITH_TEAM.run(plan_id=plans[-1].pk + 1000) == []
    for user, team_id in [(po, team.pk), (outsider, other.pk), (outsider, team.pk)]:
        plain_role = Membership.objects.filter(user=user, team_id=team_id).values_list(
            "role", flat=True
        )
        assert permissions._MEMBERSHIP_ROLE.run(user_id=user.pk, team_id=team_id) == list(
            plain_role
        )
    assert permissions.role_in_team(user=outsider, team_id=team.pk) is None
    for user in (po, outsider):
        for plan in plans:
            assert access._ROLE_IN_PLANS_TEAM.run(user_id=user.pk, plan_id=plan.pk) == list(
                Membership.objects.filter(user=user, team_id=plan.team_id).values_list(
                    "role", flat=True
                )
            )
        assert access._ROLE_IN_PLANS_TEAM.run(user_id=user.pk, plan_id=plans[-1].pk + 1000) == []
    for of in (team, other):
        table = ingest._metric_table(of)
        plain_keys = MetricDefinition.objects.filter(Q(team=of) | Q(team__isnull=True)).values_list(
            "key", flat=True
        )
        assert set(table) == set(plain_keys)
    assert "our_metric" in ingest._metric_table(team)
    assert "their_metric" not in ingest._metric_table(team)


def test_a_text_value_is_a_parameter_too_the_credential_lookups(team, po) -> None:  # type: ignore[no-untyped-def]
    """A builder argument compared with a text column (a credential's prefix) is carried as a
    parameter as an integer one is: the key and token lookups of every request with a
    credential answer as their plain querysets, for any prefix."""
    from accounts import api_keys, tokens
    from accounts.models import ApiKey, PersonalToken

    key, _plaintext = api_keys.api_key_create(
        team=team, name="exporter", scopes=["ingest"], created_by=po
    )
    token, _plaintext = tokens.personal_token_create(
        user=po, name="laptop", scopes=["read"], expires_at=timezone.now() + dt.timedelta(days=30)
    )
    for prefix in (key.prefix, token.prefix, "000000000000", "'; --", ""):
        assert api_keys._KEYS_BY_PREFIX.run(prefix=prefix) == list(
            ApiKey.objects.filter(prefix=prefix)
        )
        assert tokens._TOKENS_BY_PREFIX.run(prefix=prefix) == list(
            PersonalToken.objects.filter(prefix=prefix)
        )
    (found,) = api_keys._KEYS_BY_PREFIX.run(prefix=key.prefix)
    with CaptureQueriesContext(connection) as queries:
        assert (found.team.slug, found.principal.pk) == (team.slug, key.principal_id)
    assert len(queries) == 0
    (found,) = tokens._TOKENS_BY_PREFIX.run(prefix=token.prefix)
    assert found.user == po
