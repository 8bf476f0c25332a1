"""Issue 13, controller side: LOGS and METRICS frames into the node's log store, LOGS_ACK and
METRICS_ACK once durable, the analytics API merged over the nodes (TLS on, as users run
it); the metrics endpoint answers from the METRICS records only."""

import sqlite3
import time
from pathlib import Path

import pytest

from harness import serviceengine_body, wait_until
from test_se_channel import (CONFIG, WELCOME, FakeSE, create, log_lines, log_record,  # noqa: F401
                             keys, metrics_record)

VS = "11111111-1111-4111-8111-111111111111"


def connect(node, key_path, name="se-a"):
    fake = FakeSE(node.se_listen, name, key_path)
    fake.hello(name)
    fake.expect(WELCOME)
    fake.keep_alive()
    return fake


def records(first, n, **kw):
    return [log_record(first + i, vs_uuid=VS, **kw) for i in range(n)]


def seconds(first_seq, n, first_second, **kw):
    """N metrics records of VS from FIRST_SEQ, one a second from FIRST_SECOND (epoch s)."""
    return [metrics_record(first_seq + i, first_second + i, vs_uuid=VS, **kw) for i in range(n)]


def metrics_of(node, **params):
    status, doc = node.api.get(f"/api/analytics/metrics/virtualservice/{VS}", params=params)
    assert status == 200, doc
    return doc


def summary(node, se_name="se-a"):
    status, doc = node.api.get("/api/analytics/logs/summary")
    assert status == 200, doc
    return next((r for r in doc["results"] if r["se_name"] == se_name), None), doc


def test_stored_once_acked_after_commit_and_duplicates_counted(cluster_factory, keys):
    node = cluster_factory(1, extra_flags=["--test-log-commit-delay-ms", "1500"]).nodes[0]
    key_path, public_key = keys("se-a")
    create(node.api, "serviceengine", serviceengine_body("se-a", public_key))
    fake = connect(node, key_path)
    try:
        fake.send_logs(1, records(1, 10))
        with pytest.raises(TimeoutError):  # the commit waits 1.5 s: no ack before it
            fake.expect_logs_ack(timeout=1.0)
        assert fake.expect_logs_ack(timeout=10) == 10
        fake.send_logs(5, records(5, 10))  # 5-10 held already, 11-14 new
        assert fake.expect_logs_ack(timeout=10) == 14
    finally:
        fake.close()
    s, doc = summary(node)
    assert s == {"se_name": "se-a", "records": 14, "first_seq": 1, "last_seq": 14,
                 "missing": 0, "duplicates_rejected": 6}, doc
    assert doc["unreachable"] == []
    status, doc = node.api.get(f"/api/analytics/logs/virtualservice/{VS}",
                               params={"page_size": 5})
    assert status == 200, doc
    assert doc["count"] == 14 and [r["seq"] for r in doc["results"]] == [14, 13, 12, 11, 10]
    assert doc["results"][0]["se_name"] == "se-a" and doc["results"][0]["uri"] == "/item/14"


def each_closes_its_session(node, key_path, frame_type, bad):
    """Each (payload, line) of BAD sent as a FRAME_TYPE frame on a new session of se-a: the
    node closes that session and logs LINE."""
    for payload, line in bad:
        fake = connect(node, key_path)
        try:
            fake.send(frame_type, payload)
            fake.wait_closed(timeout=10)
        finally:
            fake.close()
        wait_until(lambda: log_lines(node, line), 5, f"the log line {line!r}")


