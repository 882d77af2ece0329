from __future__ import annotations

import reversion
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.urls import reverse


def empty_definition() -> dict:
    return {"format_version": 1, "nodes": [], "edges": []}


@reversion.register()
class Workflow(models.Model):
    """A workflow: a definition document plus who owns it and who may see it.

    Object permissions (guardian): view_workflow, change_workflow, delete_workflow
    and admin_workflow (may share). The owner holds all four.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="workflows")
    team = models.ForeignKey(Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="workflows")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    definition = models.JSONField(default=empty_definition)
    is_active = models.BooleanField(default=True, help_text="Inactive workflows keep their history but start no runs.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("admin_workflow", "Can share and manage permissions of the workflow")]
        indexes = [models.Index(fields=["-updated_at"])]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("workflows:detail", args=[self.pk])


class Subflow(models.Model):
    """A shared sub-graph that `subflow` nodes inline (by slug and version number).

    Every signed-in user may see and use a subflow; its owner and staff publish new versions.
    """

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="subflows")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class SubflowVersion(models.Model):
    """One published version of a subflow: immutable, so a plan that inlined it never changes."""

    subflow = models.ForeignKey(Subflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    graph = models.JSONField(help_text='{"nodes": [...], "edges": [...], "result"?: "$.steps.<id>.output"}')
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["subflow_id", "-number"]
        constraints = [models.UniqueConstraint(fields=["subflow", "number"], name="subflow_version_unique_number")]

    def __str__(self) -> str:
        return f"{self.subflow.slug} v{self.number}"
