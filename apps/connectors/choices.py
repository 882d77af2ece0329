from django.db import models


class CredentialKind(models.TextChoices):
    BEARER = "bearer", "Bearer token (Authorization: Bearer …)"
    API_KEY_HEADER = "api_key_header", "API key in a header"
    API_KEY_QUERY = "api_key_query", "API key in a query parameter"
    BASIC = "basic", "HTTP basic (username and password)"
    SECRET = "secret", "Secret value (webhook signing key, Slack webhook URL, …)"


class DeliveryChannel(models.TextChoices):
    EMAIL = "email", "Email"
    SLACK = "slack", "Slack"
    WEBHOOK = "webhook", "Webhook"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class AIPurpose(models.TextChoices):
    INTERPRET = "interpret", "Interpret (plain language to a definition)"
    COMPLETE = "ai.complete", "ai.complete step"


class AIUsageStatus(models.TextChoices):
    PENDING = "pending", "In flight"
    OK = "ok", "Answered"
    CACHED = "cached", "Answered from the cache"
    ERROR = "error", "Provider failed"
