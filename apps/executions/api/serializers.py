from __future__ import annotations

from rest_framework import serializers

from apps.executions.engine.redaction import redact
from apps.executions.models import Execution, ExecutionEvent, StepRun


class RedactedJSONField(serializers.JSONField):
    def to_representation(self, value):
        return redact(super().to_representation(value))


class StepRunSerializer(serializers.ModelSerializer):
    input = RedactedJSONField()
    output = RedactedJSONField()
    error = RedactedJSONField()
    duration_ms = serializers.IntegerField(read_only=True, allow_null=True)
    queue_wait_ms = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = StepRun
        fields = [
            "id",
            "node_id",
            "node_type",
            "activity",
            "scope",
            "attempt",
            "status",
            "input",
            "output",
            "error",
            "logs",
            "worker",
            "created_at",
            "dispatched_at",
            "started_at",
            "finished_at",
            "duration_ms",
            "queue_wait_ms",
        ]


class ExecutionListSerializer(serializers.ModelSerializer):
    workflow_slug = serializers.CharField(source="workflow.slug", read_only=True)
    duration_ms = serializers.IntegerField(read_only=True, allow_null=True)
    url = serializers.HyperlinkedIdentityField(view_name="api:execution-detail")

    class Meta:
        model = Execution
        fields = [
            "id",
            "url",
            "workflow",
            "workflow_slug",
            "status",
            "trigger",
            "created_at",
            "started_at",
            "finished_at",
            "duration_ms",
            "parent",
            "retry_of",
            "continued_from",
            "workflow_version",
            "queue",
        ]


class ExecutionDetailSerializer(ExecutionListSerializer):
    input = RedactedJSONField()
    output = RedactedJSONField()
    variables = RedactedJSONField()
    error = RedactedJSONField()
    steps = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)

    class Meta(ExecutionListSerializer.Meta):
        fields = ExecutionListSerializer.Meta.fields + [
            "input",
            "output",
            "variables",
            "error",
            "created_by",
            "last_seq",
            "pinned",
            "steps",
        ]

    def get_steps(self, execution) -> list[dict]:
        return StepRunSerializer(execution.steps.order_by("id"), many=True).data  # type: ignore[return-value]  # many=True: a ReturnList


class ExecutionEventSerializer(serializers.ModelSerializer):
    payload = RedactedJSONField()

    class Meta:
        model = ExecutionEvent
        fields = ["seq", "type", "node_id", "scope", "step", "payload", "actor", "created_at"]


class RunRequestSerializer(serializers.Serializer):
    input = serializers.JSONField(
        required=False, default=dict, help_text="The run input; checked against the workflow's input schema."
    )


class ProblemSerializer(serializers.Serializer):
    message = serializers.CharField()
    node = serializers.CharField(allow_null=True)
    field = serializers.CharField(allow_null=True)
    code = serializers.CharField()


class ValidationResultSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    problems = ProblemSerializer(many=True)


class RetryWithChangesSerializer(serializers.Serializer):
    input = serializers.JSONField(required=False, help_text="A new run input (default: the failed run's).")
    node_params = serializers.DictField(
        child=serializers.JSONField(), required=False, help_text="node id -> new params for that node."
    )
    preview = serializers.BooleanField(
        required=False, default=False, help_text="Only say where the new run would re-run from (nothing starts)."
    )


class SignalSerializer(serializers.Serializer):
    payload = serializers.JSONField(
        required=False, help_text="The signal's payload; checked against the schema the definition declares for it."
    )
