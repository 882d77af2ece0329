"""Plain unit tests of the dependency graph (no database, no Django)."""

from __future__ import annotations

import random

import pytest

from apps.workflows.definition.depgraph import (
    CycleError,
    DependencyGraph,
    DuplicateNodeError,
    GraphError,
    ReadyTracker,
    Scheduler,
    UnknownDependencyError,
)


def graph(spec: dict[str, list[str]], durations: dict[str, float] | None = None) -> DependencyGraph:
    durations = durations or {}
    return DependencyGraph.from_items({"id": k, "depends_on": v, "duration": durations.get(k)} for k, v in spec.items())


# a(3) and b(2) start; c(2) needs a, d(4) needs b, e(1) needs c and d.
FIVE = {"a": [], "b": [], "c": ["a"], "d": ["b"], "e": ["c", "d"]}
FIVE_DURATIONS = {"a": 3, "b": 2, "c": 2, "d": 4, "e": 1}


def random_dag(n: int, seed: int = 7) -> DependencyGraph:
    rng = random.Random(seed)
    g = DependencyGraph()
    for i in range(n):
        g.add_node(f"n{i}", duration=rng.uniform(0.1, 5))
        for dep in rng.sample(range(i), min(i, rng.randint(1, 4))):
            g.add_edge(f"n{dep}", f"n{i}")
    return g


#
# Building and errors
#


def test_it_names_the_whole_cycle_in_execution_order():
    g = graph({"a": ["c"], "b": ["a"], "c": ["b"], "d": []})
    assert g.find_cycle() == ["a", "b", "c", "a"]
    with pytest.raises(CycleError) as excinfo:
        g.check()
    assert str(excinfo.value) == "dependency cycle: a -> b -> c -> a"
    assert excinfo.value.cycle == ["a", "b", "c", "a"]


def test_it_starts_the_cycle_at_the_earliest_item_even_when_found_midway():
    g = graph({"x": [], "y": ["x", "w"], "z": ["y"], "w": ["z"]})
    assert g.find_cycle() == ["y", "z", "w", "y"]


def test_it_reports_a_self_loop():
    g = graph({"a": [], "b": ["a", "b"]})
    assert g.find_cycle() == ["b", "b"]
    with pytest.raises(CycleError, match=r"^dependency cycle: b -> b$"):
        g.layers()


def test_every_ordering_refuses_a_cyclic_graph():
    g = graph({"a": ["b"], "b": ["a"]})
    for call in (g.layers, g.topological_order, g.critical_path, g.tracker, lambda: g.ready(set())):
        with pytest.raises(CycleError):
            call()


def test_an_acyclic_graph_has_no_cycle():
    g = graph(FIVE)
    assert g.find_cycle() is None
    g.check()
    g.layers()
    assert g.find_cycle() is None  # also from the cached path


def test_it_names_the_item_and_the_missing_dependency():
    with pytest.raises(UnknownDependencyError) as excinfo:
        graph({"a": [], "b": ["a", "ghost"]})
    assert excinfo.value.item == "b"
    assert excinfo.value.missing == "ghost"
    assert str(excinfo.value) == "item 'b' depends on unknown item 'ghost'"


def test_it_rejects_duplicate_ids_and_bad_items():
    with pytest.raises(DuplicateNodeError, match="'a'"):
        graph({"a": []}).add_node("a")
    with pytest.raises(GraphError, match="item #1 has no 'id'"):
        DependencyGraph.from_items([{"id": "a"}, {"name": "b"}])
    with pytest.raises(GraphError, match="must be a list"):
        DependencyGraph.from_items([{"id": "a"}, {"id": "b", "depends_on": "a"}])
    with pytest.raises(GraphError, match="duration"):
        DependencyGraph().add_node("a", duration=-1)


def test_from_items_honours_custom_keys_and_keeps_the_item_as_data():
    items = [{"key": "a", "after": [], "secs": 1.5}, {"key": "b", "after": ["a"]}]
    g = DependencyGraph.from_items(items, id_key="key", deps_key="after", duration_key="secs")
    assert g.dependencies("b") == ["a"]
    assert g.dependents("a") == ["b"]
    assert g.duration("a") == 1.5 and g.duration("b") is None
    assert g.data("b") is items[1]


