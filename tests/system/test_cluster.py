"""Issue 3: three controller nodes: replication, forwarding, catch-up by snapshot, node
liveness and failover. Every test starts 3 real vigild processes on 127.0.0.1 with the
default timings (--heartbeat-ms 50 --election-timeout-ms 300) unless it says otherwise.

Run: /usr/bin/python3 -m pytest tests/system/test_cluster.py
"""

import json
import random
import time

import harness
from cluster_helpers import (ACTIVE, DOWN_S, ELECTION_TIMEOUT_S, INACTIVE, NOT_RESPONSIVE,
                             Writer, hm_name_set, three_nodes, wait_identical,
                             wait_node_state, wait_stable)
from harness import healthmonitor_body, pool_body, virtualservice_body, wait_until


def test_write_through_follower_is_visible_on_all_nodes(cluster_factory):
    cluster = three_nodes(cluster_factory)
    leader = cluster.leader()
    follower = [n for n in cluster.nodes if n is not leader][0]

    status, hm = follower.api.post("/api/healthmonitor", healthmonitor_body("via-follower"))
    assert status == 201, (status, hm)
    status, pool = follower.api.post("/api/pool", pool_body("p-via-follower", [hm["uuid"]]))
    assert status == 201, (status, pool)
    status, vs = follower.api.post("/api/virtualservice",
                                   virtualservice_body("vs-via-follower", pool["uuid"]))
    assert status == 201, (status, vs)

    # Acknowledged = committed: a linearizable read through any node sees it at once.
    for node in cluster.nodes:
        status, doc = node.api.get(f"/api/pool/{pool['uuid']}", params={"consistent": "1"})
        assert status == 200 and doc == pool, (node.label, status, doc)

    # Plain reads from each node's own replica converge to the same objects.
    objs = wait_identical(cluster.nodes, timeout=5)
    assert objs["healthmonitor"][hm["uuid"]] == hm
    assert objs["pool"][pool["uuid"]] == pool
    assert objs["virtualservice"][vs["uuid"]] == vs

    # Conflicts are decided by the leader even when sent to a follower.
    other = [n for n in cluster.nodes if n is not leader and n is not follower][0]
    status, doc = other.api.post("/api/healthmonitor", healthmonitor_body("via-follower"))
    assert status == 409, (status, doc)


def test_kill9_leader_while_writing_loses_no_acknowledged_write(cluster_factory):
    cluster = three_nodes(cluster_factory)
    leader = cluster.leader()
    survivors = [n for n in cluster.nodes if n is not leader]
    writer = Writer(cluster.nodes, prefix="kill", threads=4, interval=0.01)
    writer.start()
    try:
        wait_until(lambda: len(writer.acked) >= 50, 10, "50 acknowledged writes before the kill")
        leader.kill9()
        t_kill = time.monotonic()
        wait_until(lambda: writer.acks_after(t_kill + 0.05) >= 50, 10,
                   "writes to be acknowledged again through the survivors")
        new_leader = cluster.wait_leader(10)
        assert new_leader is not leader
    finally:
        writer.finish()
    first_ack = min(t for t, _ in writer.ack_times if t >= t_kill)
    print(f"first acknowledged write {first_ack - t_kill:.3f}s after kill -9 of the leader")

    time.sleep(DOWN_S)
    leader.start()
    wait_stable(cluster)
    # Every acknowledged write on every node, and no write answered not_applied appears.
    allowed = set(writer.failed) - writer.not_applied
    ref = None
    for node in cluster.nodes:
        stored = harness.assert_all_present(node.api, writer.acked, allowed_extra=allowed)
        ref = ref or stored
    wait_identical(cluster.nodes)


def _snapshot_files(node):
    return sorted(p.name for p in node.data_dir.rglob("snapshot-*"))


