"""Issue 2: one vigild node serves /api/healthz, /api/cluster and /api/cluster/runtime."""

import json
import re

import pytest

import harness
from harness import wait_until

DEFAULT_PORTS = (7000, 8080, 5098)
RFC3339_MS_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# the contract's legal status moves (from, to); "any -> Not Responsive" is added below
LEGAL_MOVES = {
    ("Not Responsive", "Errors"), ("Not Responsive", "Restoring"), ("Errors", "Restoring"),
    ("Restoring", "Waiting for Service Engines"),
    ("Waiting for Service Engines", "Cluster copying DB from leader"),
    ("Cluster copying DB from leader", "Ready"), ("Ready", "Cluster copying DB from leader"),
} | {(s, "Not Responsive") for s in harness.STATUS_WORDS}


def test_data_dir_alone_serves_on_defaults(cluster_factory, tmp_path):
    taken = [p for p in DEFAULT_PORTS if not harness.port_is_free(p, reuse=True)]
    if taken:
        pytest.skip(f"default ports {taken} on 127.0.0.1 are in use by another process")
    data_dir = tmp_path / "d"
    data_dir.mkdir()
    proc = cluster_factory.registry.spawn("vigild-defaults", [harness.VIGILD, "--data-dir", data_dir])
    # The defaults: HTTPS with the cluster's self-signed certificate, and a random first
    # admin password in DIR/initial-admin-password.
    probe = harness.Api("127.0.0.1:8080", auth=None, scheme="https", verify=False)

    def healthy():
        if proc.poll() is not None:
            raise harness.HarnessError(f"vigild exited with {proc.returncode}")
        status, doc = probe.get("/api/healthz", timeout=(0.5, 2))
        return status == 200 and doc == {"status": "ok", "node_id": 1}
    wait_until(healthy, 20, "vigild --data-dir D to answer /api/healthz on https://127.0.0.1:8080")
    password = (data_dir / "initial-admin-password").read_text().strip()
    assert oct((data_dir / "initial-admin-password").stat().st_mode & 0o777) == "0o600"
    ca = tmp_path / "cluster-ca.pem"
    ca.write_text(json.loads((data_dir / "cluster-credentials.json").read_text())["tls_cert"])
    api = harness.Api("127.0.0.1:8080", auth=("admin", password), scheme="https", verify=str(ca))
    assert api.get("/api/pool")[0] == 200
    assert harness.Api("127.0.0.1:8080", auth=None, scheme="https", verify=str(ca)).get("/api/pool")[0] == 401

    def listed():
        status, doc = api.get("/api/cluster")
        return doc if status == 200 and doc.get("nodes") else None
    doc = wait_until(listed, 20, "/api/cluster to list node 1")
    assert doc["name"] == "vigil"
    assert doc["uuid"]
    assert doc.get("virtual_ip") is None
    nodes = doc["nodes"]
    assert len(nodes) == 1, nodes
    me = nodes[0]
    assert me["id"] == 1
    assert me["name"] == "node-1"
    assert me["raft_address"] == "127.0.0.1:7000"
    assert me["api_address"] == "127.0.0.1:8080"
    assert me["se_address"] == "127.0.0.1:5098"

    rt = wait_until(lambda: (lambda s, d: d if s == 200 and d.get("leader_id") == 1 else None)(
        *api.get("/api/cluster/runtime")), 20, "node 1 to lead")
    assert rt["node_id"] == 1
    # a usable write on the defaults
    status, doc = api.post("/api/healthmonitor", harness.healthmonitor_body("hm-defaults"))
    assert status == 201, doc
    assert not harness.port_is_free(7000, reuse=True), "nothing listens on the default raft port 7000"


def test_healthz(node):
    status, doc = node.api.get("/api/healthz")
    assert status == 200
    assert doc == {"status": "ok", "node_id": 1}


def test_cluster_lists_our_node_with_its_addresses(node):
    status, doc = node.api.get("/api/cluster")
    assert status == 200, doc
    assert doc["name"] == "vigil"
    assert isinstance(doc["uuid"], str) and len(doc["uuid"]) >= 8, doc
    assert doc.get("virtual_ip") is None
    assert [n["id"] for n in doc["nodes"]] == [1], doc
    me = doc["nodes"][0]
    assert me["name"] == node.name
    assert me["raft_address"] == node.raft
    assert me["api_address"] == node.api_address
    assert me["se_address"] == node.se_listen
    if me.get("se_host_key") is not None:
        assert me["se_host_key"].startswith("ssh-ed25519 AAAA"), me


