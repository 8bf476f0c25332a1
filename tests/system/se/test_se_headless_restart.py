"""The seed: an SE restarted while no controller is reachable serves its last good config
at once (from DIR/controller-config.json, pushed by the cluster earlier), and connects when
the controllers are back. A real vigil-se against a real three-node TLS cluster; every wait
has a deadline, every process is stopped by its PID."""
import requests

from conftest import wait_for
from test_se_channel_client import ChannelSE
from test_se_with_cluster import SeBed


def served(port):
    try:
        return requests.get("http://127.0.0.1:%d/" % port, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_se_restarted_while_headless_serves_its_last_good_config(cluster_factory, procs,
                                                                  tmp_path):
    bed = SeBed(cluster_factory, procs, tmp_path)
    cluster, key, kh, vs_port = bed.cluster, bed.key, bed.known_hosts, bed.vs_port
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