def test_node_down_past_snapshot_threshold_catches_up_by_snapshot(cluster_factory):
    cluster = three_nodes(cluster_factory,
                          extra_flags=["--snapshot-threshold", "64", "--snapshot-trailing", "16"])
    leader = cluster.leader()
    down = [n for n in cluster.nodes if n is not leader][0]
    down.kill9()
    before = _snapshot_files(down)

    # Far more entries than the threshold while it is down: the leader snapshots and
    # drops the log the node would need.
    acked, failed = harness.write_many(leader.api, [f"snap-{i}" for i in range(400)], workers=8)
    assert not failed, f"writes with one node down failed: {list(failed.items())[:3]}"
    wait_until(lambda: _snapshot_files(leader), 10, "the leader to take a snapshot")

    log_before = down.stderr_path.read_text(errors="replace")
    down.start()
    wait_stable(cluster)
    wait_identical(cluster.nodes, timeout=20)
    for node in cluster.nodes:
        harness.assert_all_present(node.api, acked)

    log_after = down.stderr_path.read_text(errors="replace")[len(log_before):]
    after = _snapshot_files(down)
    assert "restored from a snapshot" in log_after and after != before, (
        f"{down.label} did not install the leader's snapshot: snapshot files before {before}, "
        f"after {after}; log since restart:\n{log_after[-3000:]}")


def _pool_of_size(name, rng):
    n = rng.choice([1, 2, 3, 7, 50, 200, 1024])
    servers = [{"ip": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}", "port": 1 + rng.randrange(65535),
                "enabled": rng.random() < 0.8} for i in range(n)]
    return pool_body(name, servers=servers, description="d" * rng.randrange(0, 1025))


def _write_sized_objects(targets, prefix, seconds, rng):
    """Pools and healthmonitors of many sizes (tens of bytes to ~40 KB, odd lengths),
    written one after another through TARGETS for SECONDS. Returns acked names."""
    acked = {}
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        i += 1
        node = targets[i % len(targets)]
        name = f"{prefix}-{i}" + "x" * rng.randrange(0, 200)
        if i % 3:
            path, body = "/api/pool", _pool_of_size(name, rng)
        else:
            path, body = "/api/healthmonitor", healthmonitor_body(
                name, http=True, http_request="GET /" + "a" * rng.randrange(0, 900) + " HTTP/1.0",
                description="h" * rng.randrange(0, 1025))
        try:
            status, doc = node.api.post(path, body, timeout=(1.0, 10.0))
        except Exception:  # noqa: BLE001 - unacknowledged; the comparison covers it
            continue
        if status == 201:
            acked[doc["uuid"]] = doc
    return acked


def _pause_and_write(cluster, paused, rng, prefix):
    others = [n for n in cluster.nodes if n is not paused]
    paused.pause()
    try:
        acked = _write_sized_objects(others, prefix, 2.0, rng)
    finally:
        paused.resume()
    return acked


def test_pause_leader_then_follower_all_nodes_identical(cluster_factory):
    rng = random.Random(3)
    cluster = three_nodes(cluster_factory)
    base = _write_sized_objects(cluster.nodes, "before", 0.5, rng)

    leader = cluster.leader()
    acked = _pause_and_write(cluster, leader, rng, "lp")
    new_leader = cluster.wait_leader(10)
    wait_identical(cluster.nodes, timeout=30)
    follower = [n for n in cluster.nodes if n is not new_leader][0]
    acked.update(_pause_and_write(cluster, follower, rng, "fp"))
    cluster.wait_leader(10)
    assert acked, "no write was acknowledged while a node was paused"

    objs = wait_identical(cluster.nodes, timeout=30)
    for uid, doc in {**base, **acked}.items():
        kind = "pool" if "lb_algorithm" in doc else "healthmonitor"
        assert objs[kind].get(uid) == doc, f"acknowledged {kind} {uid} missing or changed"
    # And the status recovers everywhere: a resumed node must not stay Not Responsive.
    wait_stable(cluster, timeout=10)


