"""The execution page's step table lists each step followed by what is nested in it, iterations in index order."""

from apps.executions.models import StepRun
from apps.executions.presenters import tree_order


def _steps(*specs):
    return [StepRun(pk=pk, scope=scope, node_id=node) for pk, scope, node in specs]


def test_iterations_follow_their_loop_in_index_order_and_later_steps_follow_the_loop():
    steps = _steps(
        (1, "", "gen"), (2, "", "each"), (3, "each[0]/", "dbl"), (4, "each[2]/", "dbl"), (5, "each[10]/", "dbl"),
        (6, "each[1]/", "dbl"), (7, "each[1]/", "check"), (8, "", "report"), (9, "each[10]/", "inner"), (10, "each[10]/inner[0]/", "leaf"),
    )
    assert [f"{s.scope}{s.node_id}" for s in tree_order(steps)] == [
        "gen", "each", "each[0]/dbl", "each[1]/dbl", "each[1]/check", "each[2]/dbl", "each[10]/dbl", "each[10]/inner", "each[10]/inner[0]/leaf", "report",
    ]


def test_attempts_stay_together_and_nothing_is_lost():
    steps = _steps((1, "", "a"), (2, "", "a"), (3, "gone[0]/", "x"), (4, "", "b"))
    assert [s.pk for s in tree_order(steps)] == [1, 2, 4, 3]
