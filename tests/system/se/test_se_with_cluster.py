"""A real vigil-se driven by a real three-node vigild cluster, as users run it: TLS on, the
defaults, the SE registered through the API with its own key, `vigil cluster known-hosts`
as its --known-hosts file as is. Client traffic goes through the SE the whole time and every
failed request is counted (issue 12; the seed: the SE keeps serving whatever the
controllers do, goes headless with no controller and reconnects when they are back).

Every wait has a deadline; every process is stopped by its PID (the harness and `procs`).
"""
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from cluster_helpers import events, three_nodes
from conftest import free_port, wait_for
from fake_controller import make_key
from test_se_channel_client import ChannelSE

REPO = Path(__file__).resolve().parents[3]
VIGIL = REPO / "build" / "src" / "cli" / "vigil"


def known_hosts_from_cli(node, path):
    """`vigil cluster known-hosts` against NODE, written to PATH as it printed it."""
    status, doc = node.api.post("/api/token", {"description": "known-hosts"})
    assert status == 201, (status, doc)
    argv = [str(VIGIL), "--controller", node.api.base, "cluster", "known-hosts"]
    if node.tls:
        argv[3:3] = ["--cacert", str(node.ca_file())]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=20,
                       env={**os.environ, "VIGIL_TOKEN": doc["token"]})
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    path.write_text(p.stdout)
    return path


class Traffic:
    """Bounded client traffic through the SE's virtual service from a thread: one GET every
    10 ms until stopped (at most 6000), each failure kept with its error."""

    def __init__(self, port):
        self.url = "http://127.0.0.1:%d/" % port
        self.ok = 0
        self.failed = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        session = requests.Session()
        for _ in range(6000):
            if self._stop.is_set():
                return
            try:
                r = session.get(self.url, timeout=2)
                if r.status_code == 200:
                    self.ok += 1
                else:
                    self.failed.append(r.status_code)
            except requests.RequestException as exc:
                self.failed.append(repr(exc))
            time.sleep(0.01)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10)


class SeBed:
    """A three-node cluster (TLS, defaults) with one serviceengine "se-1" registered with its
    own key (KEY), a backend, pool "p1" (POOL) and virtual service "web" on
    127.0.0.1:VS_PORT for every SE, and KNOWN_HOSTS written by `vigil cluster known-hosts`."""

    def __init__(self, cluster_factory, procs, tmp_path):
        self.cluster = three_nodes(cluster_factory)
        self.leader = leader = self.cluster.leader()
        self.key = tmp_path / "se-key"
        status, self.se_obj = leader.api.post("/api/serviceengine",
                                              {"name": "se-1", "public_key": make_key(self.key)})
        assert status == 201, (status, self.se_obj)
        self.backend_port, self.vs_port = free_port(), free_port()
        procs.backend("http", self.backend_port, "b1")
        status, self.pool = leader.api.post("/api/pool", {
            "name": "p1", "lb_algorithm": "LB_ALGORITHM_ROUND_ROBIN",
            "servers": [{"ip": "127.0.0.1", "port": self.backend_port, "enabled": True}]})
        assert status == 201, (status, self.pool)
        status, vs = leader.api.post("/api/virtualservice", {
            "name": "web", "enabled": True, "vip": "127.0.0.1",
            "services": [{"port": self.vs_port}], "application": "http",
            "pool_ref": self.pool["uuid"]})
        assert status == 201, (status, vs)
        self.known_hosts = known_hosts_from_cli(leader, tmp_path / "known_hosts")


def connected_count(se):
    return len([c for c in se.status()["controllers"] if c["connected"]])


def reboot_down(node, how):
    """The first half of a reboot: a crash (kill -9) or a clean stop (SIGTERM)."""
    if how == "kill9":
        node.kill9()
    else:
        node.term()


