"""Drop the per-minute rollup (issue #15): one row per per-minute sample, it doubled the write
work and the disk of ingestion. Whole minutes are read from the raw samples grouped by minute
(always a range shorter than an hour or a day: the edges of a window, sustained triggers, the
24-hour chart) through the samples' natural-key index. Reversing recreates the table empty."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("metrics", "0013_sketch_key_inlined")]

    operations = [migrations.DeleteModel(name="MinuteRollup")]
