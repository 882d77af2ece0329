"""Shapes of the metrics answers, for the OpenAPI schema (the views return plain dicts built
by apps.metrics.aggregation; these serializers document them, they do not build them)."""

from __future__ import annotations

from rest_framework import serializers


class MetricsFiltersEcho(serializers.Serializer):
    """The filters the answer is for, as parsed."""

    field_from = serializers.DateTimeField(help_text="Start of the range (inclusive).")
    to = serializers.DateTimeField(help_text="End of the range (exclusive); may be later than now for a custom range.")
    bucket = serializers.ChoiceField(choices=["minute", "hour", "day", "week", "month"])
    tz = serializers.CharField()
    range = serializers.ChoiceField(choices=["hour", "day", "week", "month", "custom"])
    workflow = serializers.IntegerField(allow_null=True)

    def get_fields(self):  # "from" is a Python keyword
        fields = super().get_fields()
        fields["from"] = fields.pop("field_from")
        return fields


class MetricsRunStats(serializers.Serializer):
    """What is known of a set of finished runs (continue-as-new segments left out)."""

    count = serializers.IntegerField(help_text="Runs that finished.")
    successes = serializers.IntegerField()
    failures = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True, help_text="completed ÷ count (0–1); null without runs.")
    p50_ms = serializers.FloatField(allow_null=True)
    p90_ms = serializers.FloatField(allow_null=True)
    p95_ms = serializers.FloatField(allow_null=True)
    p99_ms = serializers.FloatField(allow_null=True)
    avg_ms = serializers.FloatField(allow_null=True)
    min_ms = serializers.FloatField(allow_null=True)
    max_ms = serializers.FloatField(allow_null=True)
    failures_by_type = serializers.DictField(
        child=serializers.IntegerField(), help_text="Failed runs by error type, most frequent first."
    )
    exact = serializers.BooleanField(help_text="False when percentiles were estimated from hourly rollups.")


class MetricsRangeStats(MetricsRunStats):
    elapsed_hours = serializers.FloatField(help_text="Hours of the range that have passed (its end capped at now).")
    throughput_per_hour = serializers.FloatField(
        allow_null=True,
        help_text="count ÷ elapsed_hours; null until at least an hour of the range has passed (a rate over "
        "minutes would be a projection).",
    )


class MetricsTrend(serializers.Serializer):
    count_change_pct = serializers.FloatField(allow_null=True)
    success_rate_change_points = serializers.FloatField(allow_null=True)
    p50_change_pct = serializers.FloatField(allow_null=True)
    p95_change_pct = serializers.FloatField(allow_null=True)
    failures_change_pct = serializers.FloatField(allow_null=True)


class MetricsPreviousPeriod(MetricsRangeStats):
    field_from = serializers.DateTimeField()
    to = serializers.DateTimeField()

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("field_from")
        return fields


class MetricsSummary(MetricsRangeStats):
    previous = MetricsPreviousPeriod(help_text="The period of the same length just before the range.")
    trend = MetricsTrend()


class MetricsWorkflowStats(MetricsRangeStats):
    workflow_id = serializers.IntegerField()
    workflow = serializers.CharField()


class MetricsSummaryResponse(serializers.Serializer):
    filters = MetricsFiltersEcho()
    summary = MetricsSummary()
    workflows = MetricsWorkflowStats(many=True, help_text="Per workflow, busiest first.")


class MetricsBucket(MetricsRunStats):
    bucket = serializers.DateTimeField(help_text="Start of the bucket, in tz.")
    bucket_end = serializers.DateTimeField(help_text="End of the bucket (exclusive), in tz.")
    # A declared field: DRF's metaclass moves it out of the class, so it does not shadow Serializer.partial.
    partial = serializers.BooleanField(
        help_text="The bucket is cut by the range's start, its end or now: its count covers only part of it."
    )  # type: ignore[assignment]
    queue_wait_p50_ms = serializers.FloatField(allow_null=True)
    queue_wait_p95_ms = serializers.FloatField(allow_null=True)
    queue_wait_avg_ms = serializers.FloatField(allow_null=True)


class MetricsTimeseriesResponse(serializers.Serializer):
    filters = MetricsFiltersEcho()
    series = MetricsBucket(
        many=True, help_text="One row per bucket, empty buckets included (count 0). Counts per bucket, never a rate."
    )
