"""The seed: an SE restarted while no controller is reachable serves its last good config
at once (from DIR/controller-config.json, pushed by the cluster earlier), and connects when
the controllers are back. A real vigil-se against a real three-node TLS cluster; every wait
has a deadline, every process is stopped by its PID."""
import requests

from cluster_helpers import three_nodes
from conftest import free_port, wait_for
from fake_controller import make_key
from test_se_channel_client import ChannelSE
from test_se_with_cluster import known_hosts_from_cli


def served(port):
    try:
        return requests.get("http://127.0.0.1:%d/" % port, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_se_restarted_while_headless_serves_its_last_good_config(cluster_factory, procs,
                                                                  tmp_path):
    cluster = three_nodes(cluster_factory)
    leader = cluster.leader()
    key = tmp_path / "se-key"
    status, doc = leader.api.post("/api/serviceengine", {"name": "se-1",
                                                         "public_key": make_key(key)})
    assert status == 201, (status, doc)
    backend_port, vs_port = free_port(), free_port()
    procs.backend("http", backend_port, "b1")
    status, pool = leader.api.post("/api/pool", {
        "name": "p1", "lb_algorithm": "LB_ALGORITHM_ROUND_ROBIN",
        "servers": [{"ip": "127.0.0.1", "port": backend_port, "enabled": True}]})
    assert status == 201, (status, pool)
    status, doc = leader.api.post("/api/virtualservice", {
        "name": "web", "enabled": True, "vip": "127.0.0.1", "services": [{"port": vs_port}],
        "application": "http", "pool_ref": pool["uuid"]})
    assert status == 201, (status, doc)
    kh = known_hosts_from_cli(leader, tmp_path / "known_hosts")
    addresses = [n.se_listen for n in cluster.nodes]

    se = ChannelSE(procs, tmp_path, key, kh, addresses).start()
    wait_for(lambda: se.state() == "CONNECTED", 20, "CONNECTED")
    wait_for(lambda: served(vs_port), 20, "the pushed virtual service served")
    version = se.status()["config_version"]

    for node in cluster.nodes:
        node.kill9()
    wait_for(lambda: se.state() == "HEADLESS", 30, "HEADLESS")
    se.proc.kill()                       # the SE crashes too, while headless
    se = ChannelSE(procs, tmp_path, key, kh, addresses).start()
    # no controller answers: the last good config is served at once, at its version
    wait_for(lambda: served(vs_port), 5, "the last good config served by the restarted SE")
    assert se.status()["config_version"] == version
    assert se.state() != "CONNECTED"

    for node in cluster.nodes:
        node.start(wait=False)
    wait_for(lambda: se.state() == "CONNECTED", 60, "CONNECTED once the cluster is back")
    assert served(vs_port)