@pytest.mark.parametrize("how", ["kill9", "stop"])
def test_se_connects_serves_and_rides_out_the_seed_reboots(cluster_factory, procs, tmp_path,
                                                           how):
    bed = SeBed(cluster_factory, procs, tmp_path)
    cluster, leader, key, pool = bed.cluster, bed.leader, bed.key, bed.pool
    backend_port, vs_port = bed.backend_port, bed.vs_port
    kh = bed.known_hosts
    follower = next(n for n in cluster.nodes if n is not leader)
    # given one node: it learns the others from WELCOME
    se = ChannelSE(procs, tmp_path, key, kh, [follower.se_listen]).start()
    wait_for(lambda: se.state() == "CONNECTED", 20, "the SE CONNECTED")
    wait_for(lambda: connected_count(se) == 3, 20, "sessions to all three nodes")
    wait_for(lambda: requests.get("http://127.0.0.1:%d/" % vs_port, timeout=2).status_code
             == 200, 20, "the virtual service pushed by the cluster served")
    version = se.status()["config_version"]
    assert version > 0

    traffic = Traffic(vs_port).start()
    try:
        # a config change through the API reaches the SE
        status, doc = leader.api.post("/api/healthmonitor", {
            "name": "hm", "type": "HEALTH_MONITOR_TCP", "send_interval": 1,
            "receive_timeout": 0.5, "successful_checks": 1, "failed_checks": 2})
        assert status == 201, (status, doc)
        status, doc = leader.api.put("/api/pool/" + pool["uuid"], {
            "name": "p1", "lb_algorithm": "LB_ALGORITHM_ROUND_ROBIN",
            "servers": [{"ip": "127.0.0.1", "port": backend_port, "enabled": True}],
            "health_monitor_refs": [doc["uuid"]]})
        assert status == 200, (status, doc)
        wait_for(lambda: se.status()["config_version"] > version, 10, "the new config version")

        # a follower reboots: the SE stays CONNECTED
        reboot_down(follower, how)
        wait_for(lambda: connected_count(se) == 2, 20, "the follower's session gone")
        assert se.state() == "CONNECTED"
        follower.start()
        wait_for(lambda: connected_count(se) == 3, 20, "the follower's session back")

        # the leader reboots: the SE keeps its other sessions, stays CONNECTED
        reboot_down(leader, how)
        wait_for(lambda: cluster.leader() is not None and cluster.leader() is not leader, 20,
                 "a new leader")
        assert se.state() == "CONNECTED"
        leader.start()
        wait_for(lambda: connected_count(se) == 3, 20, "the rebooted node's session back")

        # both followers reboot: the remaining node knows no leader with quorum, so no
        # session is healthy (contract): the SE leaves CONNECTED and keeps serving, and is
        # CONNECTED again once they are back
        current = cluster.leader()
        followers = [n for n in cluster.nodes if n is not current]
        for node in followers:
            reboot_down(node, how)
        wait_for(lambda: se.state() in ("CONTROLLER_HEARTBEAT_FAILED", "HEADLESS"), 30,
                 "the SE to see no node with a leader")
        for node in followers:
            node.start(wait=False)
        wait_for(lambda: se.state() == "CONNECTED", 60, "CONNECTED with the followers back")
        wait_for(lambda: connected_count(se) == 3, 30, "sessions to all three again")

        # every controller down: HEADLESS, traffic still served
        for node in cluster.nodes:
            reboot_down(node, how)
        wait_for(lambda: se.state() == "HEADLESS", 30, "HEADLESS with no controller")
        served_headless = traffic.ok
        wait_for(lambda: traffic.ok > served_headless + 50, 20, "traffic served while headless")

        # all three back: CONNECTED again
        for node in cluster.nodes:
            node.start(wait=False)
        wait_for(lambda: se.state() == "CONNECTED", 60, "CONNECTED once the cluster is back")
    finally:
        traffic.stop()
    print(f"requests served {traffic.ok}, failed {len(traffic.failed)}")
    assert traffic.failed == [], traffic.failed[:5]
    assert traffic.ok > 100


def _wall_ms(line):
    """The epoch milliseconds of a vlog line ("2026-12-03T16:52:18.192Z ..."), or None."""
    import datetime
    try:
        t = datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f")
    except ValueError:
        return None
    return t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000.0


def test_se_connects_at_once_to_a_node_back_from_a_long_absence(cluster_factory, procs,
                                                                tmp_path):
    """A follower stopped long enough for the SE's reconnect backoff to it to reach its cap
    (about 5 s between attempts): when it is back, the other nodes list it in "nodes_ready"
    as soon as it admits SEs, and the SE connects to it then ("node N admits SEs ...:
    connecting now"), before the attempt its backoff had scheduled."""
    bed = SeBed(cluster_factory, procs, tmp_path)
    cluster, leader = bed.cluster, bed.leader
    follower = next(n for n in cluster.nodes if n is not leader)
    se = ChannelSE(procs, tmp_path, bed.key, bed.known_hosts,
                   [n.se_listen for n in cluster.nodes]).start()
    wait_for(lambda: se.state() == "CONNECTED" and connected_count(se) == 3, 20,
             "the SE CONNECTED to all three nodes")
    follower.term()
    addr = follower.se_listen

    def long_backoff():
        for line in reversed(se.log_text().splitlines()):
            if f"ctl_session {addr}:" in line and "connecting again in" in line:
                delay = int(line.rsplit("connecting again in ", 1)[1].split()[0])
                return (line, delay) if delay >= 3500 else None
        return None
    found = []

    def at_cap():
        backoff = long_backoff()
        if backoff is not None:
            found.append(backoff)
        return backoff is not None
    wait_for(at_cap, 30, f"the SE's backoff to {addr} at its cap")
    line, delay = found[-1]
    due_ms = _wall_ms(line) + delay
    follower.start()
    wait_for(lambda: connected_count(se) == 3, 20, "the follower's session back")
    after = se.log_text().split(line, 1)[1].splitlines()
    told = [ln for ln in after if f"controller_link {addr}: node {follower.id} admits SEs" in ln
            and "connecting now" in ln]
    opened = [ln for ln in after if f"ctl_session {addr}: open" in ln]
    assert told, f"no 'admits SEs ... connecting now' for {addr}: {after[-10:]}"
    assert opened and _wall_ms(opened[0]) < due_ms, (opened[:1], due_ms, after[-10:])
    assert se.state() == "CONNECTED"