def test_bad_frames_close_the_session_and_store_nothing(node, keys):
    key_path, public_key = keys("se-a")
    create(node.api, "serviceengine", serviceengine_body("se-a", public_key))
    bad = [({"records": records(1, 2)}, "malformed LOGS frame"),
           ({"first_seq": 1, "records": [log_record(1, vs_uuid=VS), log_record(3, vs_uuid=VS)]},
            "seqs must be consecutive"),
           ({"first_seq": 1, "records": records(1, 1025)}, "a LOGS frame of 1025 records"),
           ({"first_seq": 1, "records": [dict(log_record(1, vs_uuid=VS), status="x")]},
            "record field \"status\"")]
    each_closes_its_session(node, key_path, 7, bad)
    s, doc = summary(node)
    assert s is None, doc
    status, _ = node.api.get("/api/healthz")
    assert status == 200


def test_kill9_with_a_batch_unacked_then_the_resend_is_stored_once(cluster_factory, keys):
    node = cluster_factory(1, extra_flags=["--test-log-commit-delay-ms", "3000"]).nodes[0]
    key_path, public_key = keys("se-a")
    create(node.api, "serviceengine", serviceengine_body("se-a", public_key))
    fake = connect(node, key_path)
    try:
        fake.send_logs(1, records(1, 20))
        with pytest.raises(TimeoutError):  # the commit waits 3 s: killed before any ack
            fake.expect_logs_ack(timeout=0.5)
        assert node.kill9() is not None
    finally:
        fake.close()
    node.start()
    wait_until(lambda: connect_ok(node, key_path), 20, "a new session")


def connect_ok(node, key_path):
    try:
        fake = connect(node, key_path)
    except Exception:  # noqa: BLE001 - not admitted yet
        return False
    try:
        fake.send_logs(1, records(1, 20))
        assert fake.expect_logs_ack(timeout=15) == 20
    finally:
        fake.close()
    s, doc = summary(node)
    assert s["records"] == 20 and s["missing"] == 0 and s["last_seq"] == 20, doc
    return True


def test_every_node_answers_the_same_merge_and_names_a_stopped_node(cluster_factory, keys):
    cluster = cluster_factory(3)
    leader = cluster.leader()
    key_path, public_key = keys("se-a")
    create(leader.api, "serviceengine", serviceengine_body("se-a", public_key))
    seq = 1
    start = int(time.time()) - 120
    for k, n in enumerate(cluster.nodes):  # each node stores ten records and 3 s of its own
        fake = wait_until(lambda: try_connect(n, key_path), 20, f"a session on {n.label}")
        try:
            fake.send_logs(seq, records(seq, 10))
            assert fake.expect_logs_ack(timeout=10) == seq + 9
            fake.send_metrics(1 + 3 * k, seconds(1 + 3 * k, 3, start + 3 * k, requests=10,
                                                 fives=k, latency_bucket=150))
            assert fake.expect_metrics_ack(timeout=10) == 3 + 3 * k
        finally:
            fake.close()
        seq += 10
    answers = []
    for n in cluster.nodes:
        s, doc = summary(n)
        assert doc["unreachable"] == [], doc
        status, logs = n.api.get(f"/api/analytics/logs/virtualservice/{VS}",
                                 params={"page_size": 1000})
        assert status == 200 and logs["count"] == 30, logs
        metrics = metrics_of(n, step=1)
        assert metrics["unreachable"] == [] and metrics["nodes"] == 3, metrics
        series = [(p["requests"], p["errors_5xx"], p["bytes_out"]) for p in metrics["series"]]
        # each point's own latency percentiles (its seconds' histograms merged), no histogram
        for p in metrics["series"]:
            assert "latency_histogram" not in p, p
            assert 15.0 <= p["latency_p50_ms"] <= 15.1 and p["latency_p99_ms"] == p["latency_p50_ms"], p
        answers.append((s, [(r["se_name"], r["seq"]) for r in logs["results"]],
                        metrics["requests"], series))
    assert answers[0][0] == {"se_name": "se-a", "records": 30, "first_seq": 1, "last_seq": 30,
                             "missing": 0, "duplicates_rejected": 0}
    # the metrics are the METRICS records' (9 s of 10 requests), not the 30 LOGS records
    assert answers[0][2] == 90, answers[0]
    assert answers[0][3] == [(10, k, 10000) for k in range(3) for _ in range(3)], answers[0]
    assert all(a == answers[0] for a in answers), answers
    stopped = cluster.nodes[2]
    stopped.term()
    asker = cluster.nodes[0]
    s, doc = summary(asker)
    assert doc["unreachable"] == [stopped.id], doc
    assert s["records"] == 20 and s["last_seq"] == 20, doc  # node 3 held 21-30
    metrics = metrics_of(asker)
    assert metrics["unreachable"] == [stopped.id], metrics
    assert metrics["requests"] == 60 and metrics["errors"] == {"4xx": 0, "5xx": 3}, metrics
    assert metrics["status_classes"]["2xx"] == 57 and metrics["bytes_in"] == 6000, metrics
    assert 15.0 <= metrics["latency_ms"]["p50"] <= 15.1, metrics  # bucket 150's upper bound
    assert metrics["latency_ms"]["p99"] == metrics["latency_ms"]["p50"], metrics