def test_cluster_uuid_and_name_survive_restart(cluster_factory):
    node = cluster_factory.node(extra_flags=["--cluster-name", "prod-east"])
    node.start()
    node.wait_registered()
    status, before = node.api.get("/api/cluster")
    assert status == 200, before
    assert before["name"] == "prod-east"
    node.restart()
    node.wait_registered()
    status, after = node.api.get("/api/cluster")
    assert status == 200, after
    assert after["uuid"] == before["uuid"]
    assert after["name"] == "prod-east"
    assert len(after["nodes"]) == 1, after


def test_cluster_record_is_never_half_made(cluster_factory):
    """From the first answer on, /api/cluster has the uuid made at bootstrap (no null)."""
    node = cluster_factory.node()
    node.start(wait=False)
    seen = []

    def answered():
        if not node.running:
            raise harness.HarnessError(f"vigild exited with {node.proc.returncode}")
        status, doc = node.api.get("/api/cluster", timeout=(0.2, 2))
        if status == 200:
            seen.append(doc)
        return len(seen) >= 1 and seen[-1].get("nodes")
    wait_until(answered, 20, "/api/cluster to list our node")
    # the node list may be empty until the node's record commits, but the cluster's
    # identity exists from bootstrap on
    nulls = [d for d in seen if not d.get("uuid")]
    assert not nulls, f"/api/cluster answered 200 without a uuid ({len(nulls)} of {len(seen)} answers): {nulls[0]}"


def wait_ready(node, timeout=20):
    return wait_until(lambda: (lambda rt: rt if rt["cluster_state"]["status"] == "Ready" else None)(
        node.runtime()), timeout, f"{node.label} status Ready")


def test_runtime_one_node(node):
    rt = wait_ready(node)
    assert rt["node_id"] == 1
    assert rt["leader_id"] == 1
    assert isinstance(rt["term"], int) and rt["term"] >= 1, rt
    cs = rt["cluster_state"]
    assert cs["state"] == "CLUSTER_UP_NO_HA", cs
    assert cs["status"] in harness.STATUS_WORDS, cs
    me = node.own_state(rt)
    assert me is not None, f"no node_states entry for node 1: {rt}"
    assert me["role"] == "CLUSTER_LEADER"
    assert me["name"] == node.name
    applied = me["applied_index"]
    assert isinstance(applied, int) and applied >= 1, me
    assert RFC3339_MS_UTC.match(cs["since"]), cs
    assert isinstance(rt.get("status_history"), list) and rt["status_history"], rt
    for entry in rt["status_history"]:
        assert entry["status"] in harness.STATUS_WORDS, entry
        assert RFC3339_MS_UTC.match(entry["time"]), entry
        assert isinstance(entry.get("reason"), str), entry
    walk = [e["status"] for e in rt["status_history"]]
    assert walk[-1] == "Ready", walk
    for move in zip(walk, walk[1:]):
        assert move in LEGAL_MOVES, f"illegal status move {move} in {walk}"
    times = [e["time"] for e in rt["status_history"]]
    assert times == sorted(times), f"status_history is not oldest first: {times}"

    # the applied index moves with a committed write
    status, doc = node.api.post("/api/healthmonitor", harness.healthmonitor_body("hm-idx"))
    assert status == 201, doc
    after = node.own_state()["applied_index"]
    assert after > applied, (applied, after)


def test_sigterm_is_a_clean_stop(node):
    assert node.term(deadline=10) == 0


def test_node_id_other_than_1(cluster_factory):
    node = cluster_factory.node(7)
    node.start()
    wait_until(lambda: node.runtime().get("leader_id") == 7, 20, "node 7 to lead itself")
    node.wait_registered()
    status, doc = node.api.get("/api/healthz")
    assert (status, doc) == (200, {"status": "ok", "node_id": 7})
    rt = node.runtime()
    assert rt["node_id"] == 7 and node.own_state(rt)["role"] == "CLUSTER_LEADER", rt
    status, doc = node.api.get("/api/cluster")
    assert [(n["id"], n["name"]) for n in doc["nodes"]] == [(7, "node-7")], doc


def test_consistent_read_on_one_node(node):
    status, doc = node.api.post("/api/pool", harness.pool_body("cr-pool"))
    assert status == 201, doc
    status, got = node.api.get(f"/api/pool/{doc['uuid']}", params={"consistent": 1})
    assert status == 200 and got["name"] == "cr-pool", got
    status, listing = node.api.get("/api/pool", params={"consistent": 1})
    assert status == 200 and listing["count"] == 1, listing


def test_se_listen_port_is_served(node):
    assert not harness.port_is_free(int(node.se_listen.split(":")[1])), \
        f"nothing listens on --se-listen {node.se_listen}"
