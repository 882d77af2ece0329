from __future__ import annotations

from rest_framework import serializers

from apps.executions.engine.orchestrator import InputError, check_input

from .. import services
from ..models import EventTrigger, Schedule, WebhookEndpoint


class ScheduleSerializer(serializers.ModelSerializer):
    next_fire_times = serializers.SerializerMethodField(
        help_text="The next five fire times, in the schedule's time zone."
    )
    active = serializers.BooleanField(read_only=True, help_text="Enabled, and the workflow is active.")

    class Meta:
        model = Schedule
        fields = [
            "id",
            "name",
            "cron",
            "timezone",
            "input",
            "enabled",
            "active",
            "next_fire_times",
            "created_at",
            "last_fired_at",
            "last_execution",
            "last_error",
        ]
        read_only_fields = ["created_at", "last_fired_at", "last_execution", "last_error"]

    def validate_cron(self, value: str) -> str:
        try:
            return services.check_cron(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate_timezone(self, value: str) -> str:
        try:
            return services.check_timezone(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate_input(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("the run input must be a JSON object")
        try:
            check_input(self.context["workflow"].definition, value)
        except InputError as exc:
            raise serializers.ValidationError(f"{exc.field}: {exc.message}") from None
        return value

    def get_next_fire_times(self, schedule: Schedule) -> list[str]:
        return [t.isoformat() for t in schedule.next_fire_times(5)]

    def create(self, validated):
        data = dict(validated)
        return services.create_schedule(
            self.context["workflow"],
            cron=data["cron"],
            timezone_name=data.get("timezone", "UTC"),
            input=data.get("input"),
            enabled=data.get("enabled", True),
            name=data.get("name", ""),
            acting_user=self.context["request"].user,
        )

    def update(self, schedule, validated):
        return services.update_schedule(schedule, **validated)


class EventTriggerSerializer(serializers.ModelSerializer):
    class Meta:
        model = EventTrigger
        fields = ["id", "event_type", "condition", "input_mapping", "enabled", "created_at", "last_fired_at"]
        read_only_fields = ["created_at", "last_fired_at"]

    def validate_condition(self, value):
        try:
            services.check_condition(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value or None

    def validate_input_mapping(self, value):
        try:
            services.check_input_mapping(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value or None

    def create(self, validated):
        return EventTrigger.objects.create(
            workflow=self.context["workflow"], created_by=self.context["request"].user, **validated
        )


class WebhookSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    secret = serializers.SerializerMethodField(
        help_text="Only in the answer to create and rotate-secret: store it now, it is not shown again."
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "name", "enabled", "token", "url", "secret", "created_at", "last_used_at"]
        read_only_fields = ["token", "created_at", "last_used_at"]

    def to_representation(self, endpoint: WebhookEndpoint) -> dict:
        data = super().to_representation(endpoint)
        if not self.context.get("can_change", False):
            data["token"] = data["url"] = None  # viewers see that a webhook exists, not how to call it
        return data

    def get_url(self, endpoint: WebhookEndpoint) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(endpoint.path) if request else endpoint.path

    def get_secret(self, endpoint: WebhookEndpoint) -> str | None:
        return getattr(endpoint, "_new_secret", None)

    def create(self, validated):
        endpoint, secret = services.create_webhook(
            self.context["workflow"], acting_user=self.context["request"].user, **validated
        )
        endpoint._new_secret = secret
        return endpoint


class EventSerializer(serializers.Serializer):
    type = serializers.CharField(max_length=200)
    payload = serializers.JSONField(required=False, default=dict)