def test_every_controller_down_for_30_s_the_se_serves_headless(cluster_factory, procs, tmp_path):
    """The seed's longest outage: all three controllers killed and kept down for 30 s (far
    past every backoff cap and miss limit). The SE is HEADLESS the whole time and serves
    every request; once the controllers are back it is CONNECTED again and the leader
    records SE_HEADLESS_RECOVERED once."""
    bed = SeBed(cluster_factory, procs, tmp_path)
    cluster = bed.cluster
    se = ChannelSE(procs, tmp_path, bed.key, bed.known_hosts,
                   [n.se_listen for n in cluster.nodes]).start()
    wait_for(lambda: se.state() == "CONNECTED" and connected_count(se) == 3, 20,
             "the SE CONNECTED to all three nodes")
    wait_for(lambda: requests.get("http://127.0.0.1:%d/" % bed.vs_port, timeout=2).status_code
             == 200, 20, "the virtual service served")
    traffic = Traffic(bed.vs_port).start()
    try:
        for node in cluster.nodes:
            node.kill9()
        wait_for(lambda: se.state() == "HEADLESS", 30, "HEADLESS with no controller")
        down_until = time.monotonic() + 30
        while time.monotonic() < down_until:     # the outage itself, checked as it lasts
            served = traffic.ok
            wait_for(lambda: traffic.ok > served, 5, "requests served while headless")
            assert se.state() == "HEADLESS", se.status()
            time.sleep(1)
        for node in cluster.nodes:
            node.start(wait=False)
        leader = cluster.wait_leader(30)
        wait_for(lambda: se.state() == "CONNECTED" and connected_count(se) == 3, 30,
                 "CONNECTED to all three again")
        served = traffic.ok
        wait_for(lambda: traffic.ok > served + 20, 10, "requests served after the return")
    finally:
        traffic.stop()
    print(f"requests served {traffic.ok}, failed {len(traffic.failed)}")
    assert traffic.failed == [], traffic.failed[:5]
    recovered = wait_for(lambda: [e for e in events(leader, "SE_HEADLESS_RECOVERED")] or None,
                         15, "SE_HEADLESS_RECOVERED recorded")
    assert len(recovered) == 1 and recovered[0]["event_details"]["se_name"] == "se-1", recovered
    # every node's session is reported by now: still exactly one
    for node in cluster.nodes:
        wait_for(lambda node=node: len(node.runtime()["node_states"]) == 3, 10, "members")
        assert len(events(node, "SE_HEADLESS_RECOVERED")) == 1, events(node)
    # the records made while no controller was up were spooled, said so in the event (what
    # the SE's HELLO on its return counted), and drained to the log node: the summary from
    # every node is complete, nothing missing, none twice (issue 13)
    spooled = recovered[0]["event_details"]["spooled_logs"]
    wait_for(lambda: se.status()["logs"]["spooled"] == 0, 30, "the spool drained")
    logs = se.status()["logs"]
    assert logs["dropped"] == 0 and logs["acked"] == logs["generated"], logs
    assert 0 < spooled <= logs["generated"], (spooled, logs)
    for node in cluster.nodes:
        status, doc = node.api.get("/api/analytics/logs/summary")
        assert status == 200 and doc["unreachable"] == [], (node.label, status, doc)
        mine = [r for r in doc["results"] if r["se_name"] == "se-1"]
        assert len(mine) == 1, (node.label, doc)
        assert mine[0]["records"] == logs["generated"] and mine[0]["missing"] == 0, \
            (node.label, mine, logs)
        assert mine[0]["last_seq"] - mine[0]["first_seq"] + 1 == logs["generated"], mine
        # the SE object shows its spool's counts as the SE last told this node
        status, ses = node.api.get("/api/serviceengine")
        obj = next(o for o in ses["results"] if o["name"] == "se-1")
        wait_for(lambda node=node: next(o for o in node.api.get("/api/serviceengine")[1]["results"]
                                        if o["name"] == "se-1")["logs"] == {"spooled": 0,
                                                                            "dropped": 0},
                 10, f"{node.label}: the SE's logs counts")
        assert set(obj) >= {"logs", "config_version", "se_state"}, obj
