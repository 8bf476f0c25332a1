"""Checks of the harness itself: ports, waits, and a 3-node cluster's leader agreement."""

import time

import pytest

import harness


def test_ports_are_unique_and_free():
    ports = [harness.allocate_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(harness.port_is_free(p) for p in ports)


def test_wait_until_names_what_it_waited_for():
    t0 = time.monotonic()
    with pytest.raises(harness.HarnessError, match="the moon to turn blue"):
        harness.wait_until(lambda: False, 0.3, "the moon to turn blue")
    assert time.monotonic() - t0 < 2


def test_wait_until_stops_at_once_on_a_harness_error():
    def cond():
        raise harness.HarnessError("process exited")
    t0 = time.monotonic()
    with pytest.raises(harness.HarnessError, match="process exited"):
        harness.wait_until(cond, 30, "anything")
    assert time.monotonic() - t0 < 2


def test_three_node_cluster_has_one_agreed_leader(cluster_factory):
    cluster = cluster_factory(3, heartbeat_ms=50, election_timeout_ms=300)
    leader = cluster.wait_leader()
    followers = cluster.followers()
    assert leader not in followers and len(followers) == 2
    for f in followers:
        rt = f.runtime()
        assert rt["leader_id"] == leader.id
        assert f.own_state(rt)["role"] == harness.ROLE_FOLLOWER
    status, doc = leader.api.get("/api/cluster")
    assert sorted(n["id"] for n in doc["nodes"]) == [1, 2, 3] or status == 200


def test_teardown_stops_every_process(cluster_factory):
    node = cluster_factory(1).nodes[0]
    pid = node.pid
    cluster_factory.close()
    assert not node.running
    with pytest.raises(ProcessLookupError):
        import os
        os.kill(pid, 0)


def test_a_process_ended_by_a_crash_signal_is_named_and_one_killed_by_the_test_is_not(tmp_path):
    registry = harness.ProcessRegistry(tmp_path)
    crashed = registry.spawn("crasher", ["sh", "-c", "kill -SEGV $$"])
    killed = registry.spawn("killed", ["sleep", "30"])
    crashed.wait(timeout=10)
    killed.kill()
    killed.wait(timeout=10)
    registry.stop_all()
    assert registry.crashes == [f"crasher (pid {crashed.pid}) died of SIGSEGV"]
    assert "died of SIGSEGV" in (tmp_path / "crasher.stderr").read_text()
    assert registry.take_crashes() == []  # each is named once
