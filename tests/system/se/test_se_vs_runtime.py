"""A virtual service's runtime on every node (GET /api/virtualservice and the stream's
snapshot): its health and rates as the SEs report them in their heartbeats
(engine_vs_runtime -> HEARTBEAT "vs" -> vs_reports.c), against a real cluster and SE."""
import json

import requests

from conftest import wait_for
from stream_helpers import SseClient
from test_se_channel_client import ChannelSE
from test_se_with_cluster import SeBed, Traffic, connected_count


def runtime(node, uuid):
    status, vs = node.api.get("/api/virtualservice/" + uuid)
    assert status == 200, (status, vs)
    return vs.get("runtime")   # absent while no SE reports it


def test_health_and_rates_from_the_ses_heartbeats_on_every_node(cluster_factory, procs, tmp_path):
    bed = SeBed(cluster_factory, procs, tmp_path)
    status, listed = bed.leader.api.get("/api/virtualservice")
    assert status == 200, listed
    uuid = listed["results"][0]["uuid"]
    assert all(runtime(n, uuid) is None for n in bed.cluster.nodes)  # no SE yet
    # a GET's answer goes back in a PUT as it is
    vs = listed["results"][0]
    status, doc = bed.leader.api.put("/api/virtualservice/" + uuid, vs)
    assert status == 200, (status, doc)

    se = ChannelSE(procs, tmp_path, bed.key, bed.known_hosts,
                   [n.se_listen for n in bed.cluster.nodes]).start()
    wait_for(lambda: connected_count(se) == 3, 20, "sessions to all three nodes")
    wait_for(lambda: requests.get("http://127.0.0.1:%d/" % bed.vs_port, timeout=2).status_code
             == 200, 20, "the virtual service served")
    traffic = Traffic(bed.vs_port).start()
    try:
        for n in bed.cluster.nodes:
            wait_for(lambda n=n: ((runtime(n, uuid) or {}).get("requests_per_s") or 0) > 0, 20,
                     f"{n.label}: a request rate")
            rt = runtime(n, uuid)
            assert rt["health"] == "UP" and rt["service_engines"] == 1, rt
            assert rt["servers_up"] == 1 and rt["servers"] == 1, rt
            assert rt["errors_per_s"] == 0, rt
            # each server as the SEs' monitors see it
            assert rt["server_states"] == [{"ip": "127.0.0.1", "port": bed.backend_port,
                                            "state": "UP", "reported_by": 1, "up_on": 1}], rt
        # the stream's snapshot carries the same runtime
        stream = SseClient(bed.leader)
        try:
            first = stream.wait(lambda c: c.of("snapshot")[:1], 10, "a snapshot")[0]
        finally:
            stream.close()
        vs_snap = next(v for v in json.loads(first["data"])["virtualservices"]
                       if v["uuid"] == uuid)
        assert vs_snap["runtime"]["health"] == "UP", vs_snap
    finally:
        traffic.stop()
    # the pool's only server out of service: the virtual service is DOWN on every node
    status, pool = bed.leader.api.get("/api/pool/" + bed.pool["uuid"])
    pool["servers"][0]["enabled"] = False
    status, doc = bed.leader.api.put("/api/pool/" + bed.pool["uuid"], pool)
    assert status == 200, (status, doc)
    for n in bed.cluster.nodes:
        wait_for(lambda n=n: runtime(n, uuid)["health"] == "DOWN", 20, f"{n.label}: DOWN")
        assert [s["state"] for s in runtime(n, uuid)["server_states"]] == ["DISABLED"]
    se.stop()
    for n in bed.cluster.nodes:
        wait_for(lambda n=n: runtime(n, uuid) is None, 20, f"{n.label}: no SE reports it")