def try_connect(node, key_path):
    try:
        return connect(node, key_path)
    except Exception:  # noqa: BLE001 - the SE's object not replicated there yet
        return None


def test_corrupted_store_is_set_aside_with_the_event(node, keys):
    key_path, public_key = keys("se-a")
    create(node.api, "serviceengine", serviceengine_body("se-a", public_key))
    node.term()
    (Path(node.data_dir) / "logs.db").write_bytes(b"not a database " * 4096)
    node.start()
    aside = list(Path(node.data_dir).glob("damaged-logs-*.db"))
    assert len(aside) == 1, aside
    assert log_lines(node, "moved to")

    def event():
        status, doc = node.api.get("/api/event", params={"event_id": "LOG_STORE_DAMAGED"})
        return status == 200 and doc["count"] == 1 and doc
    wait_until(event, 20, "the LOG_STORE_DAMAGED event")
    fake = wait_until(lambda: try_connect(node, key_path), 20, "a session")
    try:
        fake.send_logs(1, records(1, 3))
        assert fake.expect_logs_ack(timeout=10) == 3
    finally:
        fake.close()
    s, _ = summary(node)
    assert s["records"] == 3


def test_bad_parameters_get_400(node):
    base = "/api/analytics/logs/virtualservice/"
    for path, params, word in [
            (base + "not-a-uuid", {}, "uuid"),
            (base + VS, {"since": "yesterday"}, "since"),
            (base + VS, {"page_size": "0"}, "page_size"),
            (base + VS, {"page_size": "1001"}, "page_size"),
            (base + VS, {"status_class": "6xx"}, "status_class"),
            (base + VS, {"client_ip": "300.1.1.1"}, "client_ip"),
            (base + VS, {"since": "2026-12-04T07:00:00.000Z", "until": "2026-12-04T06:00:00.000Z"},
             "since"),
            ("/api/analytics/metrics/virtualservice/" + VS, {"step": "0"}, "step"),
            ("/api/analytics/metrics/virtualservice/" + VS, {"status_class": "5xx"},
             "status_class"),
            ("/api/analytics/metrics/virtualservice/" + VS, {"client_ip": "127.0.0.9"},
             "client_ip")]:
        status, doc = node.api.get(path, params=params)
        assert status == 400 and word in doc["error"], (path, params, status, doc)
    status, doc = node.api.get("/api/analytics/nothing")
    assert status == 404, doc


def test_retention_deletes_the_oldest(cluster_factory, keys):
    node = cluster_factory(1, extra_flags=["--log-retention-hours", "1"]).nodes[0]
    key_path, public_key = keys("se-a")
    create(node.api, "serviceengine", serviceengine_body("se-a", public_key))
    fake = connect(node, key_path)
    try:
        fake.send_logs(1, records(1, 10, timestamp=time.time() - 2 * 3600))
        assert fake.expect_logs_ack(timeout=10) == 10
        seq = 11

        def only_new():
            nonlocal seq
            fake.send_logs(seq, records(seq, 1))
            assert fake.expect_logs_ack(timeout=10) == seq
            seq += 1
            s, _ = summary(node)
            return s["first_seq"] == 11
        wait_until(only_new, 10, "the records older than an hour deleted", interval=0.3)
    finally:
        fake.close()
    s, _ = summary(node)
    assert s["first_seq"] == 11 and s["records"] == seq - 11


