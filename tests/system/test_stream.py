"""Issue 14: the live stream, GET /api/stream (Server-Sent Events), against real vigild
processes over TLS (the defaults): the gate, snapshots on connect and every second, events
in order and once with their replicated seq as id, resume with Last-Event-ID on another
node, a client that never reads is dropped without slowing writes, and the per-node cap
(API_STREAM_MAX_CLIENTS, 256 real streams).

Run: /usr/bin/python3 -m pytest tests/system/test_stream.py
"""

import json
import re
import threading
import time

import pytest
import requests

import harness
from cluster_helpers import three_nodes
from harness import healthmonitor_body, pool_body, virtualservice_body, wait_until
from stream_helpers import RawStream, SseClient

STREAM_CAP = 256          # API_STREAM_MAX_CLIENTS (src/controller/api/api_stream.h)
SNAPSHOT_KEYS = {"cluster", "runtime", "nodes", "serviceengines", "virtualservices"}


@pytest.fixture
def streams():
    """Every SseClient/RawStream a test opens, closed at its end."""
    opened = []
    yield opened
    for s in opened:
        s.close()


def open_sse(streams, node, **kw):
    s = SseClient(node, **kw)
    streams.append(s)
    return s


def make_events(node, n):
    """N new events: each login records a USER_LOGIN event (module AUTH)."""
    for _ in range(n):
        r = requests.post(node.api.base + "/api/login", verify=node.api.verify, timeout=10,
                          json={"username": harness.ADMIN_USER, "password": harness.ADMIN_PASSWORD})
        assert r.status_code == 200, r.text


def all_events(node):
    status, doc = node.api.get("/api/event", params={"page_size": 1000})
    assert status == 200, (status, doc)
    return doc["results"]


def event_messages(stream):
    return [(int(m["id"]), json.loads(m["data"])) for m in stream.of("event")]


def assert_in_order_once(pairs):
    ids = [i for i, _ in pairs]
    uuids = [e["uuid"] for _, e in pairs]
    assert ids == sorted(set(ids)), f"ids not strictly increasing: {ids}"
    assert len(uuids) == len(set(uuids)), "an event came twice"


def test_stream_gate_refuses_unauthenticated_and_bad_credentials(cluster_factory, streams):
    node = cluster_factory(1).nodes[0]
    for auth in (None, ("admin", "wrong-password"), ("nobody", "x")):
        s = open_sse(streams, node, auth=auth)
        assert s.status == 401, (auth, s.status)
        assert s.headers.get("WWW-Authenticate", "").startswith("Basic")
        assert set(json.loads(s.body)) == {"error"}
    s = open_sse(streams, node)
    assert s.status == 200
    assert s.headers["Content-Type"].startswith("text/event-stream")
    bad = open_sse(streams, node, headers={"Last-Event-ID": "twelve"})
    assert bad.status == 400 and "Last-Event-ID" in json.loads(bad.body)["error"]


def test_snapshot_on_connect_and_every_second(cluster_factory, streams):
    cluster = three_nodes(cluster_factory)
    node = cluster.followers()[0]
    t0 = time.monotonic()
    s = open_sse(streams, node)
    first = s.wait(lambda c: c.of("snapshot")[:1], 5, "a snapshot on connect")[0]
    assert time.monotonic() - t0 < 2.0
    snap = json.loads(first["data"])
    assert set(snap) == SNAPSHOT_KEYS
    assert snap["cluster"]["name"] and snap["cluster"]["virtual_ip"] is None
    assert snap["runtime"]["node_id"] == node.id
    assert snap["runtime"]["leader_id"] == cluster.leader().id
    assert {n["id"] for n in snap["nodes"]} == {1, 2, 3}
    assert snap["serviceengines"] == [] and snap["virtualservices"] == []

    # the next one within ~2 s (every second), showing what changed in between
    hm = node.api.post("/api/healthmonitor", healthmonitor_body("snap-hm"))[1]
    pool = node.api.post("/api/pool", pool_body("snap-pool", [hm["uuid"]]))[1]
    status, vs = node.api.post("/api/virtualservice", virtualservice_body("snap-vs", pool["uuid"]))
    assert status == 201, vs
    t_write = time.monotonic()
    seen = s.wait(lambda c: [m for m in c.of("snapshot")
                             if any(v["uuid"] == vs["uuid"]
                                    for v in json.loads(m["data"])["virtualservices"])],
                  5, "a snapshot showing the new virtual service")
    assert time.monotonic() - t_write < 2.5
    assert json.loads(seen[0]["data"])["virtualservices"][0]["name"] == "snap-vs"
    n = len(s.of("snapshot"))
    s.wait(lambda c: len(c.of("snapshot")) >= n + 2, 3.5, "two more snapshots in ~2 s")
    assert not s.ended


