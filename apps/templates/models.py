"""Workflow templates: reusable definitions, public or shared like workflows."""

from __future__ import annotations

from typing import Any

import reversion
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Avg, Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse

from apps.executions.choices import ExecutionStatus


class Category(models.TextChoices):
    DATA_PROCESSING = "data_processing", "Data Processing"
    API_ORCHESTRATION = "api_orchestration", "API Orchestration"
    DEVOPS = "devops", "DevOps"
    APPROVALS = "approvals", "Approvals"
    CUSTOM = "custom", "Custom"


class WorkflowTemplateQuerySet(models.QuerySet):
    def with_stats(self) -> WorkflowTemplateQuerySet:
        """Annotate usage_count, runs_finished, runs_completed, rating (average, None without
        reviews) and review_count (one query, no N+1; the ratings are subqueries so the usage
        joins do not multiply them)."""
        finished = [ExecutionStatus.COMPLETED, ExecutionStatus.FAILED]
        reviews = TemplateReview.objects.filter(template=OuterRef("pk")).order_by().values("template")
        return self.annotate(
            rating=Subquery(reviews.annotate(a=Avg("rating")).values("a")),
            review_count=Coalesce(
                Subquery(reviews.annotate(n=Count("pk")).values("n"), output_field=IntegerField()), 0
            ),
            usage_count=Count("usages", distinct=True),
            runs_finished=Count(
                "usages__workflow__executions",
                filter=Q(usages__workflow__executions__status__in=finished),
                distinct=True,
            ),
            runs_completed=Count(
                "usages__workflow__executions",
                filter=Q(usages__workflow__executions__status=ExecutionStatus.COMPLETED),
                distinct=True,
            ),
        )


@reversion.register()
class WorkflowTemplate(models.Model):
    """A template. Object permissions (guardian) as for workflows: view, change, delete
    and admin (may share) on `workflow_templates.<perm>_workflowtemplate`; the owner holds all four.
    Public templates are visible to every signed-in user.
    """

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    category = models.CharField(max_length=32, choices=Category.choices, default=Category.CUSTOM, db_index=True)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    definition = models.JSONField()
    sample_input = models.JSONField(default=dict, blank=True)
    is_public = models.BooleanField(default=False, db_index=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="workflow_templates")
    # The workflow it was saved from: publishing it (is_public) needs admin rights on that workflow.
    source_workflow = models.ForeignKey(
        "workflows.Workflow",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The workflow this template was saved from, if any.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WorkflowTemplateQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [("admin_workflowtemplate", "Can share and manage permissions of the template")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("workflow_templates:detail", args=[self.pk])

    def stats(self) -> dict:
        """usage_count, success_rate (completed / finished runs, None without finished runs),
        rating (average of the reviews, None without any) and review_count."""
        # The with_stats() annotations, which the model class does not declare.
        annotated: Any = self if hasattr(self, "usage_count") else WorkflowTemplate.objects.with_stats().get(pk=self.pk)
        finished, completed = annotated.runs_finished, annotated.runs_completed
        return {
            "usage_count": annotated.usage_count,
            "runs_finished": finished,
            "success_rate": round(completed / finished, 4) if finished else None,
            "rating": round(float(annotated.rating), 2) if annotated.rating is not None else None,
            "review_count": annotated.review_count,
        }


class TemplateUsage(models.Model):
    """A workflow made from a template (the Workflow model stays unaware of templates)."""

    template = models.ForeignKey(
        WorkflowTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="usages"
    )
    workflow = models.OneToOneField("workflows.Workflow", on_delete=models.CASCADE, related_name="template_usage")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.workflow} from {self.template or 'a deleted template'}"


class TemplateReview(models.Model):
    """A rating (1 to 5) and a short review by someone who made a workflow from the template."""

    template = models.ForeignKey(WorkflowTemplate, on_delete=models.CASCADE, related_name="reviews")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="template_reviews")
    rating = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    text = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["template", "user"], name="template_review_one_per_user"),
            models.CheckConstraint(condition=Q(rating__gte=1) & Q(rating__lte=5), name="template_review_rating_1_to_5"),
        ]

    def __str__(self) -> str:
        return f"{self.rating}/5 for {self.template} by {self.user}"

    @property
    def stars(self) -> str:
        return "★" * self.rating + "☆" * (5 - self.rating)