def test_two_nodes_down_not_applied_writes_never_appear(cluster_factory):
    cluster = three_nodes(cluster_factory)
    leader = cluster.leader()
    followers = [n for n in cluster.nodes if n is not leader]
    for n in followers:
        n.kill9()

    # Once the last node has stepped down, every write is refused before the log.
    wait_until(lambda: leader.runtime()["leader_id"] is None, 5,
               "the last node to step down (leader_id null)")
    assert leader.runtime()["cluster_state"]["status"] == NOT_RESPONSIVE
    refused = []
    for i in range(5):
        name = f"refused-{i}"
        t0 = time.monotonic()
        status, doc = leader.api.post("/api/healthmonitor", healthmonitor_body(name))
        took = time.monotonic() - t0
        assert status == 503 and doc and doc.get("outcome") == "not_applied", (status, doc)
        assert took <= 2 * ELECTION_TIMEOUT_S + 0.5, f"503 took {took:.2f}s"
        refused.append(name)

    time.sleep(DOWN_S)
    for n in followers:
        n.start(wait=False)
    for n in followers:
        n.wait_healthy()
    wait_stable(cluster)
    status, doc = cluster.leader().api.post("/api/healthmonitor", healthmonitor_body("after"))
    assert status == 201, (status, doc)
    wait_identical(cluster.nodes)
    for node in cluster.nodes:
        names = hm_name_set(node)
        assert not set(refused) & set(names), f"{node.label} applied not_applied writes"
        assert "after" in names


def test_sigterm_leader_hand_off_fails_no_write(cluster_factory):
    cluster = three_nodes(cluster_factory)
    leader = cluster.leader()
    through = [n for n in cluster.nodes if n is not leader][0]
    writer = Writer([through], prefix="handoff", threads=4)
    writer.start()
    try:
        wait_until(lambda: len(writer.acked) >= 30, 10, "writes before the hand-off")
        rc = leader.term()
        t_term = time.monotonic()
        assert rc == 0, f"leader exited with {rc} on SIGTERM"
        wait_until(lambda: writer.acks_after(t_term) >= 30, 10, "writes after the hand-off")
    finally:
        writer.finish()
    assert not writer.failed, (f"{len(writer.failed)} writes failed during the hand-off, e.g. "
                               f"{list(writer.failed.items())[:5]}")
    new_leader = cluster.wait_leader(5)
    assert new_leader is not leader
    log = leader.stderr_path.read_text(errors="replace")
    assert "handed over" in log, f"{leader.label} log does not show a hand-off:\n{log[-2000:]}"

    time.sleep(DOWN_S)
    leader.start()
    wait_stable(cluster)
    for node in cluster.nodes:
        harness.assert_all_present(node.api, writer.acked)


def test_node_states_show_killed_node_inactive_then_active(cluster_factory):
    cluster = three_nodes(cluster_factory)
    leader = cluster.leader()
    for victim in ([n for n in cluster.nodes if n is not leader][0], leader):
        others = [n for n in cluster.nodes if n is not victim]
        for o in others:
            assert node_state_of(o, victim.id) == ACTIVE
        victim.kill9()
        t0 = time.monotonic()
        # Gone within 2 election timeouts of its last answer (generous deadline).
        wait_node_state(others, victim.id, INACTIVE, timeout=5)
        print(f"{victim.label} shown INACTIVE after {time.monotonic() - t0:.2f}s")
        time.sleep(max(0.0, DOWN_S - (time.monotonic() - t0)))
        victim.start()
        wait_node_state(cluster.nodes, victim.id, ACTIVE, timeout=10)
        wait_stable(cluster)


def node_state_of(observer, node_id):
    for e in observer.runtime()["node_states"]:
        if e["id"] == node_id:
            return e["state"]
    return None


