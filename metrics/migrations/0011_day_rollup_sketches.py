"""Day rollups, per-hour and per-day sketches (issue #15), and when each rollup was last written.

The SQL functions build and merge the sketches where the samples are (metrics/sketch.py has the
Python side and the accuracy they give). Existing data gets its day rollups and hour sketches
from the raw samples, the source of truth.
"""

import django.contrib.postgres.fields
import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models


# γ = (1 + α) / (1 − α) with α = 0.01: every value in bin k lies within 1 % of the bin's
# representative value (metrics.sketch.value_of). Keys stay within ±2,500 for |v| ≤ 1e12.
FUNCTIONS = """
CREATE FUNCTION metrics_sketch_key(v double precision) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN abs(v) < 1e-9 THEN 0
                ELSE (sign(v) * (ceil(ln(abs(v)) / ln(1.01 / 0.99)) + 1100))::integer END
$$;

CREATE FUNCTION metrics_sketch_put(state integer[], k integer, n integer) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    state[k] := coalesce(state[k], 0) + n;
    RETURN state;
END
$$;

CREATE AGGREGATE metrics_sketch_agg(integer, integer) (
    SFUNC = metrics_sketch_put, STYPE = integer[], INITCOND = '{}'
);

CREATE FUNCTION metrics_sketch_add(a integer[], b integer[]) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    i integer;
BEGIN
    IF a IS NULL OR cardinality(a) = 0 THEN RETURN b; END IF;
    IF b IS NULL OR cardinality(b) = 0 THEN RETURN a; END IF;
    FOR i IN array_lower(b, 1)..array_upper(b, 1) LOOP
        IF b[i] IS NOT NULL THEN
            a[i] := coalesce(a[i], 0) + b[i];
        END IF;
    END LOOP;
    RETURN a;
END
$$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION metrics_sketch_add(integer[], integer[]);
DROP AGGREGATE metrics_sketch_agg(integer, integer);
DROP FUNCTION metrics_sketch_put(integer[], integer, integer);
DROP FUNCTION metrics_sketch_key(double precision);
"""

BACKFILL = """
INSERT INTO metrics_dayrollup (plan_id, metric_id, bucket, count, sum, sum_sq, min, max, sketch)
SELECT plan_id, metric_id, bucket, sum(n), sum(s), sum(sq), min(lo), max(hi),
       metrics_sketch_agg(k, n::integer)
  FROM (SELECT plan_id, metric_id, date_trunc('day', observed_at, 'UTC') AS bucket,
               metrics_sketch_key(value) AS k, count(*) AS n, sum(value) AS s,
               sum(value * value) AS sq, min(value) AS lo, max(value) AS hi
          FROM metrics_sample GROUP BY 1, 2, 3, 4) AS bins
 GROUP BY 1, 2, 3;

UPDATE metrics_hourrollup AS r SET sketch = h.sketch
  FROM (SELECT plan_id, metric_id, bucket, metrics_sketch_agg(k, n::integer) AS sketch
          FROM (SELECT plan_id, metric_id, date_trunc('hour', observed_at, 'UTC') AS bucket,
                       metrics_sketch_key(value) AS k, count(*) AS n
                  FROM metrics_sample GROUP BY 1, 2, 3, 4) AS bins
         GROUP BY 1, 2, 3) AS h
 WHERE r.plan_id = h.plan_id AND r.metric_id = h.metric_id AND r.bucket = h.bucket;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("catalogue", "0002_metric_expected_interval"),
        ("metrics", "0010_webhook_error_categories"),
        ("pilots", "0013_plan_decision_settings"),
    ]

    operations = [
        migrations.AddField(
            model_name="hourrollup",
            name="sketch",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.IntegerField(null=True),
                db_default=[],
                help_text="Histogram: bin key → count.",
                size=None,
            ),
        ),
        migrations.AddField(
            model_name="hourrollup",
            name="updated_at",
            field=models.DateTimeField(
                db_default=django.db.models.functions.datetime.Now(),
                help_text="When ingestion last added samples to the bucket.",
            ),
        ),
        migrations.AddField(
            model_name="minuterollup",
            name="updated_at",
            field=models.DateTimeField(
                db_default=django.db.models.functions.datetime.Now(),
                help_text="When ingestion last added samples to the bucket.",
            ),
        ),
        migrations.CreateModel(
            name="DayRollup",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("bucket", models.DateTimeField(help_text="Start of the bucket (UTC, truncated).")),
                ("count", models.PositiveIntegerField()),
                ("sum", models.FloatField()),
                ("sum_sq", models.FloatField()),
                ("min", models.FloatField()),
                ("max", models.FloatField()),
                (
                    "updated_at",
                    models.DateTimeField(
                        db_default=django.db.models.functions.datetime.Now(),
                        help_text="When ingestion last added samples to the bucket.",
                    ),
                ),
                (
                    "sketch",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.IntegerField(null=True),
                        db_default=[],
                        help_text="Histogram: bin key → count.",
                        size=None,
                    ),
                ),
                (
                    "metric",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="catalogue.metricdefinition",
                    ),
                ),
                (
                    "plan",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="pilots.pilotplan",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("plan", "metric", "bucket"), name="metrics_dayrollup_bucket_unique"
                    )
                ],
            },
        ),
        migrations.RunSQL(FUNCTIONS, DROP_FUNCTIONS),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]
