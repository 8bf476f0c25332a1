"""The cluster certificate names every node's API host (issue 11, defect 2): a browser or
the CLI pointed at a node's --api address verifies the certificate against that address.
Nodes listen on other loopback addresses (127.0.0.2-127.0.0.5) than the raft hosts.

The first leader makes the certificate with the raft hosts, its own API host, the cluster
IP and loopback; when a registered node's host is missing from it, the leader makes a
server certificate signed by it that names every host, and every node serves that (the CA
file users saved, DIR/cluster-credentials.json's tls_cert, still verifies it).
"""

import socket
import ssl

from cryptography import x509

import harness


def served_certificate(address):
    """The certificate (cryptography x509) the node at HOST:PORT serves, not verified."""
    host, port = address.rsplit(":", 1)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        with ctx.wrap_socket(sock) as tls:
            der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der)


def ip_names(cert):
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}


def verified_healthz(node, ca_file):
    """GET /api/healthz verifying the certificate against the node's API address."""
    api = harness.Api(node.api_address, scheme="https", verify=ca_file)
    status, doc = api.get("/api/healthz", timeout=(1.0, 3.0))
    return status == 200 and doc.get("node_id") == node.id


def test_one_node_api_host_named(cluster_factory):
    """A node whose --api is on 127.0.0.2 (raft on 127.0.0.1) is verified against
    127.0.0.2 by the certificate it made."""
    cluster = cluster_factory(1, api_hosts=["127.0.0.2"])
    node = cluster.nodes[0]
    assert node.api_address.startswith("127.0.0.2:")
    assert verified_healthz(node, node.ca_file())
    names = ip_names(served_certificate(node.api_address))
    assert {"127.0.0.2", "127.0.0.1"} <= names, names


def test_three_nodes_every_api_host_named(cluster_factory):
    """Three nodes with their API on 127.0.0.2, .3 and .4: each serves a certificate naming
    all three (and the raft host), verified against its own address with the CA file saved
    from any node (the cluster's self-signed certificate, which signs the renewal)."""
    hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    cluster = cluster_factory(3, api_hosts=hosts)
    first_ca = {n.id: n.ca_file() for n in cluster.nodes}

    def all_named():
        for node in cluster.nodes:
            names = ip_names(served_certificate(node.api_address))
            if not set(hosts) | {"127.0.0.1"} <= names:
                return None
        return True
    harness.wait_until(all_named, 20, "every node to serve a certificate naming all API hosts")

    served = {n.id: served_certificate(n.api_address) for n in cluster.nodes}
    assert len({c.fingerprint(c.signature_hash_algorithm) for c in served.values()}) == 1, \
        "the nodes serve different certificates"
    for node in cluster.nodes:
        # The CA file users save (DIR/cluster-credentials.json's tls_cert) stays the same:
        # the served certificate is signed by it.
        with open(first_ca[node.id]) as f:
            assert node.cluster_tls_cert().strip() == f.read().strip(), node
        assert verified_healthz(node, first_ca[node.id]), node
    # A restarted node serves the renewed certificate from its data dir at once.
    follower = cluster.followers()[0]
    follower.restart()
    assert set(hosts) <= ip_names(served_certificate(follower.api_address))


def test_wildcard_api_advertises_raft_host(cluster_factory):
    """--api 0.0.0.0:PORT: the node answers on every address, records its raft host (here
    127.0.0.5) with that port as its API address, and the certificate names that host."""
    node = cluster_factory.node(raft_host="127.0.0.5", api_host="0.0.0.0")
    node.start()
    record = node.wait_registered()
    port = node.api_address.split(":")[1]
    assert record["api_address"] == f"127.0.0.5:{port}", record
    assert record["raft_address"] == node.raft, record
    assert verified_healthz(node, node.ca_file())
    names = ip_names(served_certificate(node.api_address))
    assert "127.0.0.5" in names and "0.0.0.0" not in names, names
    # Listening on the wildcard: reachable on another loopback address too.
    other = harness.Api(f"127.0.0.1:{port}", scheme="https", verify=node.ca_file())
    assert other.get("/api/healthz")[0] == 200
