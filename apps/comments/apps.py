from django.apps import AppConfig


class CommentsConfig(AppConfig):
    name = "apps.comments"
    label = "comments"
    verbose_name = "Comments, activity and notifications"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (activity from revisions and execution status changes)