def test_logs_dropped_raised_once_per_episode(cluster_factory, keys):
    node = cluster_factory(1).nodes[0]
    key_path, public_key = keys("se-a")
    create(node.api, "serviceengine", serviceengine_body("se-a", public_key))

    def beat(episodes, dropped):
        fake = wait_until(lambda: try_connect(node, key_path), 20, "a session")
        try:
            fake.send(5, {"seq": 1, "state": "CONNECTED", "config_version": 0,
                          "logs": {"dropped": dropped, "drop_episodes": episodes,
                                   "episode_dropped": dropped, "spool_cap_bytes": 4096}})
            fake.expect(6, timeout=5, skip=(5, CONFIG))
        finally:
            fake.close()

    def count():
        status, doc = node.api.get("/api/event", params={"event_id": "SE_LOGS_DROPPED"})
        assert status == 200, doc
        return doc["count"], doc
    beat(1, 5)
    wait_until(lambda: count()[0] == 1, 10, "SE_LOGS_DROPPED")
    beat(1, 9)          # the same episode on a new session
    node.restart()
    beat(1, 9)          # and after the node's restart
    beat(2, 12)         # a new episode
    wait_until(lambda: count()[0] == 2, 10, "the second episode's SE_LOGS_DROPPED")
    n, doc = count()
    details = sorted((e["event_details"]["episode"], e["event_details"]["dropped"])
                     for e in doc["results"])
    assert details == [(1, 5), (2, 12)], doc
    assert doc["results"][0]["event_details"]["spool_cap_bytes"] == 4096


def slow_commits_and_a_session(cluster_factory, keys):
    """A one-node cluster whose log store waits 1.5 s before each commit, and a session of
    se-a on it."""
    node = cluster_factory(1, extra_flags=["--test-log-commit-delay-ms", "1500"]).nodes[0]
    key_path, public_key = keys("se-a")
    create(node.api, "serviceengine", serviceengine_body("se-a", public_key))
    return node, connect(node, key_path)


def test_metrics_stored_once_acked_after_commit_and_duplicates_dropped(cluster_factory, keys):
    node, fake = slow_commits_and_a_session(cluster_factory, keys)
    start = int(time.time()) - 30
    try:
        fake.send_metrics(1, seconds(1, 5, start, requests=4, fives=1))
        with pytest.raises(TimeoutError):  # the commit waits 1.5 s: no ack before it
            fake.expect_metrics_ack(timeout=1.0)
        assert fake.expect_metrics_ack(timeout=10) == 5
        fake.send_metrics(3, seconds(3, 5, start + 2, requests=4, fives=1))  # 3-5 held already
        assert fake.expect_metrics_ack(timeout=10) == 7
        fake.send_logs(1, records(1, 2))  # the records' own seqs: 1 and 2 are new there
        assert fake.expect_logs_ack(timeout=10) == 2
    finally:
        fake.close()
    wait_until(lambda: log_lines(node, "METRICS through seq 7: 2 stored, 3 held already"), 5,
               "the duplicates' log line")
    metrics = metrics_of(node, since=stamp(start), step=2)
    assert metrics["requests"] == 28 and metrics["errors"]["5xx"] == 7, metrics
    assert [p["requests"] for p in metrics["series"]] == [8, 8, 8, 4], metrics
    assert metrics["series"][0]["time"] == stamp(start), metrics
    s, doc = summary(node)  # the records' counts only
    assert s == {"se_name": "se-a", "records": 2, "first_seq": 1, "last_seq": 2,
                 "missing": 0, "duplicates_rejected": 0}, doc