def test_events_in_order_once_and_resume_on_another_node(cluster_factory, streams):
    cluster = three_nodes(cluster_factory)
    a_node, b_node = cluster.followers()
    # from the start (Last-Event-ID 0): every event the store holds, in seq order
    a = open_sse(streams, a_node, headers={"Last-Event-ID": "0"})
    stored = all_events(a_node)
    a.wait(lambda c: len(c.of("event")) >= len(stored), 10, "the stored events")
    make_events(cluster.leader(), 5)
    a.wait(lambda c: sum(e["event_id"] == "USER_LOGIN" for _, e in event_messages(c)) >= 5,
           10, "five USER_LOGIN events live")
    got = event_messages(a)
    assert_in_order_once(got)
    assert got[0][0] == 1
    # each is the object GET /api/event returns for it
    by_uuid = {e["uuid"]: e for e in all_events(a_node)}
    for _, e in got:
        assert by_uuid[e["uuid"]] == e

    # A leaves; events happen while it is away; it comes back on another node with the
    # id it last saw: the missed ones first, then live, no gap, no repeat
    a.close()
    last = got[-1][0]
    make_events(a_node, 3)
    b = open_sse(streams, b_node, headers={"Last-Event-ID": str(last)})
    make_events(b_node, 2)

    def caught_up(c):
        # every stored event (others may be recorded meanwhile: compared each time)
        return sorted(e["uuid"] for _, e in got + event_messages(c)) == \
            sorted(e["uuid"] for e in all_events(b_node))
    b.wait(caught_up, 10, "the missed and new events, each once")
    resumed = event_messages(b)
    assert resumed[0][0] == last + 1, (last, resumed[:2])
    union = got + resumed
    assert_in_order_once(union)
    # the ids name the same events on every node (the replicated seq)
    c = open_sse(streams, cluster.leader(), params={"last_event_id": "0"})
    c.wait(lambda s: len(s.of("event")) >= len(union), 10, "the events on the leader")
    assert [(i, e["uuid"]) for i, e in event_messages(c)[:len(union)]] == \
        [(i, e["uuid"]) for i, e in union]
    # a live client without Last-Event-ID gets only events newer than its connection
    d = open_sse(streams, b_node)
    d.wait(lambda s: s.of("snapshot"), 5, "d's snapshot")
    make_events(b_node, 1)
    d.wait(lambda s: any(e["event_id"] == "USER_LOGIN" for _, e in event_messages(s)), 5,
           "the next event")
    assert all(i > union[-1][0] for i, _ in event_messages(d)), event_messages(d)
    assert_in_order_once(event_messages(d))


def _writer(node, stop, acked, prefix):
    i = 0
    while not stop.is_set():
        status, _ = node.api.post("/api/healthmonitor", healthmonitor_body(f"{prefix}-{i}"))
        if status == 201:
            acked.append(time.monotonic())
        i += 1


