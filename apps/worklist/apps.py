from django.apps import AppConfig


class WorklistConfig(AppConfig):
    name = "apps.worklist"
    label = "worklist"
    verbose_name = "Work items and approvals"

    def ready(self) -> None:
        from apps.executions.engine import (
            hooks,
        )  # in ready(): the engine imports models, loadable once the app registry is ready

        from .services import (
            offer_work_item,
            withdraw_work_items,
        )  # in ready(): it imports models, loadable once the app registry is ready

        hooks.register("offer_approval", offer_work_item)
        hooks.register("withdraw_approvals", withdraw_work_items)
