"""Work items: offering, claiming, deciding, declining, reassigning, expiring.

The engine calls `offer_work_item` and `withdraw_work_items` inside its transaction,
holding the run's row lock. Everything here that finishes a work item takes the locks in
the same order (the run first, then the item) so a decision racing a cancellation cannot
deadlock. A decision resumes the run through `resume_waiting_step`; side effects
(notifications, the expiry countdown) go out after commit.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from guardian.shortcuts import get_groups_with_perms

from apps.accounts import roles
from apps.accounts.types import AnyUser
from apps.executions.choices import StepStatus
from apps.executions.engine.orchestrator import resume_waiting_step
from apps.executions.models import Execution, StepRun
from apps.sharing.services import has_workflow_perm, visible_workflows

from . import allocation as distribution
from .choices import DEFAULT_OUTCOMES, HELD_STATES, OPEN_STATES, WorkItemState
from .models import WorkerProfile, WorkItem

logger = logging.getLogger("workflow.worklist")


class WorkItemError(Exception):
    """The request cannot be done; `status` is the HTTP status that says why, `field` what was wrong."""

    def __init__(self, status: int, message: str, field: str | None = None):
        self.status = status
        self.message = message
        self.field = field
        super().__init__(message)


#
# Who may see and act
#


def _offered_to(user: User) -> Q:
    direct = WorkItem.offered_users.through.objects.filter(workitem_id=OuterRef("pk"), user_id=user.pk)
    via_group = WorkItem.offered_groups.through.objects.filter(workitem_id=OuterRef("pk"), group__user=user)
    return Q(Exists(direct)) | Q(Exists(via_group))


def _declined_by(user: User) -> Q:
    return Q(Exists(WorkItem.declined_by.through.objects.filter(workitem_id=OuterRef("pk"), user_id=user.pk)))


def inbox(user: AnyUser) -> QuerySet[WorkItem]:
    """Open items offered to `user` (directly or through a team) that they have not declined,
    plus the items they hold (claimed or started)."""
    if not user.is_authenticated:
        return WorkItem.objects.none()
    offered = Q(state=WorkItemState.OFFERED) & _offered_to(user) & ~_declined_by(user)
    held = Q(state__in=HELD_STATES, claimed_by=user)
    return WorkItem.objects.filter(offered | held)


def inbox_count(user: User) -> int:
    return inbox(user).count()


def visible_work_items(user: AnyUser) -> QuerySet[WorkItem]:
    """Every item `user` may look at: offered to them (declined or not), held or decided by them,
    or belonging to a workflow they administer, or (operators) to a workflow they can see.
    Superusers see all. Being staff is not enough: the operator and admin roles make their
    users staff for the admin site, and a role never opens a workflow (apps.accounts.roles)."""
    if not user.is_authenticated or not user.is_active:
        return WorkItem.objects.none()
    if user.is_superuser:
        return WorkItem.objects.all()
    managed = visible_workflows(
        user, "view" if roles.has_capability(user, roles.ACT_ON_OTHERS_RUNS) else "admin"
    ).values("pk")
    return WorkItem.objects.filter(_offered_to(user) | Q(claimed_by=user) | Q(workflow_id__in=managed))


def access_work_item(user: User, pk: int | str) -> WorkItem:
    """The item if `user` may see it; Http404 otherwise (strangers learn nothing)."""
    try:
        return visible_work_items(user).select_related("workflow", "claimed_by", "execution").get(pk=pk)
    except (WorkItem.DoesNotExist, ValueError, TypeError):
        raise Http404("No such work item.") from None


def can_manage(user: AnyUser, item: WorkItem) -> bool:
    """Workflow admins, operators who can see the workflow (as for acting on its runs,
    apps.executions.access) and superusers may reassign, force-complete and expire."""
    if not user.is_authenticated:
        return False
    if user.is_superuser or has_workflow_perm(user, item.workflow, "admin"):
        return True
    return roles.has_capability(user, roles.ACT_ON_OTHERS_RUNS) and has_workflow_perm(user, item.workflow, "view")


def may_be_offered(user: User, workflow) -> bool:
    """Whether a work item of `workflow` may be offered (or reassigned) to `user`: an active user
    who may view the workflow."""
    return bool(user.is_active and has_workflow_perm(user, workflow, "view"))


def is_eligible(user: AnyUser, item: WorkItem) -> bool:
    """May `user` claim the item: offered to them and not declined by them."""
    if not user.is_authenticated or not user.is_active:
        return False
    return WorkItem.objects.filter(pk=item.pk).filter(_offered_to(user) & ~_declined_by(user)).exists()


def eligible_users(item: WorkItem) -> QuerySet:
    """Active users the item is offered to (directly or through a team), minus those who declined."""
    User = get_user_model()
    offered = Q(pk__in=item.offered_users.values("pk")) | Q(groups__in=item.offered_groups.values("pk"))
    return (
        User.objects.filter(offered, is_active=True)
        .exclude(pk__in=item.declined_by.values("pk"))
        .distinct()
        .order_by("username")
    )


def actions_for(user: User, item: WorkItem, *, eligible: bool | None = None, manager: bool | None = None) -> list[str]:
    """What `user` may do with the item now (the UI shows these buttons, the API lists them)."""
    if item.state not in OPEN_STATES:
        return []
    eligible = is_eligible(user, item) if eligible is None else eligible
    manager = can_manage(user, item) if manager is None else manager
    actions: list[str] = []
    holder = item.claimed_by_id == user.pk
    if item.state == WorkItemState.OFFERED and eligible:
        actions += ["claim", "decline"]
    if holder:
        actions += ["complete", "release", "decline"]
        if item.state == WorkItemState.CLAIMED:
            actions.append("start")
    if manager:
        actions.append("reassign")
    return actions


#
# The engine contract
#


def offer_work_item(
    step: StepRun,
    *,
    title: str,
    description: str,
    users: list[str],
    groups: list[str],
    outcomes: list[str],
    due_at: datetime | None,
    allocation: dict | None = None,
) -> WorkItem:
    """Create the work item for a waiting approval step (the engine holds the run's row lock).

    `allocation` is the node's allocation block; when the engine does not pass it, it is read
    from the run's definition. Unknown usernames and group names are skipped with a warning in
    `notes`, and so are users and teams who could not act on it: a work item is offered only to
    people who may view the workflow (a user with a share, or a team the workflow is shared with),
    so whoever edits a definition cannot send work, or the run's data in its title, to anyone
    else. Notifications and the expiry countdown are sent after commit. Returns the new item.
    """
    User = get_user_model()
    workflow = Execution.objects.select_related("workflow").get(pk=step.execution_id).workflow
    # A long-lived worker's content-type cache goes stale when the database is restored (or
    # flushed between tests); guardian's checks below depend on it (as in engine/children.py).
    ContentType.objects.clear_cache()
    wanted_users = [str(u) for u in users if str(u).strip()]
    wanted_groups = [str(g) for g in groups if str(g).strip()]
    found_users = list(User.objects.filter(username__in=wanted_users, is_active=True))
    found_groups = list(Group.objects.filter(name__in=wanted_groups))
    notes = []
    missing_users = sorted(set(wanted_users) - {u.get_username() for u in found_users})
    missing_groups = sorted(set(wanted_groups) - {g.name for g in found_groups})
    if missing_users:
        notes.append(f"unknown or inactive users skipped: {', '.join(missing_users)}")
    if missing_groups:
        notes.append(f"unknown groups skipped: {', '.join(missing_groups)}")
    outsiders = [u for u in found_users if not may_be_offered(u, workflow)]
    # guardian types the result as Group | dict; without attach_perms it is a QuerySet of groups.
    shared_groups = set(get_groups_with_perms(workflow).values_list("pk", flat=True))  # type: ignore[union-attr]
    outside_groups = [g for g in found_groups if g.pk not in shared_groups]
    if outsiders:
        notes.append(
            "users who cannot see this workflow skipped (share it with them first): "
            f"{', '.join(sorted(u.get_username() for u in outsiders))}"
        )
        found_users = [u for u in found_users if u not in outsiders]
    if outside_groups:
        notes.append(
            f"teams this workflow is not shared with skipped: {', '.join(sorted(g.name for g in outside_groups))}"
        )
        found_groups = [g for g in found_groups if g not in outside_groups]
    workflow_id = workflow.pk
    if allocation is None:
        definition = Execution.objects.filter(pk=step.execution_id).values_list("definition", flat=True).first()
        allocation = distribution.node_spec(definition, step.node_id).get("allocation") or {}
    decision = distribution.decide(allocation, found_users, found_groups, workflow_id=workflow_id, node_id=step.node_id)
    if not decision.users and not decision.groups:
        why_nobody = "; ".join(f"{name}: {reason}" for name, reason in decision.skipped.items())
        notes.append(
            "offered to nobody: a workflow admin must reassign it" + (f" (skipped {why_nobody})" if why_nobody else "")
        )
    for note in notes:
        logger.warning("work item for step %s: %s", step.pk, note)
    item = WorkItem.objects.create(
        execution_id=step.execution_id,
        step=step,
        workflow_id=workflow_id,
        node_id=step.node_id[:64],
        title=title[:300],
        description=description,
        outcomes=list(outcomes) or list(DEFAULT_OUTCOMES),
        due_at=due_at,
        notes="\n".join(notes),
        allocation=decision.record(allocation, event="offered"),
        claim_timeout=allocation.get("claim_timeout"),
    )
    if decision.users:
        item.offered_users.set(decision.users)
    if decision.groups:
        item.offered_groups.set(decision.groups)
    _after_commit_announce(item.pk, "offered")
    if due_at is not None:
        item_id = item.pk

        def countdown() -> None:
            from . import (
                tasks,
            )  # tasks.py (the Celery entry points) imports this module: the task is reached when scheduled

            tasks.expire_work_item.apply_async((item_id,), eta=due_at)

        transaction.on_commit(countdown)
    return item


def withdraw_work_items(step_ids: list[int]) -> None:
    """The engine cancelled these approval steps (their run was cancelled): withdraw their items."""
    WorkItem.objects.filter(step_id__in=step_ids, state__in=OPEN_STATES).update(
        state=WorkItemState.WITHDRAWN, completed_at=timezone.now()
    )


#
# Acting on an item
#


def _lock_run(item: WorkItem) -> None:
    # Lock order everywhere: the run, then the item (the engine holds the run's lock when it withdraws).
    list(Execution.objects.select_for_update().filter(pk=item.execution_id).values_list("pk", flat=True))


def _conflict(item: WorkItem, user: User, wanted: str) -> WorkItemError:
    item.refresh_from_db(fields=["state", "claimed_by"])
    if item.state not in OPEN_STATES:
        return WorkItemError(409, f"the work item is already {item.state}")
    if item.claimed_by_id and item.claimed_by_id != user.pk:
        return WorkItemError(
            409, f"the work item is claimed by {item.claimed_by.get_username() if item.claimed_by else 'someone else'}"
        )
    if wanted in ("complete", "release", "start") and item.claimed_by_id != user.pk:
        return WorkItemError(409, f"claim the work item before you {wanted} it")
    if wanted == "claim" and item.claimed_by_id == user.pk:
        return WorkItemError(409, f"you already hold the work item (it is {item.state})")
    done = {"claim": "claimed", "release": "released", "start": "started", "complete": "completed"}.get(
        wanted, f"{wanted}ed"
    )
    return WorkItemError(409, f"the work item cannot be {done} now (it is {item.state})")


def claim_work_item(item: WorkItem, user: User) -> WorkItem:
    """Claim an offered item for `user`: exclusive (a conditional UPDATE; the loser gets 409)."""
    if not is_eligible(user, item):
        raise WorkItemError(403, "this work item is not offered to you")
    now = timezone.now()
    if not WorkItem.objects.filter(pk=item.pk, state=WorkItemState.OFFERED, claimed_by__isnull=True).update(
        state=WorkItemState.CLAIMED, claimed_by=user, claimed_at=now
    ):
        raise _conflict(item, user, "claim")
    item.refresh_from_db()
    if item.claim_timeout:
        _after_commit_claim_countdown(item)
    return item


def _after_commit_claim_countdown(item: WorkItem) -> None:
    if item.claimed_at is None or item.claim_timeout is None:
        return
    item_id, claimed_at, seconds = item.pk, item.claimed_at.isoformat(), float(item.claim_timeout)

    def send() -> None:
        from . import (
            tasks,
        )  # tasks.py (the Celery entry points) imports this module: the task is reached when scheduled

        tasks.claim_timed_out.apply_async((item_id, claimed_at), countdown=seconds)

    transaction.on_commit(send)


def release_work_item(item: WorkItem, user: User) -> WorkItem:
    """Give a held item back to everyone it is offered to."""
    if not WorkItem.objects.filter(pk=item.pk, state__in=HELD_STATES, claimed_by=user).update(
        state=WorkItemState.OFFERED, claimed_by=None, claimed_at=None, started_at=None
    ):
        raise _conflict(item, user, "release")
    item.refresh_from_db()
    return item


def start_work_item(item: WorkItem, user: User) -> WorkItem:
    """Mark a claimed item as being worked on."""
    if not WorkItem.objects.filter(pk=item.pk, state=WorkItemState.CLAIMED, claimed_by=user).update(
        state=WorkItemState.STARTED, started_at=timezone.now()
    ):
        raise _conflict(item, user, "start")
    item.refresh_from_db()
    return item


def check_decision(item: WorkItem, decision: str) -> None:
    if decision not in item.outcomes:
        raise WorkItemError(
            400, f"'{decision}' is not one of the outcomes ({', '.join(item.outcomes)})", field="decision"
        )


def complete_work_item(
    item: WorkItem, user: User, decision: str, comment: str = "", *, force: bool = False
) -> WorkItem:
    """Decide a held item and resume the run with {"decision", "comment", "by"}.

    Only the holder may complete (409 otherwise); `force` (operators) completes any open
    item. Raises WorkItemError(409) when the run no longer waits for the decision (nothing
    is changed then).
    """
    check_decision(item, decision)
    by = user.get_username()
    now = timezone.now()
    try:
        with transaction.atomic():
            _lock_run(item)
            qs = WorkItem.objects.filter(pk=item.pk)
            qs = qs.filter(state__in=OPEN_STATES) if force else qs.filter(state__in=HELD_STATES, claimed_by=user)
            changes = {"state": WorkItemState.COMPLETED, "decision": decision, "comment": comment, "completed_at": now}
            if force:
                changes["claimed_by"] = user
            if not qs.update(**changes):
                raise _conflict(item, user, "complete")

            if not resume_waiting_step(item.step_id, {"decision": decision, "comment": comment, "by": by}, actor=by):
                raise WorkItemError(409, "the run no longer waits for this decision")
    except WorkItemError:
        reconcile([item.pk])
        raise
    item.refresh_from_db()
    return item


def decline_work_item(item: WorkItem, user: User) -> WorkItem:
    """`user` turns the offer down: it stays offered to everyone else eligible (and goes
    back to them if `user` held it). With nobody left, the workflow's owner is told."""
    if item.state not in OPEN_STATES:
        raise WorkItemError(409, f"the work item is already {item.state}")
    if not (is_eligible(user, item) or item.claimed_by_id == user.pk):
        raise WorkItemError(403, "this work item is not offered to you")
    with transaction.atomic():
        _lock_run(item)
        item = WorkItem.objects.select_for_update().get(pk=item.pk)
        if item.state not in OPEN_STATES:
            raise WorkItemError(409, f"the work item is already {item.state}")
        item.declined_by.add(user)
        if item.claimed_by_id == user.pk:
            item.state, item.claimed_by, item.claimed_at, item.started_at = WorkItemState.OFFERED, None, None, None
            item.save(update_fields=["state", "claimed_by", "claimed_at", "started_at"])
        distribution.log(item, "declined", [user.get_username()])
        item.save(update_fields=["allocation"])
        if not _reoffer(item, passed=user, why="declined"):
            _after_commit_announce(item.pk, "declined", actor=user.get_username())
    return item


def _reoffer(item: WorkItem, *, passed: User, why: str) -> bool:
    """After `passed` declined or let a claim time out: an item allocated to one person goes to
    the next one the node's strategy picks (the caller holds the run's and the item's locks).
    Returns True when it was offered to someone new (they are told)."""
    spec_strategy = (item.allocation or {}).get("strategy")
    if spec_strategy not in distribution.SINGLE:
        return False
    definition = Execution.objects.filter(pk=item.execution_id).values_list("definition", flat=True).first()
    spec = distribution.node_spec(definition, item.node_id).get("allocation") or {"strategy": spec_strategy}
    step_input = StepRun.objects.filter(pk=item.step_id).values_list("input", flat=True).first() or {}
    assignees = step_input.get("assignees") or {}
    User = get_user_model()
    users = list(User.objects.filter(username__in=[str(u) for u in assignees.get("users", [])], is_active=True))
    groups = list(Group.objects.filter(name__in=[str(g) for g in assignees.get("groups", [])]))
    exclude = (
        set(item.declined_by.values_list("pk", flat=True))
        | set((item.allocation or {}).get("passed_ids", []))
        | {passed.pk}
    )
    decision = distribution.decide(
        spec,
        users,
        groups,
        workflow_id=item.workflow_id,
        node_id=item.node_id,
        exclude=exclude,
        after=passed.get_username(),
    )
    allocation = dict(item.allocation or {})
    allocation["reasons"] = {**allocation.get("reasons", {}), **decision.reasons}
    allocation["skipped"] = decision.skipped
    if why == "claim timed out":
        allocation["passed_ids"] = sorted({*allocation.get("passed_ids", []), passed.pk})
    item.allocation = allocation
    if not decision.users:
        distribution.log(item, "re-offer failed", [], f"nobody left after {passed.get_username()} {why}")
        item.notes = (
            f"{item.notes}\n{timezone.now():%Y-%m-%d %H:%M} nobody left to offer it to after "
            f"{passed.get_username()} {why}: a workflow admin must reassign it"
        ).strip()
        item.save(update_fields=["allocation", "notes"])
        return False
    item.offered_users.set(decision.users)
    to = [u.get_username() for u in decision.users]
    distribution.log(item, "re-offered", to, decision.reasons.get(to[0], ""))
    item.save(update_fields=["allocation"])
    _after_commit_announce(item.pk, "offered")
    return True


def claim_timed_out(item_id: int, claimed_at: str | None = None) -> bool:
    """A claim held past the item's claim_timeout without a decision: take it back and re-offer
    it (to the next person for one-person strategies, to everyone for offer_all). `claimed_at`
    names the claim the countdown was for: a later claim is left alone. Returns True when done."""
    item = WorkItem.objects.filter(pk=item_id).only("pk", "execution_id").first()
    if item is None:
        return False
    now = timezone.now()
    with transaction.atomic():
        _lock_run(item)
        item = WorkItem.objects.select_for_update(of=("self",)).select_related("claimed_by").get(pk=item_id)
        if item.state not in HELD_STATES or not item.claim_timeout or item.claimed_at is None:
            return False
        if claimed_at is not None and item.claimed_at.isoformat() != claimed_at:
            return False
        if (now - item.claimed_at).total_seconds() < item.claim_timeout:
            return False
        holder = item.claimed_by
        item.state, item.claimed_by, item.claimed_at, item.started_at = WorkItemState.OFFERED, None, None, None
        distribution.log(
            item,
            "claim timed out",
            [holder.get_username()] if holder else [],
            f"held {item.claim_timeout:g} s without a decision",
        )
        item.save(update_fields=["state", "claimed_by", "claimed_at", "started_at", "allocation"])
        if holder is None or not _reoffer(item, passed=holder, why="claim timed out"):
            _after_commit_announce(item.pk, "offered")
    return True


def reassign_work_item(item: WorkItem, target: User, *, acting_user: User) -> WorkItem:
    """Hand an open item to `target` (claimed by them). Workflow admins and staff only."""
    if not can_manage(acting_user, item):
        raise WorkItemError(403, "only the workflow's admins and staff may reassign work items")
    if not target.is_active:
        raise WorkItemError(400, f"{target.get_username()} is not an active user", field="user")
    if not may_be_offered(target, item.workflow):
        raise WorkItemError(
            400,
            f"{target.get_username()} cannot see this workflow: share it with them before handing them its work",
            field="user",
        )
    with transaction.atomic():
        _lock_run(item)
        item = WorkItem.objects.select_for_update().get(pk=item.pk)
        if item.state not in OPEN_STATES:
            raise WorkItemError(409, f"the work item is already {item.state}")
        item.offered_users.add(target)
        item.declined_by.remove(target)
        item.state, item.claimed_by, item.claimed_at, item.started_at = (
            WorkItemState.CLAIMED,
            target,
            timezone.now(),
            None,
        )
        note = f"{timezone.now():%Y-%m-%d %H:%M} reassigned to {target.get_username()} by {acting_user.get_username()}"
        item.notes = f"{item.notes}\n{note}".strip()
        distribution.log(
            item, "reassigned", [target.get_username()], f"reassigned to you by {acting_user.get_username()}"
        )
        item.save(update_fields=["state", "claimed_by", "claimed_at", "started_at", "notes", "allocation"])
        _after_commit_announce(item.pk, "reassigned", actor=acting_user.get_username())
    return item


def expire_work_item(item_id: int, *, force: bool = False, actor: str = "expiry") -> bool:
    """Expire an open item past its due time (any open item with `force`) and resume the run
    with {"decision": "expired"}, which takes the node's timeout path. Returns False when
    there was nothing to do (decided, withdrawn, not yet due)."""
    item = WorkItem.objects.filter(pk=item_id).only("pk", "execution_id", "step_id").first()
    if item is None:
        return False
    now = timezone.now()
    with transaction.atomic():
        _lock_run(item)
        qs = WorkItem.objects.filter(pk=item_id, state__in=OPEN_STATES)
        if not force:
            qs = qs.filter(due_at__lte=now)
        if not qs.update(state=WorkItemState.EXPIRED, decision="expired", completed_at=now):
            return False

        # False when the engine's own timeout timer resumed the step first: the outcome is the same.
        resume_waiting_step(item.step_id, {"decision": "expired"}, actor=actor)
        _after_commit_announce(item_id, "expired", actor=actor)
    return True


def reconcile(item_ids: list[int] | None = None, *, limit: int = 500) -> int:
    """Close open items whose step no longer waits (the engine finished it another way:
    its own timeout timer, a cancellation): expired when it ran out of time, else withdrawn."""
    qs = WorkItem.objects.filter(state__in=OPEN_STATES).exclude(step__status=StepStatus.WAITING)
    if item_ids is not None:
        qs = qs.filter(pk__in=item_ids)
    closed = 0
    now = timezone.now()
    for item in qs.select_related("step")[:limit]:
        step = item.step
        timed_out = (step.output or {}).get("decision") == "expired" or (step.error or {}).get(
            "type"
        ) == "ApprovalExpired"
        state = WorkItemState.EXPIRED if timed_out else WorkItemState.WITHDRAWN
        if WorkItem.objects.filter(pk=item.pk, state__in=OPEN_STATES).update(
            state=state, completed_at=now, decision="expired" if timed_out else ""
        ):
            closed += 1
            if timed_out:
                _after_commit_announce(item.pk, "expired", actor="timer")
    return closed


def sweep(*, limit: int = 500) -> dict[str, int]:
    """Periodic: expire overdue items (a lost countdown message delays expiry, never loses it)
    and close items whose step finished another way."""
    now = timezone.now()
    overdue = list(WorkItem.objects.filter(state__in=OPEN_STATES, due_at__lte=now).values_list("pk", flat=True)[:limit])
    expired = sum(1 for pk in overdue if expire_work_item(pk))
    held = WorkItem.objects.filter(state__in=HELD_STATES, claim_timeout__isnull=False).values_list(
        "pk", "claimed_at", "claim_timeout"
    )[:limit]
    late = [
        pk
        for pk, at, seconds in held
        if at is not None and seconds is not None and (now - at).total_seconds() >= seconds
    ]
    reoffered = sum(1 for pk in late if claim_timed_out(pk))
    return {"expired": expired, "closed": reconcile(limit=limit), "reoffered": reoffered}


#
# Notifications
#


def _after_commit_announce(item_id: int, event: str, *, actor: str = "") -> None:
    def send() -> None:
        from . import (
            tasks,
        )  # tasks.py (the Celery entry points) imports this module: the task is reached when scheduled

        tasks.announce.delay(item_id, event, actor)

    transaction.on_commit(send)


#
# Work profiles
#


def work_profile(user: User) -> WorkerProfile:
    """The person's work profile (an unsaved default when they have none)."""
    return WorkerProfile.objects.filter(user=user).first() or WorkerProfile(user=user)


def check_work_profile(changes: dict) -> dict[str, str]:
    """Problems by field with a profile change (available, away_until, max_open_items, capabilities)."""
    problems: dict[str, str] = {}
    if "available" in changes and not isinstance(changes["available"], bool):
        problems["available"] = "Give true or false."
    if changes.get("away_until") is not None and not isinstance(changes["away_until"], datetime):
        problems["away_until"] = "Give a date and time, e.g. 2030-01-31T18:00:00Z."
    limit = changes.get("max_open_items")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        problems["max_open_items"] = "Give a whole number of at least 1, or nothing for no limit."
    if "capabilities" in changes:
        tags = changes["capabilities"]
        if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t.strip()) <= 50 for t in tags):
            problems["capabilities"] = "Give a list of tags of 1 to 50 characters."
    return problems


def update_work_profile(user: User, **changes) -> WorkerProfile:
    """Set some of the person's availability, away_until, max_open_items and capabilities
    (validated by check_work_profile first). Takes effect for the next offers."""
    with transaction.atomic():
        profile, _ = WorkerProfile.objects.select_for_update().get_or_create(user=user)
        for key in ("available", "away_until", "max_open_items"):
            if key in changes:
                setattr(profile, key, changes[key])
        if "capabilities" in changes:
            profile.capabilities = distribution.normalise_tags(changes["capabilities"])
        profile.save()
    return profile


def why_rows(user: User, items) -> dict[int, str]:
    """Why `user` has each item (item id -> reason), for lists (one query for their teams)."""
    group_ids = set(user.groups.values_list("pk", flat=True))
    return {item.pk: distribution.why(item, user, group_ids) for item in items}