def test_client_that_never_reads_is_dropped_and_writes_go_on(cluster_factory, streams):
    cluster = three_nodes(cluster_factory)
    leader = cluster.leader()
    # ~200 KB snapshots, so that a client that never reads fills the node's socket buffer
    # (Linux grows it to 4 MiB) and then its 1 MiB stream buffer in seconds, not minutes
    # (the snapshot is built from the virtual services)
    hm = leader.api.post("/api/healthmonitor", healthmonitor_body("big-hm"))[1]
    pool = leader.api.post("/api/pool", pool_body("big-pool", [hm["uuid"]]))[1]
    for i in range(400):
        status, doc = leader.api.post("/api/virtualservice",
                                      virtualservice_body(f"big-vs-{i:03d}-" + "x" * 240,
                                                          pool["uuid"], port=20000 + i))
        assert status == 201, doc
    reader = open_sse(streams, leader)
    stuck = RawStream(leader, rcvbuf=4096)
    streams.append(stuck)
    assert stuck.status == 200
    stop, acked = threading.Event(), []
    writer = threading.Thread(target=_writer, args=(leader, stop, acked, "nr"), daemon=True)
    t0 = time.monotonic()
    writer.start()
    try:
        wait_until(lambda: "it does not read" in leader.stderr_path.read_text(), 90,
                   "the node to drop the client that never reads")
        t_drop = time.monotonic()
        n_drop = len(acked)
        # writes go on after the drop as before it
        wait_until(lambda: len(acked) >= n_drop + 20, 10, "20 more writes after the drop")
    finally:
        stop.set()
        writer.join(15)
    assert n_drop >= 10, f"only {n_drop} writes in the {t_drop - t0:.1f} s before the drop"
    # the dropped client finds the connection closed once it reads what the kernel kept
    _, closed = stuck.read_rest(20)
    assert closed, "the dropped client's connection stays open"
    # the reading client was not disturbed
    n = len(reader.of("snapshot"))
    reader.wait(lambda c: len(c.of("snapshot")) > n, 3, "the reader's next snapshot")
    assert not reader.ended


def _error_of(raw):
    """The JSON body of a non-200 answer on RAW (after its status line)."""
    data = raw.head
    raw.sock.settimeout(5)
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        more = raw.sock.recv(4096)
        if not more:
            break
        data += more
    return json.loads(data.split(b"\r\n\r\n", 1)[1].decode())


def test_257th_stream_gets_503(cluster_factory, streams):
    node = cluster_factory(1).nodes[0]
    raws = []
    try:
        for i in range(STREAM_CAP):
            raw = RawStream(node)
            raws.append(raw)
            assert raw.status == 200, (i, raw.head)
        extra = RawStream(node)
        raws.append(extra)
        assert extra.status == 503, extra.head
        assert re.search(r"too many streams", _error_of(extra)["error"])
        # the cap counts open streams: once one leaves, a new one is let in
        raws.pop(0).close()

        def one_more():
            r = RawStream(node)
            raws.append(r)
            return r.status == 200
        wait_until(one_more, 10, "a stream to be accepted after one left")
        assert node.api.get("/api/cluster/runtime")[0] == 200  # the node still answers
    finally:
        for r in raws:
            r.close()


def test_a_resume_from_before_the_oldest_kept_event_says_what_it_missed(cluster_factory,
                                                                        streams):
    """The store keeps the newest events only (100,000; 20 here, --test-events-keep): a
    client resuming from an id older than the oldest kept gets a `gap` message naming what
    was pruned, then the kept events; a resume from inside the kept range gets none."""
    node = cluster_factory(1, extra_flags=["--test-events-keep", "20"]).nodes[0]
    make_events(node, 30)
    kept = all_events(node)
    assert len(kept) == 20, len(kept)
    a = open_sse(streams, node, headers={"Last-Event-ID": "2"})
    a.wait(lambda c: len(c.of("event")) >= 20, 10, "the kept events")
    gaps = a.of("gap")
    assert len(gaps) == 1, gaps
    gap = json.loads(gaps[0]["data"])
    first = event_messages(a)[0][0]
    assert gap == {"after": 2, "next": first, "missed": first - 3}, (gap, first)
    assert a.messages.index(gaps[0]) < a.messages.index(a.of("event")[0])
    b = open_sse(streams, node, headers={"Last-Event-ID": str(first + 5)})
    b.wait(lambda c: len(c.of("event")) >= 14, 10, "the events after a kept one")
    assert b.of("gap") == [] and event_messages(b)[0][0] == first + 6