def test_a_duplicate_edge_counts_once():
    g = graph({"a": [], "b": ["a", "a"]})
    assert g.edge_count == 1
    assert g.tracker().mark_done("a") == ["b"]


#
# Orders and readiness
#


def test_layers_follow_the_longest_chain_and_are_sorted():
    g = graph({"z": [], "a": [], "m": ["z"], "b": ["z", "m"], "c": ["a"]})
    assert g.layers() == [["a", "z"], ["c", "m"], ["b"]]
    # Topological order keeps insertion order within a layer.
    assert g.topological_order() == ["z", "a", "m", "c", "b"]


def test_the_topological_order_puts_every_dependency_first():
    g = random_dag(500)
    position = {node: i for i, node in enumerate(g.topological_order())}
    for node in g.nodes:
        for dep in g.dependencies(node):
            assert position[dep] < position[node]


def test_ready_lists_what_can_start_now():
    g = graph(FIVE)
    assert g.ready(set()) == ["a", "b"]
    assert g.ready({"a"}) == ["b", "c"]
    assert g.ready({"a"}, running={"b"}) == ["c"]
    assert g.ready({"a", "b"}, blocked={"d"}) == ["c"]
    assert g.ready({"a", "b", "c", "d"}) == ["e"]
    assert g.ready(set(FIVE)) == []


def test_ready_orders_by_layer_then_insertion():
    g = graph({"late": [], "root": [], "child": ["root"], "other": []})
    assert g.ready({"root"}) == ["late", "other", "child"]


#
# Incremental tracking
#


def test_the_tracker_hands_out_each_item_once_as_its_dependencies_finish():
    tracker = graph(FIVE).tracker()
    assert tracker.initial_ready() == ["a", "b"]
    assert tracker.mark_done("a") == ["c"]
    assert tracker.mark_done("c") == []
    assert tracker.mark_done("c") == []  # a duplicate delivery changes nothing
    assert tracker.mark_done("b") == ["d"]
    assert tracker.mark_done("d") == ["e"]
    assert not tracker.finished
    assert tracker.mark_done("e") == []
    assert tracker.finished


def test_the_tracker_refuses_to_finish_an_item_that_was_not_ready():
    tracker = graph(FIVE).tracker()
    with pytest.raises(GraphError, match="'e' is not ready"):
        tracker.mark_done("e")


def test_a_failure_blocks_its_transitive_dependents_only():
    g = graph({"a": [], "b": ["a"], "c": ["b"], "d": [], "e": ["d", "c"], "f": ["d"]})
    tracker = g.tracker()
    assert tracker.initial_ready() == ["a", "d"]
    assert tracker.mark_failed("a") == {"b", "c", "e"}
    assert tracker.mark_failed("a") == set()
    # d's completion frees f but not e, which is blocked.
    assert tracker.mark_done("d") == ["f"]
    assert tracker.mark_done("f") == []
    assert tracker.finished
    assert tracker.failed == {"a"} and tracker.blocked == {"b", "c", "e"} and tracker.done == {"d", "f"}


def test_a_resumed_tracker_starts_from_the_recorded_state():
    tracker = ReadyTracker(graph(FIVE), completed={"a"}, failed={"b"})
    assert tracker.blocked == {"d", "e"}
    assert tracker.initial_ready() == ["c"]
    assert tracker.mark_done("c") == []
    assert tracker.finished
    assert Scheduler is ReadyTracker


def test_transitive_dependents_follow_every_path():
    g = graph({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "x": []})
    assert g.transitive_dependents("a") == {"b", "c", "d"}
    assert g.transitive_dependents("d") == set()
    assert g.tracker().transitive_dependents("b") == {"d"}


