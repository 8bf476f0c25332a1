"""A linearizability checker for registers: Wing and Gong's search with Lowe's memoisation
(the algorithm of Knossos' "wgl" and of Porcupine), one key at a time.

An operation is a dict:
    {"f": "write"|"read", "value": V, "invoke": T0, "complete": T1 or None, "ok": bool}
`complete` None (or ok False for a write whose outcome is unknown) means the operation may
have taken effect at any moment after its invocation, or never: its return is placed at
infinity. Reads that failed and writes known not to have been applied are not given to the
checker (they had no effect): a read of such a write's value is then unexplainable, as it
should be.

check_register(ops, initial) -> Result(ok, explanation, ...). On failure the explanation
names the operations that cannot be ordered: the deepest point the search reached, the
operation whose return it could not get past, and the operations concurrent with it.
"""

import math

INF = math.inf


class Result:
    def __init__(self, ok, explanation="", stuck=None, concurrent=(), linearized=0):
        self.ok = ok
        self.explanation = explanation
        self.stuck = stuck              # the op whose return could not be passed
        self.concurrent = list(concurrent)
        self.linearized = linearized    # most ops the search linearized at once

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return f"<Result ok={self.ok} {self.explanation}>"


class _Entry:
    __slots__ = ("op", "index", "is_call", "match", "prev", "next", "time")

    def __init__(self, op, index, is_call, time):
        self.op, self.index, self.is_call, self.time = op, index, is_call, time
        self.match = self.prev = self.next = None


def _step(state, op):
    """The register model: (legal, new state)."""
    if op["f"] == "write":
        return True, op["value"]
    return op["value"] == state, state


def _prune_unread_unknown_writes(ops):
    """Writes of unknown outcome whose value nobody read are dropped: such a write can be
    linearized at the very end (its return is at infinity), where it changes nothing a read
    saw, so the history is linearizable with it exactly when it is without it."""
    read_values = {op["value"] for op in ops if op["f"] == "read"}
    return [op for op in ops
            if not (op["f"] == "write" and _unknown(op) and op["value"] not in read_values)]


def _unknown(op):
    return op.get("complete") is None or not op.get("ok", True)


def _build_list(ops):
    """A doubly linked list of call and return entries in time order (calls first at equal
    times: the more permissive reading), with a head sentinel."""
    events = []
    for i, op in enumerate(ops):
        ret = INF if _unknown(op) else op["complete"]
        call, back = _Entry(op, i, True, op["invoke"]), _Entry(op, i, False, ret)
        call.match = back
        events.append((op["invoke"], 0, i, call))
        events.append((ret, 1, i, back))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    head = _Entry(None, -1, False, -INF)
    prev = head
    for _, _, _, entry in events:
        prev.next, entry.prev = entry, prev
        prev = entry
    return head


def _lift(entry):
    entry.prev.next = entry.next
    if entry.next is not None:
        entry.next.prev = entry.prev
    m = entry.match
    m.prev.next = m.next
    if m.next is not None:
        m.next.prev = m.prev


def _unlift(entry):
    m = entry.match
    m.prev.next = m
    if m.next is not None:
        m.next.prev = m
    entry.prev.next = entry
    if entry.next is not None:
        entry.next.prev = entry


def check_register(ops, initial=None, max_steps=2_000_000):
    """Is the history OPS of one register (initial value INITIAL) linearizable?
    Returns a Result; raises RuntimeError when the search needs more than MAX_STEPS steps."""
    ops = _prune_unread_unknown_writes(list(ops))
    if not ops:
        return Result(True, "empty history")
    head = _build_list(ops)
    state, linearized = initial, 0
    stack, cache = [], set()
    entry = head.next
    deepest = (-1, None, None)   # (ops linearized, stuck return entry, state there)
    steps = 0
    while head.next is not None:
        steps += 1
        if steps > max_steps:
            raise RuntimeError(f"linearizability search gave up after {max_steps} steps "
                               f"({len(ops)} operations)")
        if entry.is_call:
            legal, new_state = _step(state, entry.op)
            if legal:
                bits = linearized | (1 << entry.index)
                key = (bits, new_state)
                if key not in cache:
                    cache.add(key)
                    stack.append((entry, state))
                    state, linearized = new_state, bits
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
            continue
        # A return: the op it ends was not linearized before it. Backtrack.
        if len(stack) > deepest[0]:
            deepest = (len(stack), entry, state)
        if not stack:
            return _failure(ops, deepest)
        entry, state = stack.pop()
        linearized &= ~(1 << entry.index)
        _unlift(entry)
        entry = entry.next
    return Result(True, f"{len(ops)} operations linearizable", linearized=len(ops))


def _failure(ops, deepest):
    depth, stuck_entry, state = deepest
    stuck = stuck_entry.op if stuck_entry is not None else None
    concurrent = []
    if stuck is not None:
        end = INF if _unknown(stuck) else stuck["complete"]
        for op in ops:
            op_end = INF if _unknown(op) else op["complete"]
            if op is not stuck and op["invoke"] <= end and op_end >= stuck["invoke"]:
                concurrent.append(op)
    text = (f"not linearizable: after ordering {depth} operation(s) the register holds "
            f"{state!r}, and no order lets {describe(stuck)} complete; operations "
            f"concurrent with it: " + "; ".join(describe(o) for o in concurrent[:12]))
    return Result(False, text, stuck=stuck, concurrent=concurrent, linearized=depth)


def describe(op):
    if op is None:
        return "(none)"
    end = "?" if _unknown(op) else f"{op['complete']:.3f}"
    who = f" by {op['process']}" if "process" in op else ""
    return f"{op['f']}({op['value']!r}){who} [{op['invoke']:.3f}, {end}]"