def test_full_lists_identical_after_churn(cluster_factory):
    """Deletes and replaces too: after a follower reboot, every node holds the same set."""
    cluster = three_nodes(cluster_factory)
    leader = cluster.leader()
    follower = [n for n in cluster.nodes if n is not leader][0]
    acked, _ = harness.write_many(follower.api, [f"churn-{i}" for i in range(60)], workers=4)
    follower.kill9()
    uuids = list(acked.values())
    for uid in uuids[:20]:
        assert leader.api.delete(f"/api/healthmonitor/{uid}")[0] == 204
    for uid in uuids[20:40]:
        status, doc = leader.api.get(f"/api/healthmonitor/{uid}")
        doc.update(send_interval=7)
        doc.pop("uuid")
        assert leader.api.put(f"/api/healthmonitor/{uid}", doc)[0] == 200
    time.sleep(DOWN_S)
    follower.start()
    wait_stable(cluster)
    objs = wait_identical(cluster.nodes)
    assert len(objs["healthmonitor"]) == 40
    assert all(objs["healthmonitor"][u]["send_interval"] == 7 for u in uuids[20:40])


def test_writes_committed_together_each_get_their_own_answer(cluster_factory):
    """The leader sends the writes of one loop iteration to raft as one entry (a batch).
    A burst of writes (sent on open connections back to back), some of which must be
    refused (a name taken by a write of the same burst, a delete of nothing), each get
    their own answer; a refused one changes nothing; writes that share an entry share its
    index (X-Vigil-Index), which shows that they were batched; every node ends with the
    same objects."""
    import base64
    import http.client
    import ssl

    cluster = three_nodes(cluster_factory)
    leader = cluster.leader()
    host, port = leader.api.address.rsplit(":", 1)
    auth = "Basic " + base64.b64encode(":".join(leader.api.auth).encode()).decode()
    pairs = 24
    shared_index_seen = False

    for rnd in range(5):
        jobs = []
        for k in range(pairs):
            name = f"batch-{rnd}-{k}"
            # both of a pair race for one name
            jobs += [("POST", "/api/healthmonitor", healthmonitor_body(name), ("hm", name))] * 2
        for k in range(4):
            jobs.append(("DELETE", f"/api/pool/30000000-0000-4000-8000-{rnd:06d}{k:06d}", None,
                         ("delete", k)))
        conns = []
        for _ in jobs:
            if leader.tls:
                c = http.client.HTTPSConnection(
                    host, int(port), timeout=10,
                    context=ssl.create_default_context(cafile=leader.ca_file()))
            else:
                c = http.client.HTTPConnection(host, int(port), timeout=10)
            c.request("GET", "/api/healthz")        # connected before the burst
            c.getresponse().read()
            conns.append(c)
        for c, (method, path, body, _) in zip(conns, jobs):
            payload = json.dumps(body).encode() if body is not None else None
            c.request(method, path, body=payload,
                      headers={"Authorization": auth, "Content-Type": "application/json"})
        by_name, created_index = {}, {}
        for c, (_, _, _, tag) in zip(conns, jobs):
            r = c.getresponse()
            raw = r.read()
            doc = json.loads(raw) if raw else None
            c.close()
            if tag[0] == "delete":
                assert r.status == 404, (tag, r.status, doc)
                continue
            by_name.setdefault(tag[1], []).append(r.status)
            if r.status == 201:
                index = r.getheader("X-Vigil-Index")
                assert index is not None and int(index) > 0, (tag, index)
                assert doc["name"] == tag[1], (tag, doc)
                created_index.setdefault(index, []).append(tag[1])
            else:
                assert r.status == 409 and "exists" in doc["error"], (tag, r.status, doc)
        for name, statuses in by_name.items():
            assert sorted(statuses) == [201, 409], (name, statuses)
        if any(len(v) > 1 for v in created_index.values()):
            shared_index_seen = True
        print(f"round {rnd}: {len(created_index)} entries for "
              f"{sum(map(len, created_index.values()))} creates")

    assert shared_index_seen, "no two writes of a burst were committed in one entry"
    objs = wait_identical(cluster.nodes, timeout=10)
    names = [o["name"] for o in objs["healthmonitor"].values()]
    assert len(names) == len(set(names)) == 5 * pairs, (len(names), len(set(names)))