def stamp(second):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(second))


def test_metrics_and_logs_have_their_own_frames_in_flight(cluster_factory, keys):
    node, fake = slow_commits_and_a_session(cluster_factory, keys)
    start = int(time.time()) - 30
    try:
        for i in range(4):  # 4 of each in flight at once: allowed
            fake.send_logs(1 + i, records(1 + i, 1))
            fake.send_metrics(1 + i, seconds(1 + i, 1, start + i))
        acks = set()
        for _ in range(8):
            got, payload = fake.recv(timeout=15)
            while got not in (8, 11):
                got, payload = fake.recv(timeout=15)
            acks.add((got, payload["through_seq"]))
        assert acks == {(k, i) for k in (8, 11) for i in range(1, 5)}, acks
        for i in range(5):  # a fifth METRICS frame before any ack: over the bound
            fake.send_metrics(5 + i, seconds(5 + i, 1, start + 4 + i))
        fake.wait_closed(timeout=10)
    finally:
        fake.close()
    wait_until(lambda: log_lines(node, "a METRICS frame while 4 were not acknowledged"), 5,
               "the in-flight refusal")


def test_bad_metrics_frames_close_only_their_session(node, keys):
    key_a, public_a = keys("se-a")
    key_b, public_b = keys("se-b")
    create(node.api, "serviceengine", serviceengine_body("se-a", public_a))
    create(node.api, "serviceengine", serviceengine_body("se-b", public_b))
    start = int(time.time()) - 30
    good = seconds(1, 1, start)[0]
    bad = [({"records": seconds(1, 2, start)}, "a malformed METRICS frame"),
           ({"first_seq": 1, "records": [good, dict(good, seq=3)]},
            "a METRICS frame whose record 1 has seq another"),
           ({"first_seq": 1, "records": [dict(good, requests=11)]},
            "metrics field \"status_classes\": its counts sum to 10, \"requests\" is 11"),
           ({"first_seq": 1, "records": [dict(good, latency_histogram={"9999": 1})]},
            "metrics field \"latency_histogram\""),
           ({"first_seq": 1, "records": [dict(good, timestamp="2026-12-04T06:00:00.250Z")]},
            "metrics field \"timestamp\"")]
    other = connect(node, key_b, name="se-b")
    try:
        each_closes_its_session(node, key_a, 10, bad)
        other.send_metrics(1, [metrics_record(1, start, se_name="se-b", vs_uuid=VS)])
        assert other.expect_metrics_ack(timeout=10) == 1  # se-b's session stayed open
    finally:
        other.close()
    metrics = metrics_of(node, since=stamp(start - 1))
    assert metrics["requests"] == 10, metrics  # se-b's only: nothing of se-a's was stored
    status, _ = node.api.get("/api/healthz")
    assert status == 200


def test_a_failed_metrics_commit_closes_the_session_unacked(node, keys):
    key_path, public_key = keys("se-a")
    create(node.api, "serviceengine", serviceengine_body("se-a", public_key))
    start = int(time.time()) - 30
    fake = connect(node, key_path)
    try:
        fake.send_metrics(1, seconds(1, 2, start))
        assert fake.expect_metrics_ack(timeout=10) == 2
        db = sqlite3.connect(Path(node.data_dir) / "logs.db", timeout=10)
        db.execute("DROP TABLE metrics")  # the node's next commit fails
        db.commit()
        db.close()
        fake.send_metrics(3, seconds(3, 2, start + 2))
        frames = fake.wait_closed(timeout=10)
    finally:
        fake.close()
    assert all(t != 11 for t, _ in frames), frames  # never acked
    wait_until(lambda: log_lines(node, "the log store could not store its metrics records"), 5,
               "the failed commit's line")
    status, _ = node.api.get("/api/healthz")
    assert status == 200
