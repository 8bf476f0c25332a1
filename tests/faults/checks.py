"""The checkers of a fault run, on plain data (no processes): each returns a list of anomaly
texts (empty: passed). The history's operations are dicts (see workload.py):

    {"process": "c3", "node": 2, "incarnation": 1, "f": "create"|"write"|"read"|"read_plain",
     "key": "r1"|name, "value": V, "invoke": T0, "complete": T1 or None,
     "outcome": "ok"|"fail"|"unknown", "detail": "..."}

`fail` is an answer that says the operation was not applied (503 "not_applied"), or a read
that got no value; `unknown` is everything else that is not `ok` (503 "unknown", a timeout,
a connection cut after the request was sent).
"""

import collections

import lincheck


# ---------------------------------------------------------------------------
# the set: unique creates

def check_set(history, final_by_node):
    """FINAL_BY_NODE: {node id: {name: uuid}} read on every node at the end. Every
    acknowledged create is present on every node (with the uuid it was answered with), none
    answered not_applied is anywhere, an unknown one at most once, nothing nobody created."""
    anomalies = []
    creates = {op["key"]: op for op in history if op["f"] == "create"}
    for node, stored in sorted(final_by_node.items()):
        for name, op in creates.items():
            if op["outcome"] == "ok":
                if name not in stored:
                    anomalies.append(f"set: acknowledged create {name} (uuid {op['value']}, "
                                     f"by {op['process']} on node {op['node']}) missing on "
                                     f"node {node}")
                elif stored[name] != op["value"]:
                    anomalies.append(f"set: {name} on node {node} has uuid {stored[name]}, "
                                     f"the create was answered {op['value']}")
            elif op["outcome"] == "fail" and name in stored:
                anomalies.append(f"set: create {name} answered not_applied ({op['detail']}) "
                                 f"is present on node {node}")
        for name in stored:
            if name not in creates:
                anomalies.append(f"set: node {node} holds {name}, which no client created")
    nodes = sorted(final_by_node)
    for a, b in zip(nodes, nodes[1:]):
        diff = set(final_by_node[a]) ^ set(final_by_node[b])
        if diff:
            anomalies.append(f"set: nodes {a} and {b} differ on {len(diff)} object(s), e.g. "
                             f"{sorted(diff)[:5]}")
    return anomalies


def count_names(objects):
    """{name: uuid} of a list of objects, plus the names listed more than once."""
    seen, twice = {}, []
    for obj in objects:
        if obj["name"] in seen:
            twice.append(obj["name"])
        seen[obj["name"]] = obj["uuid"]
    return seen, twice


# ---------------------------------------------------------------------------
# registers: consistent operations linearizable, plain reads monotonic per node

def register_ops(history, key):
    """The consistent operations on KEY as lincheck takes them: acknowledged and unknown
    writes, acknowledged consistent reads."""
    out = []
    for op in history:
        if op["key"] != key or op["f"] not in ("write", "read"):
            continue
        if op["f"] == "write" and op["outcome"] in ("ok", "unknown"):
            out.append({"f": "write", "value": op["value"], "invoke": op["invoke"],
                        "complete": op["complete"] if op["outcome"] == "ok" else None,
                        "ok": op["outcome"] == "ok", "process": op["process"]})
        elif op["f"] == "read" and op["outcome"] == "ok":
            out.append({"f": "read", "value": op["value"], "invoke": op["invoke"],
                        "complete": op["complete"], "ok": True, "process": op["process"]})
    return out


def check_linearizable(history, keys, initial):
    """One anomaly per register whose consistent operations are not linearizable."""
    anomalies = []
    for key in keys:
        ops = register_ops(history, key)
        try:
            result = lincheck.check_register(ops, initial=initial[key])
        except RuntimeError as exc:
            anomalies.append(f"register {key}: {exc}")
            continue
        if not result.ok:
            anomalies.append(f"register {key}: {result.explanation}")
    return anomalies


def check_plain_reads(history, keys, initial):
    """The contract's guarantee for plain reads (served from the node's own replica, which
    applies the one raft log in order): a value read was written (an acknowledged or unknown
    write invoked before the read returned, or the initial value), never a write answered
    not_applied; and on one node (one process lifetime) the values follow one order of the
    writes, the same for every node: the orders the nodes saw, joined, have no cycle (a node
    that reads x then y then x again, or two nodes that see x, y and y, x, make one)."""
    anomalies = []
    for key in keys:
        writes = {op["value"]: op for op in history if op["key"] == key and op["f"] == "write"}
        reads = [op for op in history
                 if op["key"] == key and op["f"] == "read_plain" and op["outcome"] == "ok"]
        for r in reads:
            w = writes.get(r["value"])
            if r["value"] == initial[key]:
                continue
            if w is None:
                anomalies.append(f"register {key}: plain read on node {r['node']} returned "
                                 f"{r['value']!r}, which nobody wrote")
            elif w["outcome"] == "fail":
                anomalies.append(f"register {key}: plain read on node {r['node']} returned "
                                 f"{r['value']!r}, written by a PUT answered not_applied")
            elif w["invoke"] > r["complete"]:
                anomalies.append(f"register {key}: plain read on node {r['node']} returned "
                                 f"{r['value']!r} before its write was sent")
        anomalies += _order_cycles(key, reads, initial[key], list(writes.values()))
    return anomalies


def _write_order(writes, edges, witness):
    """Edges a -> b when write a was acknowledged before write b was sent: the log holds b
    after a."""
    acked = sorted((w for w in writes if w["outcome"] == "ok"), key=lambda w: w["complete"])
    for b in writes:
        if b["outcome"] == "fail":
            continue
        for a in acked:
            if a["complete"] >= b["invoke"]:
                break
            edges[a["value"]].add(b["value"])
            witness.setdefault((a["value"], b["value"]), ("(write order)", b["invoke"]))


