"""The checkers themselves, on hand-made histories that are and are not correct: a checker
that cannot fail is a defect. Run: /usr/bin/python3 -m pytest tests/faults/test_checkers.py
"""

import random

import pytest

import checks
import lincheck


def w(value, t0, t1, ok=True, process="p"):
    return {"f": "write", "value": value, "invoke": t0, "complete": t1 if ok else None,
            "ok": ok, "process": process}


def r(value, t0, t1, process="p"):
    return {"f": "read", "value": value, "invoke": t0, "complete": t1, "ok": True,
            "process": process}


# --- linearizability: histories that are linearizable --------------------------------

def test_sequential_history_is_linearizable():
    ops = [w(1, 0, 1), r(1, 2, 3), w(2, 4, 5), r(2, 6, 7)]
    assert lincheck.check_register(ops, initial=0).ok


def test_concurrent_write_may_be_seen_or_not():
    # the read overlaps the write: both the old and the new value are fine
    assert lincheck.check_register([w(1, 0, 10), r(0, 1, 2)], initial=0).ok
    assert lincheck.check_register([w(1, 0, 10), r(1, 1, 2)], initial=0).ok


def test_two_concurrent_writes_read_in_one_order():
    ops = [w(1, 0, 10), w(2, 0, 10), r(2, 11, 12), r(2, 13, 14)]
    assert lincheck.check_register(ops, initial=0).ok


def test_unknown_write_may_take_effect_late_or_never():
    # an unknown write (no return) can be seen long after it was sent...
    assert lincheck.check_register([w(1, 0, None, ok=False), r(0, 5, 6), r(1, 50, 51)],
                                   initial=0).ok
    # ...or never
    assert lincheck.check_register([w(1, 0, None, ok=False), r(0, 50, 51)], initial=0).ok


# --- linearizability: histories that are not -----------------------------------------

def test_stale_read_after_acknowledged_write_is_refused():
    result = lincheck.check_register([w(1, 0, 1), r(0, 2, 3)], initial=0)
    assert not result.ok
    assert result.stuck["f"] == "read" and result.stuck["value"] == 0
    assert "read(0)" in result.explanation


def test_value_going_back_is_refused():
    ops = [w(1, 0, 1), w(2, 2, 3), r(2, 4, 5), r(1, 6, 7)]
    assert not lincheck.check_register(ops, initial=0).ok


def test_two_readers_seeing_concurrent_writes_in_opposite_orders_is_refused():
    # writes 1 and 2 overlap; reader a sees 1 then 2, reader b sees 2 then 1 afterwards
    ops = [w(1, 0, 10), w(2, 0, 10), r(1, 11, 12, "a"), r(2, 13, 14, "a"),
           r(1, 15, 16, "b")]
    assert not lincheck.check_register(ops, initial=0).ok


def test_read_of_a_value_never_written_is_refused():
    assert not lincheck.check_register([w(1, 0, 1), r(7, 2, 3)], initial=0).ok


def test_read_before_its_write_was_sent_is_refused():
    assert not lincheck.check_register([r(1, 0, 1), w(1, 2, 3)], initial=0).ok


def test_unknown_write_seen_then_lost_is_refused():
    ops = [w(1, 0, None, ok=False), r(1, 5, 6), r(0, 7, 8)]
    assert not lincheck.check_register(ops, initial=0).ok


# --- linearizability: a longer random history, both ways -----------------------------

def _random_linearizable(seed, n=400, clients=5):
    """A history made by simulating atomic ops at random points inside random intervals."""
    rnd = random.Random(seed)
    value, ops, t, next_value = 0, [], 0.0, 1
    busy_until = [0.0] * clients
    for _ in range(n):
        c = rnd.randrange(clients)
        t0 = max(busy_until[c], t) + rnd.random()
        point = t0 + rnd.random() * 3
        t1 = point + rnd.random() * 3
        t = point
        busy_until[c] = t1
        if rnd.random() < 0.5:
            value, next_value = next_value, next_value + 1
            ops.append(w(value, t0, t1, process=f"c{c}"))
        else:
            ops.append(r(value, t0, t1, process=f"c{c}"))
    return ops


@pytest.mark.parametrize("seed", range(5))
def test_random_linearizable_histories_pass_and_a_corrupted_one_fails(seed):
    ops = _random_linearizable(seed)
    assert lincheck.check_register(ops, initial=0).ok
    # corrupt: a read that completed after a later write completed returns an old value
    reads = [o for o in ops if o["f"] == "read"]
    last_write = max((o for o in ops if o["f"] == "write"), key=lambda o: o["complete"])
    bad = dict(reads[0], invoke=last_write["complete"] + 1, complete=last_write["complete"] + 2,
               value=0)
    assert not lincheck.check_register(ops + [bad], initial=0).ok


# --- plain reads ----------------------------------------------------------------------

def h(f, key, value, t0, t1, node=1, outcome="ok", inc=0):
    return {"process": "p", "node": node, "incarnation": inc, "f": f, "key": key,
            "value": value, "invoke": t0, "complete": t1, "outcome": outcome, "detail": ""}


