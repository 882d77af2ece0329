"""Stored credentials (encrypted at rest) and the record of notification deliveries."""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from guardian.shortcuts import get_users_with_perms

from . import crypto
from .choices import AIPurpose, AIUsageStatus, CredentialKind, DeliveryChannel, DeliveryStatus

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"


def host_matches(pattern: str, host: str, port: int | None) -> bool:
    """`pattern` is 'name', '*.name' (subdomains only) or either with ':port' (then the port must match)."""
    pattern, host = pattern.strip().lower(), host.strip().lower().rstrip(".")
    want_port: int | None = None
    if pattern.count(":") == 1:  # host:port (an IPv6 literal has several colons and no port here)
        pattern, _, raw_port = pattern.partition(":")
        if not raw_port.isdigit():
            return False
        want_port = int(raw_port)
    if want_port is not None and want_port != port:
        return False
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and host != pattern[2:]
    return host == pattern.strip("[]")


HOST_PATTERN = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9\-\.]*[a-z0-9])?(:\d{1,5})?$|^\[[0-9a-f:]+\](:\d{1,5})?$", re.I)


class Credential(models.Model):
    """A secret a workflow refers to by name (`"auth": {"credential": "github"}`).

    A run may use it only when its owner granted it to the run's workflow (`workflows`), and
    only toward the hosts it lists (`allowed_hosts`); naming it in a definition needs the
    owner, or a user the owner gave `connectors.use_credential` on it. It is resolved inside
    the activity, so the secret never reaches step input, events or logs. The secret is
    write-only: nothing reads it back out but `get_secret()`.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="credentials")
    name = models.CharField(
        max_length=100,
        validators=[
            RegexValidator(NAME_PATTERN, "Use letters, digits, '.', '_' and '-', starting with a letter or digit.")
        ],
        help_text="What workflows call it, e.g. github.",
    )
    kind = models.CharField(max_length=20, choices=CredentialKind.choices)
    description = models.CharField(max_length=500, blank=True)
    username = models.CharField(max_length=200, blank=True, help_text="Basic auth: the username.")
    field_name = models.CharField(
        max_length=100,
        blank=True,
        help_text="API key kinds: the header (e.g. X-Api-Key) or query parameter (e.g. api_key).",
    )
    secret_encrypted = models.TextField(editable=False)
    allowed_hosts = models.JSONField(
        default=list,
        blank=True,
        help_text="Hosts the secret may be sent to: 'api.example.com', '*.example.com' (any subdomain), "
        "optionally with ':port'. Empty: none (the credential is refused for every request).",
    )
    workflows = models.ManyToManyField(
        "workflows.Workflow",
        blank=True,
        related_name="granted_credentials",
        help_text="The workflows whose runs may use this credential.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["owner_id", "name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="credential_unique_name_per_owner")]
        permissions = [("use_credential", "Can put the credential into workflow definitions")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def set_secret(self, plaintext: str) -> None:
        self.secret_encrypted = crypto.encrypt(plaintext)

    def get_secret(self) -> str:
        """The decrypted secret; raises crypto.SecretUnreadable when the keys changed."""
        return crypto.decrypt(self.secret_encrypted)

    @property
    def shared_with(self):
        """The users the owner let put this credential into definitions (`use_credential`)."""
        return get_users_with_perms(self, only_with_perms_in=["use_credential"], with_group_users=False).order_by(
            "username"
        )

    def allows_host(self, host: str, port: int | None) -> bool:
        """Whether the secret may be sent to `host` (and `port`), by `allowed_hosts`."""
        return any(host_matches(pattern, host, port) for pattern in self.allowed_hosts or [])

    @property
    def masked(self) -> str:
        """A hint that never reveals more than the last two characters."""
        try:
            secret = self.get_secret()
        except crypto.SecretUnreadable:
            return "(unreadable with the current key)"
        return "••••••" + (secret[-2:] if len(secret) >= 12 else "")


class Delivery(models.Model):
    """One notification sent by a step (email, Slack, webhook): what, where, how it went."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    channel = models.CharField(max_length=16, choices=DeliveryChannel.choices, db_index=True)
    target = models.CharField(max_length=500, help_text="Recipients or the destination (secret parts masked).")
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    execution = models.ForeignKey(
        "executions.Execution", null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    step = models.ForeignKey(
        "executions.StepRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    node_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.get_channel_display()} to {self.target} ({self.status})"


#
# AI accounting
#


class AIUsage(models.Model):
    """One call to the AI provider (or one answer from the cache): who, what model, what it cost.

    A row is written `pending` before the provider is called, so requests in flight count
    against the budgets; it is finished with the tokens and the latency when the answer comes.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="ai_usage"
    )
    purpose = models.CharField(max_length=20, choices=AIPurpose.choices, db_index=True)
    status = models.CharField(
        max_length=10, choices=AIUsageStatus.choices, default=AIUsageStatus.PENDING, db_index=True
    )
    model = models.CharField(max_length=200, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    cache_hit = models.BooleanField(default=False, db_index=True)
    cache_key = models.CharField(
        max_length=64, blank=True, help_text="sha256 of the normalised prompt and the call's options."
    )
    error = models.CharField(max_length=500, blank=True)
    execution = models.ForeignKey(
        "executions.Execution", null=True, blank=True, on_delete=models.SET_NULL, related_name="ai_usage"
    )
    node_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "AI usage"
        verbose_name_plural = "AI usage"
        indexes = [models.Index(fields=["user", "created_at"], name="ai_usage_user_day")]

    def __str__(self) -> str:
        return f"{self.purpose} by {self.user or 'nobody'}: {self.total_tokens} tokens ({self.get_status_display()})"


class AIBudget(models.Model):
    """A daily budget (UTC days): for one user, or, without a user, for everyone together.

    Empty limits fall back to the settings (AI_DAILY_* ); 0 means no limit.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="ai_budgets",
        help_text="Leave empty for the total budget shared by everyone.",
    )
    requests_per_day = models.PositiveIntegerField(
        null=True, blank=True, help_text="Calls to the provider a day; empty: the setting; 0: no limit."
    )
    tokens_per_day = models.PositiveIntegerField(
        null=True, blank=True, help_text="Tokens (prompt + completion) a day; empty: the setting; 0: no limit."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "AI budget"
        constraints = [
            models.UniqueConstraint(Coalesce(F("user"), Value(0)), name="ai_budget_one_per_user_and_one_total")
        ]

    def __str__(self) -> str:
        return f"AI budget for {self.user}" if self.user_id else "AI budget for everyone together"


class AICacheEntry(models.Model):
    """A provider's answer, kept for AI_CACHE_SECONDS under the hash of the normalised prompt."""

    key = models.CharField(max_length=64, primary_key=True)
    model = models.CharField(max_length=200)
    answer = models.JSONField(help_text="{content, model, usage, finish_reason} as the provider gave it.")
    hits = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "AI cache entry"
        verbose_name_plural = "AI cache entries"

    def __str__(self) -> str:
        return f"{self.key[:12]}… ({self.model})"