def _order_cycles(key, reads, initial, writes):
    """Edges a -> b for consecutive distinct values read on one node incarnation (one read
    completed before the next was sent), and for writes acknowledged before others were
    sent; a cycle is an anomaly."""
    edges = collections.defaultdict(set)
    witness = {}
    _write_order(writes, edges, witness)
    by_node = collections.defaultdict(list)
    for r in reads:
        by_node[(r["node"], r["incarnation"])].append(r)
    for (node, inc), seq in by_node.items():
        seq.sort(key=lambda r: r["invoke"])
        last = None
        for r in seq:
            if last is not None and last["complete"] < r["invoke"] and last["value"] != r["value"]:
                if r["value"] == initial:
                    return [f"register {key}: node {node} read {last['value']!r} then the "
                            f"initial value {initial!r} again at {r['invoke']:.3f}"]
                edges[last["value"]].add(r["value"])
                witness.setdefault((last["value"], r["value"]), (node, r["invoke"]))
            if last is None or last["complete"] < r["invoke"]:
                last = r
    cycle = _find_cycle(edges)
    if cycle is None:
        return []
    steps = ", ".join(f"{a!r}->{b!r} ({_who(witness[(a, b)][0])} at {witness[(a, b)][1]:.3f})"
                      for a, b in zip(cycle, cycle[1:]))
    return [f"register {key}: plain reads are not monotonic: {steps}"]


def _who(node):
    return node if isinstance(node, str) else f"read on node {node}"


def _find_cycle(edges):
    """A list [v0, v1, ..., v0] of a cycle in the graph EDGES, or None (iterative DFS)."""
    colour = {}
    for root in list(edges):
        if colour.get(root):
            continue
        stack = [(root, iter(edges.get(root, ())))]
        path = [root]
        colour[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not colour.get(nxt):
                colour[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(edges.get(nxt, ()))))
    return None


# ---------------------------------------------------------------------------
# invariants

def check_leaders(samples):
    """SAMPLES: (time, node id, term, leader_id) from every node's runtime. At most one
    leader per term: the nodes that said they lead in a term, and the leaders followers
    named in it, are one node."""
    named = collections.defaultdict(dict)   # term -> {leader id: (time, who said it)}
    for t, node, term, leader in samples:
        if leader is None:
            continue
        named[term].setdefault(leader, (t, node))
    return [f"leaders: term {term} had {len(by)} leaders: " +
            ", ".join(f"node {lid} (named by node {who} at {t:.3f})"
                      for lid, (t, who) in sorted(by.items()))
            for term, by in sorted(named.items()) if len(by) > 1]


def check_vip(vip_samples, majority_at, runtime_samples, fresh_s=1.0):
    """The cluster IP is held by at most one node at a time among the nodes that count: in
    the connected majority (MAJORITY_AT(t): ids) and knowing a leader (their last runtime
    sample, at most FRESH_S old, names one). A node cut off, paused or stopped may keep a
    stale copy until it notices; it does not count (the contract fences by term)."""
    by_node = collections.defaultdict(list)
    for t, node, term, leader in runtime_samples:
        by_node[node].append((t, leader))

    def knows_leader(node, t):
        last = None
        for when, leader in by_node[node]:
            if when > t:
                break
            last = (when, leader)
        return last is not None and last[1] is not None and t - last[0] <= fresh_s

    bad = []
    for t, row in vip_samples:
        major = majority_at(t)
        holders = [n for n, holds in row.items()
                   if holds and n in major and knows_leader(n, t)]
        if len(holders) > 1:
            bad.append((t, holders))
    if not bad:
        return []
    return [f"vip: {len(bad)} of {len(vip_samples)} samples had two counted holders of the "
            f"cluster IP; first at {bad[0][0]:.3f}: nodes {bad[0][1]}"]


def event_key(ev):
    return (ev.get("event_id"), ev.get("report_timestamp"), ev.get("obj_name"),
            repr(sorted((ev.get("event_details") or {}).items())))


def check_events(events_by_node):
    """EVENTS_BY_NODE: {node id: [event, ...]} (oldest first) read at the end. Identical on
    every node, no uuid twice, no occurrence recorded twice (same id, time and details)."""
    anomalies = []
    for node, evs in sorted(events_by_node.items()):
        uuids = collections.Counter(e.get("uuid") for e in evs)
        dup = [u for u, n in uuids.items() if n > 1]
        if dup:
            anomalies.append(f"events: node {node} lists uuid {dup[0]} {uuids[dup[0]]} times")
        keys = collections.Counter(event_key(e) for e in evs)
        twice = [k for k, n in keys.items() if n > 1]
        if twice:
            anomalies.append(f"events: node {node} records {twice[0][0]} at {twice[0][1]} "
                             f"{keys[twice[0]]} times ({len(twice)} such)")
    nodes = sorted(events_by_node)
    for a, b in zip(nodes, nodes[1:]):
        ua = [e.get("uuid") for e in events_by_node[a]]
        ub = [e.get("uuid") for e in events_by_node[b]]
        if ua != ub:
            only_a, only_b = set(ua) - set(ub), set(ub) - set(ua)
            anomalies.append(f"events: nodes {a} and {b} differ ({len(ua)} vs {len(ub)} "
                             f"events, {len(only_a)} only on {a}, {len(only_b)} only on {b}"
                             f"{', same events in another order' if not only_a | only_b else ''})")
    return anomalies
