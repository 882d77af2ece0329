"""Comments on workflows (and their nodes), the activity feed and in-app notifications."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Comment(models.Model):
    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="comments")
    node_id = models.CharField(
        max_length=64, blank=True, help_text="The node commented on; empty for the whole workflow."
    )
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workflow_comments")
    body = models.TextField(max_length=10_000)
    created_at = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    is_deleted = models.BooleanField(
        default=False, help_text="Deleted comments keep their place in the thread, without text."
    )

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["workflow", "node_id", "created_at"])]

    def __str__(self) -> str:
        return f"Comment {self.pk} by {self.author} on {self.workflow}"


class Activity(models.Model):
    class Verb(models.TextChoices):
        CREATED = "created", "created"
        EDITED = "edited", "edited"
        RAN = "ran", "ran"
        FAILED = "failed", "failed"
        SHARED = "shared", "shared"
        COMMENTED = "commented", "commented on"
        RESTORED = "restored", "restored"

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="activities"
    )
    verb = models.CharField(max_length=16, choices=Verb.choices, db_index=True)
    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="activities")
    target = models.CharField(
        max_length=200, blank=True, help_text="What else it is about: 'execution 12', 'version 40', 'user bob'."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "activities"
        indexes = [models.Index(fields=["workflow", "-created_at"]), models.Index(fields=["actor", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.actor or 'system'} {self.get_verb_display()} {self.workflow}"


class Notification(models.Model):
    class Kind(models.TextChoices):
        SHARED = "shared", "Shared with you"
        COMMENT = "comment", "Comment on your workflow"
        REPLY = "reply", "Reply to your comment"
        MENTION = "mention", "Mention"
        APPROVAL = "approval", "Approval waiting"

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=16, choices=Kind.choices, db_index=True)
    text = models.CharField(max_length=500)
    url = models.CharField(max_length=500, blank=True)
    read = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(name="notification_unread", fields=["recipient"], condition=models.Q(read=False))]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.recipient}: {self.text[:40]}"


class NotificationPreference(models.Model):
    """Which notifications a user also gets by email (in-app ones always appear)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    email_shared = models.BooleanField(default=True)
    email_comment = models.BooleanField(default=True)
    email_reply = models.BooleanField(default=True)
    email_mention = models.BooleanField(default=True)
    email_approval = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"Notification preferences of {self.user}"

    def wants_email(self, kind: str) -> bool:
        return bool(getattr(self, f"email_{kind}", False))
