"""A dry run of a definition on sample input, without the engine, the queue or the database.

The evaluator walks the compiled plan in order, the way the engine would: conditions are
evaluated with `expressions.evaluate`, params resolved with `expressions.resolve`, local
activities (set, transform, log, map, noop, …) really run, and activities that reach
outside the system (`external`, or not known to be side-effect free) are replaced by a
declared output (`mocks[node_id]`), else by the output recorded for that node in a real
run, else by a placeholder. Loops and parallel branches run one after the other; timers
do not wait; there are no retries. A step budget stops runaway loops.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone

from apps.executions.activities import ActivityContext, ActivityError
from apps.executions.choices import ExecutionStatus, StepStatus
from apps.executions.engine.redaction import redact
from apps.executions.models import Execution, StepRun
from apps.workflows.definition import expressions
from apps.workflows.definition.plan import NodePlan, Plan
from apps.workflows.definition.registry import get_activity

MAX_STEPS = 5_000
MAX_LOOP_ITERATIONS = 1_000
# Activities that are neither local nor external but safe to run (delay is simulated).
SAFE_ACTIVITIES = {"noop", "fail", "delay"}


@dataclass
class DryStep:
    node: str
    scope: str
    type: str
    status: str  # completed, failed, skipped
    activity: str = ""
    input: Any = None
    output: Any = None
    error: dict | None = None
    mocked: str | None = None  # declared, recorded, placeholder


class _Failed(Exception):
    def __init__(self, error: dict):
        self.error = error


class _Budget(Exception):
    pass


class DryRun:
    def __init__(self, plan: Plan, input: dict, *, mocks: dict | None = None, recorded: dict | None = None):
        self.plan = plan
        self.input = input
        self.vars: dict[str, Any] = dict(plan.variables)
        self.mocks = mocks or {}
        self.recorded = recorded or {}
        self.trace: list[DryStep] = []
        self.by_instance: dict[str, dict[str, DryStep]] = {}
        self.started_at = timezone.now()

    # -- context ------------------------------------------------------------------

    def _chain(self, instance: str) -> list[str]:
        chain, prefix, rest = [""], "", instance
        while rest:
            cut = rest.find("]/")
            if cut < 0:
                break
            prefix += rest[: cut + 2]
            chain.append(prefix)
            rest = rest[cut + 2 :]
        return chain

    def context(self, instance: str, extra: dict | None) -> dict:
        steps: dict[str, Any] = {}
        for inst in self._chain(instance):
            for node_id, step in self.by_instance.get(inst, {}).items():
                if step.status == "completed":
                    steps[node_id] = {"output": step.output, "status": step.status}
                else:
                    steps[node_id] = {"output": None, "status": step.status, "error": step.error}
        ctx = {
            "input": self.input,
            "vars": self.vars,
            "steps": steps,
            "execution": {"id": None, "workflow_id": None, "started_at": self.started_at.isoformat(), "dry_run": True},
            "item": None,
            "index": None,
            "iteration": None,
        }
        if extra:
            ctx.update(extra)
        return ctx

    def _record(self, instance: str, step: DryStep) -> DryStep:
        if len(self.trace) >= MAX_STEPS:
            raise _Budget()
        self.trace.append(step)
        self.by_instance.setdefault(instance, {})[step.node] = step
        return step

    # -- walking ------------------------------------------------------------------

    def run(self) -> dict:
        status, error, output = "completed", None, None
        try:
            self.walk("", "", None)
            output = (
                self.vars if self.plan.output is None else expressions.resolve(self.plan.output, self.context("", None))
            )
        except _Failed as exc:
            status, error = "failed", exc.error
        except _Budget:
            status, error = "failed", {"type": "DryRunLimit", "message": f"the dry run stopped after {MAX_STEPS} steps"}
        except (KeyError, expressions.ReferenceError_) as exc:
            status, error = "failed", {"type": "OutputError", "message": f"output: {exc}"}
        return {
            "status": status,
            "output": redact(output),
            "error": error,
            "variables": redact(self.vars),
            "steps": [redact(asdict(s)) for s in self.trace],
            "mocked": [s.node for s in self.trace if s.mocked],
        }

    def walk(self, instance: str, scope_id: str, extra: dict | None) -> Any:
        """Run one scope instance to its end; return its result or raise _Failed."""
        scope = self.plan.scope(scope_id)
        queue: list[tuple[NodePlan, dict | None]] = [(self.plan.node(scope.entry), extra)]
        while queue:
            node, node_extra = queue.pop(0)
            step = self.activate(instance, node, node_extra)
            if step.status == "failed":
                if node.on_error:
                    queue.append((self.plan.node(node.on_error), {**(extra or {}), "error": step.error}))
                else:
                    raise _Failed({**(step.error or {}), "node": node.id})
            queue.extend((target, extra) for target in self._ready_after(instance, node, extra))
        if scope.result:
            try:
                return expressions.resolve(scope.result, self.context(instance, extra))
            except (KeyError, expressions.ReferenceError_):
                return None
        last = None
        for node_id in scope.node_ids:
            done = self.by_instance.get(instance, {}).get(node_id)
            if done is not None and done.status == "completed":
                last = done
        return last.output if last else None

    def _takes(self, instance: str, pred: str, target: str) -> bool | None:
        step = self.by_instance.get(instance, {}).get(pred)
        if step is None:
            return None
        if step.status == "completed":
            return (step.output or {}).get("chosen") == target if step.type == "condition" else True
        return False

    def _ready_after(self, instance: str, node: NodePlan, extra: dict | None) -> list[NodePlan]:
        ready = []
        for target_id in node.successors:
            if target_id in self.by_instance.get(instance, {}):
                continue
            target = self.plan.node(target_id)
            verdicts = [self._takes(instance, p, target_id) for p in target.predecessors]
            if any(v is None for v in verdicts):
                continue
            if any(verdicts):
                ready.append(target)
            else:
                self._record(instance, DryStep(node=target.id, scope=instance, type=target.type, status="skipped"))
                ready.extend(self._ready_after(instance, target, extra))
        return ready

    # -- nodes --------------------------------------------------------------------

    def activate(self, instance: str, node: NodePlan, extra: dict | None) -> DryStep:
        handler = getattr(self, f"node_{node.type}", self.node_other)
        try:
            step = handler(instance, node, extra)
        except _Failed as exc:
            step = DryStep(
                node=node.id, scope=instance, type=node.type, status="failed", error={**exc.error, "node": node.id}
            )
        except (KeyError, expressions.ReferenceError_) as exc:
            step = DryStep(
                node=node.id,
                scope=instance,
                type=node.type,
                status="failed",
                error={"type": "ReferenceError", "message": str(exc.args[0] if exc.args else exc), "node": node.id},
            )
        except (expressions.ConditionError, TypeError, ValueError) as exc:
            step = DryStep(
                node=node.id,
                scope=instance,
                type=node.type,
                status="failed",
                error={"type": "ConditionError", "message": str(exc), "node": node.id},
            )
        self._record(instance, step)
        if step.status == "completed":
            changes: dict[str, Any] = {}
            if node.type == "activity" and node.spec.get("activity") == "set" and isinstance(step.output, dict):
                changes.update(step.output)
            if node.spec.get("output"):
                changes[node.spec["output"]] = step.output
            self.vars.update(changes)
        return step

    def node_activity(self, instance: str, node: NodePlan, extra: dict | None) -> DryStep:
        name = node.spec["activity"]
        params = expressions.resolve(node.spec.get("params", {}), self.context(instance, extra))
        step = DryStep(node=node.id, scope=instance, type="activity", status="completed", activity=name, input=params)
        spec = get_activity(name)
        if node.id in self.mocks:
            step.output, step.mocked = self.mocks[node.id], "declared"
            return step
        if spec is None:
            raise _Failed({"type": "UnknownActivity", "message": f"no activity named {name!r} is registered"})
        if spec.external or not (spec.local or name in SAFE_ACTIVITIES):
            if node.id in self.recorded:
                step.output, step.mocked = self.recorded[node.id], "recorded"
            else:
                step.output, step.mocked = (
                    {
                        "dry_run": True,
                        "activity": name,
                        "note": "not run: this activity reaches outside; declare its output in mocks",
                    },
                    "placeholder",
                )
            return step
        if name == "delay":
            step.output = params.get("output", {"slept": params.get("seconds")})
            return step
        ctx = ActivityContext(
            execution_id=0,
            step_id=0,
            node_id=node.id,
            attempt=1,
            deadline=timezone.now() + timedelta(seconds=10),
            dry_run=True,
        )
        try:
            output = spec.fn(params, ctx)
        except ActivityError as exc:
            raise _Failed({"type": exc.type, "message": exc.message}) from None
        except Exception as exc:  # a bug in an activity is a failed step here too
            raise _Failed({"type": type(exc).__name__, "message": str(exc)}) from None
        if name == "set" and ctx.variables:
            output = ctx.variables
        step.output = output
        return step

    def node_condition(self, instance: str, node: NodePlan, extra: dict | None) -> DryStep:
        ctx = self.context(instance, extra)
        chosen, index = None, None
        for i, case in enumerate(node.spec.get("cases", [])):
            if expressions.evaluate(case["when"], ctx):
                chosen, index = case["to"], i
                break
        if chosen is None:
            chosen = node.spec.get("default")
        return DryStep(
            node=node.id, scope=instance, type="condition", status="completed", output={"chosen": chosen, "case": index}
        )

    def node_timer(self, instance: str, node: NodePlan, extra: dict | None) -> DryStep:
        ctx = self.context(instance, extra)
        output = (
            {"until": expressions.resolve(node.spec["until"], ctx)}
            if "until" in node.spec
            else {"duration": expressions.resolve(node.spec.get("duration"), ctx)}
        )
        return DryStep(
            node=node.id, scope=instance, type="timer", status="completed", output={**output, "waited": False}
        )

    def node_parallel(self, instance: str, node: NodePlan, extra: dict | None) -> DryStep:
        results: list[Any] = []
        errors: list[dict] = []
        failed: set[int] = set()
        for i, scope_id in enumerate(node.child_scopes):
            try:
                results.append(self.walk(f"{instance}{node.id}[{i}]/", scope_id, extra))
            except _Failed as exc:
                results.append(None)
                errors.append(exc.error)
                failed.add(i)
        join = node.spec.get("join", "all")
        ok = len(node.child_scopes) - len(errors)
        needed = len(node.child_scopes) if join == "all" else 1 if join == "any" else int(join["count"])
        if ok < needed:
            raise _Failed(errors[0] if errors else {"type": "BranchFailed", "message": f"{node.id} failed"})
        succeeded = [r for i, r in enumerate(results) if i not in failed]
        output: Any = results if join == "all" else succeeded[0] if join == "any" else succeeded[:needed]
        return DryStep(node=node.id, scope=instance, type="parallel", status="completed", output=output)

    def node_loop(self, instance: str, node: NodePlan, extra: dict | None) -> DryStep:
        spec = node.spec
        mode = spec.get("mode", "for_each")
        results: list[Any] = []
        if mode == "for_each":
            items = expressions.resolve(spec.get("items"), self.context(instance, extra))
            if not isinstance(items, list):
                raise _Failed({"type": "LoopError", "message": f"items must be a list, got {type(items).__name__}"})
            rule = spec.get("complete_when", "all")
            needed = len(items) if rule == "all" else 1 if rule == "first" else min(int(rule["count"]), len(items))
            for i, item in enumerate(items):
                if len(results) >= needed:
                    break
                results.append(
                    self.walk(
                        f"{instance}{node.id}[{i}]/",
                        node.id,
                        {**(extra or {}), "item": item, "index": i, "iteration": i},
                    )
                )
            how = spec.get("aggregate", "list")
            output: Any = (
                len(results)
                if how == "count"
                else sum(r for r in results if isinstance(r, (int, float)) and not isinstance(r, bool))
                if how == "sum"
                else results
            )
            return DryStep(node=node.id, scope=instance, type="loop", status="completed", output=output)
        cap = min(int(spec.get("max_iterations", MAX_LOOP_ITERATIONS)), MAX_LOOP_ITERATIONS)
        iterations, last = 0, None

        def holds() -> bool:
            return expressions.evaluate(
                spec["condition"], self.context(instance, {**(extra or {}), "iteration": iterations})
            )

        if mode == "until" or holds():
            while True:
                if iterations >= cap:
                    raise _Failed(
                        {"type": "LoopLimitExceeded", "message": f"the loop reached {cap} iterations in the dry run"}
                    )
                last = self.walk(
                    f"{instance}{node.id}[{iterations}]/",
                    node.id,
                    {**(extra or {}), "iteration": iterations, "index": iterations},
                )
                iterations += 1
                again = holds()
                if (mode == "while" and again) or (mode == "until" and not again):
                    continue
                break
        return DryStep(
            node=node.id,
            scope=instance,
            type="loop",
            status="completed",
            output={"iterations": iterations, "last": last},
        )

    def node_other(self, instance: str, node: NodePlan, extra: dict | None) -> DryStep:
        """Node types the dry run does not simulate (child workflows, signals, approvals …)."""
        if node.id in self.mocks:
            return DryStep(
                node=node.id,
                scope=instance,
                type=node.type,
                status="completed",
                output=self.mocks[node.id],
                mocked="declared",
            )
        if node.id in self.recorded:
            return DryStep(
                node=node.id,
                scope=instance,
                type=node.type,
                status="completed",
                output=self.recorded[node.id],
                mocked="recorded",
            )
        return DryStep(
            node=node.id,
            scope=instance,
            type=node.type,
            status="completed",
            output={"dry_run": True, "note": f"{node.type} nodes are not simulated; declare an output in mocks"},
            mocked="placeholder",
        )


def dry_run(plan: Plan, input: dict, *, mocks: dict | None = None, recorded: dict | None = None) -> dict:
    """Run `plan` on `input` as described in the module docstring; return the trace and result.

    It runs in the web process, so all its templates and mappings share one text budget
    (WB_EXPRESSION_BUDGET): a loop of string-building steps fails its step instead of
    filling the server's memory."""
    with expressions.text_budget():
        return DryRun(plan, input, mocks=mocks, recorded=recorded).run()


def recorded_outputs(workflow) -> dict:
    """node id -> output of the last completed run of `workflow` (top-level steps)."""
    execution = (
        Execution.objects.filter(workflow=workflow, status=ExecutionStatus.COMPLETED).order_by("-created_at").first()
    )
    if execution is None:
        return {}
    out: dict[str, Any] = {}
    for node_id, output in (
        StepRun.objects.filter(execution=execution, scope="", status=StepStatus.COMPLETED)
        .order_by("id")
        .values_list("node_id", "output")
    ):
        out[node_id] = output
    return out