def test_the_tracker_agrees_with_ready_at_every_step():
    g = random_dag(300, seed=3)
    tracker = g.tracker()
    rng = random.Random(5)
    completed: set[str] = set()
    frontier = tracker.initial_ready()
    assert frontier == g.ready(completed)
    while frontier:
        node = frontier.pop(rng.randrange(len(frontier)))
        completed.add(node)
        frontier.extend(tracker.mark_done(node))
        assert set(frontier) == set(g.ready(completed))
    assert completed == set(g.nodes)


#
# Timing
#


def test_the_critical_path_is_the_longest_chain_by_duration():
    g = graph(FIVE, FIVE_DURATIONS)
    assert g.critical_path() == (["b", "d", "e"], 7.0)
    # Overriding durations moves it.
    assert g.critical_path(durations={"a": 10}) == (["a", "c", "e"], 13.0)


def test_missing_durations_count_as_the_default():
    g = graph({"a": [], "b": ["a"], "c": []}, {"c": 1.5})
    assert g.critical_path() == (["c"], 1.5)
    assert g.critical_path(default_duration=1.0) == (["a", "b"], 2.0)
    assert DependencyGraph().critical_path() == ([], 0.0)


def test_list_scheduling_matches_the_hand_computed_example():
    # Priorities (remaining critical path): b 7, a 6, d 5, c 3, e 1.
    # t=0 b and a start; t=2 b ends, d starts; t=3 a ends, c starts; t=5 c ends;
    # t=6 d ends, e starts; t=7 e ends.
    schedule = graph(FIVE, FIVE_DURATIONS).list_schedule(slots=2)
    assert schedule.makespan == 7.0
    assert schedule.start == {"a": 0.0, "b": 0.0, "c": 3.0, "d": 2.0, "e": 6.0}
    assert schedule.finish == {"a": 3.0, "b": 2.0, "c": 5.0, "d": 6.0, "e": 7.0}
    assert schedule.order() == ["b", "a", "d", "c", "e"]


def test_list_scheduling_is_bounded_by_work_and_by_the_critical_path():
    g = random_dag(400, seed=11)
    work = sum(g.duration(n) or 0 for n in g.nodes)
    _, longest = g.critical_path()
    one = g.list_schedule(slots=1)
    assert one.makespan == pytest.approx(work)
    for slots in (2, 4, 16):
        schedule = g.list_schedule(slots=slots)
        assert schedule.makespan >= max(longest, work / slots) - 1e-9
        # Graham's bound for any greedy list schedule.
        assert schedule.makespan <= work / slots + longest + 1e-9
        for node in g.nodes:
            for dep in g.dependencies(node):
                assert schedule.start[node] >= schedule.finish[dep] - 1e-9
    assert g.list_schedule(slots=10_000).makespan == pytest.approx(longest)


def test_list_scheduling_takes_durations_and_rejects_no_slots():
    g = graph(FIVE)
    assert g.list_schedule({"a": 1, "b": 1, "c": 1, "d": 1, "e": 1}, 2).makespan == 3.0
    with pytest.raises(GraphError):
        g.list_schedule(slots=0)


#
# Scale
#


def test_a_long_chain_of_five_thousand_does_not_recurse():
    g = DependencyGraph()
    g.add_node("n0", duration=1)
    for i in range(1, 6000):
        g.add_node(f"n{i}", duration=1)
        g.add_edge(f"n{i - 1}", f"n{i}")
    assert g.find_cycle() is None
    assert len(g.layers()) == 6000
    path, total = g.critical_path()
    assert len(path) == 6000 and total == 6000.0
    assert len(g.transitive_dependents("n0")) == 5999
    g.add_edge("n5999", "n0")
    cycle = g.find_cycle()
    assert cycle is not None and len(cycle) == 6001 and cycle[0] == cycle[-1] == "n0"


def test_a_wide_random_graph_of_five_thousand_works_end_to_end():
    g = random_dag(5000)
    layers = g.layers()
    assert sum(len(layer) for layer in layers) == 5000
    tracker = g.tracker()
    frontier = tracker.initial_ready()
    seen = 0
    while frontier:
        seen += 1
        frontier.extend(tracker.mark_done(frontier.pop()))
    assert seen == 5000 and tracker.finished
    assert g.list_schedule(slots=8).makespan > 0
