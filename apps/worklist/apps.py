from django.apps import AppConfig


class WorklistConfig(AppConfig):
    name = "apps.worklist"
    label = "worklist"
    verbose_name = "Work items and approvals"

    def ready(self) -> None:
        from apps.executions.engine import hooks

        from .services import offer_work_item, withdraw_work_items

        hooks.register("offer_approval", offer_work_item)
        hooks.register("withdraw_approvals", withdraw_work_items)
