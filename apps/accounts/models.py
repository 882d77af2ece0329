from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey


class APIKey(AbstractAPIKey):
    """An API key for integrations: stored hashed, shown once, revocable.

    The library keeps `prefix`, `hashed_key`, `revoked`, `expiry_date` and `name`;
    we add the user the key acts as and when it was last used.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"


class APIToken(models.Model):
    """A bearer token from `POST /api/v1/auth/token` (`Authorization: Token <key>`).

    Only a SHA-256 digest of the key is stored (the key is 256 random bits, so a fast hash is
    enough: nothing to brute-force); it expires, and it can be rotated or revoked. The prefix
    (the part before the dot) names it in the admin and the audit log.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    prefix = models.CharField(max_length=16, db_index=True)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"token {self.prefix} of {self.user}"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class AuditLog(models.Model):
    """Security-relevant actions, append-only, for operators."""

    class Action(models.TextChoices):
        LOGIN = "login", "Login"
        LOGIN_FAILED = "login_failed", "Failed login"
        LOGOUT = "logout", "Logout"
        API_KEY_CREATED = "api_key_created", "API key created"
        API_KEY_REVOKED = "api_key_revoked", "API key revoked"
        SHARE_GRANTED = "share_granted", "Share granted"
        SHARE_REVOKED = "share_revoked", "Share revoked"
        PERMISSION_CHANGED = "permission_changed", "Permission changed"
        LOGIN_LOCKED_OUT = "login_locked_out", "Login locked out"
        TOKEN_ISSUED = "token_issued", "API token issued"
        TOKEN_REVOKED = "token_revoked", "API token revoked"
        CREDENTIAL_CREATED = "credential_created", "Credential created"
        CREDENTIAL_CHANGED = "credential_changed", "Credential changed"
        CREDENTIAL_DELETED = "credential_deleted", "Credential deleted"
        WEBHOOK_CREATED = "webhook_created", "Webhook created"
        WEBHOOK_CHANGED = "webhook_changed", "Webhook changed"
        WEBHOOK_DELETED = "webhook_deleted", "Webhook deleted"
        WEBHOOK_REFUSED = "webhook_refused", "Webhook delivery refused"
        WORKFLOW_DELETED = "workflow_deleted", "Workflow deleted"
        DEFINITION_EDITED = "definition_edited", "Definition edited"
        EXECUTION_CANCELLED = "execution_cancelled", "Run cancelled"
        WORKFLOWS_EXPORTED = "workflows_exported", "Workflows exported"
        WORKFLOWS_IMPORTED = "workflows_imported", "Workflows imported"
        TEMPLATE_PUBLISHED = "template_published", "Template published"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=40, choices=Action.choices, db_index=True)
    # For a failed login there is no actor: keep the username that was tried.
    username = models.CharField(max_length=150, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    target = models.CharField(max_length=200, blank=True, help_text="What the action was about, e.g. 'workflow 12'.")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        who = self.actor or self.username or "anonymous"
        return f"{self.get_action_display()} by {who} at {self.created_at:%Y-%m-%d %H:%M:%S}"