def test_plain_reads_monotonic_pass():
    hist = [h("write", "k", 1, 0, 1), h("write", "k", 2, 2, 3),
            h("read_plain", "k", 1, 1.5, 1.6, node=1), h("read_plain", "k", 2, 4, 5, node=1),
            h("read_plain", "k", 1, 4, 5, node=2), h("read_plain", "k", 2, 6, 7, node=2)]
    assert checks.check_plain_reads(hist, ["k"], {"k": 0}) == []


def test_plain_reads_going_back_on_one_node_fail():
    hist = [h("write", "k", 1, 0, 1), h("write", "k", 2, 2, 3),
            h("read_plain", "k", 2, 4, 5), h("read_plain", "k", 1, 6, 7)]
    out = checks.check_plain_reads(hist, ["k"], {"k": 0})
    assert out and "not monotonic" in out[0]


def test_plain_reads_in_opposite_orders_on_two_nodes_fail():
    hist = [h("write", "k", 1, 0, 1), h("write", "k", 2, 0, 1),
            h("read_plain", "k", 1, 2, 3, node=1), h("read_plain", "k", 2, 4, 5, node=1),
            h("read_plain", "k", 2, 2, 3, node=2), h("read_plain", "k", 1, 4, 5, node=2)]
    assert checks.check_plain_reads(hist, ["k"], {"k": 0})


def test_plain_read_of_not_applied_or_unwritten_value_fails():
    hist = [h("write", "k", 1, 0, 1, outcome="fail"), h("read_plain", "k", 1, 2, 3)]
    assert "not_applied" in checks.check_plain_reads(hist, ["k"], {"k": 0})[0]
    hist = [h("read_plain", "k", 9, 2, 3)]
    assert "nobody wrote" in checks.check_plain_reads(hist, ["k"], {"k": 0})[0]


def test_plain_reads_across_a_restart_are_separate():
    hist = [h("write", "k", 1, 0, 1), h("write", "k", 2, 2, 3),
            h("read_plain", "k", 2, 4, 5, inc=0), h("read_plain", "k", 1, 6, 7, inc=1)]
    assert checks.check_plain_reads(hist, ["k"], {"k": 0}) == []


# --- the set, leaders, events ---------------------------------------------------------

def test_set_checker():
    hist = [h("create", "a", "u-a", 0, 1), h("create", "b", None, 0, 1, outcome="fail"),
            h("create", "c", None, 0, None, outcome="unknown")]
    good = {1: {"a": "u-a", "c": "u-c"}, 2: {"a": "u-a", "c": "u-c"}}
    assert checks.check_set(hist, good) == []
    assert checks.check_set(hist, {1: {"c": "u-c"}, 2: {"a": "u-a", "c": "u-c"}})
    assert any("not_applied" in a for a in checks.check_set(hist, {1: {"a": "u-a", "b": "x"}}))
    assert any("no client" in a for a in checks.check_set(hist, {1: {"a": "u-a", "z": "x"}}))
    assert checks.check_set(hist, {1: {"a": "other"}})


def test_leaders_checker():
    samples = [(0.0, 1, 3, 1), (0.1, 2, 3, 1), (0.2, 3, 4, 2), (0.3, 1, 4, 2)]
    assert checks.check_leaders(samples) == []
    out = checks.check_leaders(samples + [(0.4, 3, 3, 3)])
    assert out and "term 3 had 2 leaders" in out[0]


def test_events_checker():
    e1 = {"uuid": "1", "event_id": "X", "report_timestamp": "t1", "event_details": {"a": 1}}
    e2 = {"uuid": "2", "event_id": "Y", "report_timestamp": "t2", "event_details": {}}
    assert checks.check_events({1: [e1, e2], 2: [e1, e2]}) == []
    assert checks.check_events({1: [e1, e2], 2: [e1]})
    assert checks.check_events({1: [e1, e2], 2: [e2, e1]})
    assert checks.check_events({1: [e1, e1]})
    assert checks.check_events({1: [e1, dict(e1, uuid="3")]})


def test_vip_checker():
    runtime = [(0.0, 1, 2, 1), (0.0, 2, 2, 1), (0.0, 3, 2, 1), (1.0, 1, 2, 1),
               (1.0, 2, 2, 1), (1.0, 3, 2, 1)]
    everyone = lambda t: {1, 2, 3}
    one = [(0.5, {1: True, 2: False, 3: False}), (1.5, {1: True, 2: False, 3: False})]
    assert checks.check_vip(one, everyone, runtime) == []
    two = one + [(1.6, {1: True, 2: True, 3: False})]
    assert "two counted holders" in checks.check_vip(two, everyone, runtime)[0]
    # node 2 cut off (not in the majority): its stale copy does not count
    assert checks.check_vip(two, lambda t: {1, 3}, runtime) == []
    # node 2 silent for longer than the freshness window: it does not count either
    assert checks.check_vip([(3.0, {1: True, 2: True, 3: False})], everyone, runtime) == []


def test_nemesis_schedule_is_a_function_of_the_seed():
    import nemesis
    a = nemesis.make_schedule(7, 90)
    assert a == nemesis.make_schedule(7, 90)
    assert a != nemesis.make_schedule(8, 90)
    assert a and all(f["at"] + f["duration"] <= 90 for f in a)
    kinds = {f["kind"] for s in range(40) for f in nemesis.make_schedule(s, 90)}
    assert kinds == set(nemesis.KINDS), kinds
