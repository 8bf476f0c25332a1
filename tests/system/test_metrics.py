"""Issue 16: GET /metrics on every controller node (contract "REST API"): Prometheus text
format, checked here by a strict parser (HELP and TYPE lines, the name and label grammar,
label escaping, histograms' buckets cumulative with +Inf equal to _count), names prefixed
vigil_ in base units; counters that move with the writes; authenticated like the API
(401 without credentials, read-only suffices, a bearer token works)."""

import requests

import harness
from harness import write_many
from prom_parser import ParseError, parse


def test_the_parser_refuses_what_the_format_does_not_allow():
    good = ("# HELP vigil_a_total A.\n# TYPE vigil_a_total counter\n"
            'vigil_a_total{k="x\\"y\\\\z\\n"} 3\n')
    assert parse(good)["vigil_a_total"]["samples"][0][1] == {"k": 'x"y\\z\n'}
    hist = ("# HELP vigil_h_seconds H.\n# TYPE vigil_h_seconds histogram\n"
            'vigil_h_seconds_bucket{le="0.1"} 2\nvigil_h_seconds_bucket{le="+Inf"} %s\n'
            "vigil_h_seconds_sum 0.3\nvigil_h_seconds_count 3\n")
    parse(hist % "3")
    bad = [
        good.replace("counter", "gauge"),                        # _total on a gauge
        good.replace('\\"y', '\\ty'),                           # bad escape
        good.replace("vigil_a_total{", "vigil_a-total{"),       # bad name
        good[:-1],                                               # no final newline
        good.replace("# HELP vigil_a_total A.\n", ""),          # no HELP
        good + 'vigil_a_total{k="x\\"y\\\\z\\n"} 4\n',          # duplicate sample
        good.replace("vigil_a_total", "other_total"),           # not prefixed
        hist % "4",                                              # +Inf != _count
        hist.replace('le="0.1"} 2', 'le="0.1"} 5') % "3",       # not cumulative
        good + "# a comment\n",                                  # stray comment
        good.replace(" 3\n", " three\n"),                        # bad value
    ]
    for text in bad:
        try:
            parse(text)
        except ParseError:
            continue
        raise AssertionError(f"accepted: {text!r}")


def scrape(node, auth=None, headers=None):
    auth = auth if auth is not None else node.api.auth
    r = requests.get(f"{node.api.base}/metrics", auth=auth, headers=headers,
                     verify=node.api.verify, timeout=(2, 10))
    return r


def metrics_of(node, **kw):
    r = scrape(node, **kw)
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
    return parse(r.text)


def value(fams, family, sample=None, **labels):
    for name, lab, v in fams[family]["samples"]:
        if name == (sample or family) and all(lab.get(k) == x for k, x in labels.items()):
            return v
    raise KeyError((family, sample, labels))


EXPECTED_FAMILIES = {
    "vigil_node_info": "gauge", "vigil_raft_role": "gauge", "vigil_raft_term": "gauge",
    "vigil_raft_leader_id": "gauge", "vigil_raft_commit_index": "gauge",
    "vigil_raft_applied_index": "gauge", "vigil_raft_log_entries": "gauge",
    "vigil_raft_log_bytes": "gauge", "vigil_cluster_status": "gauge",
    "vigil_se_sessions": "gauge", "vigil_raft_proposals_total": "counter",
    "vigil_raft_leader_changes_total": "counter", "vigil_api_auth_failures_total": "counter",
    "vigil_events_recorded_total": "counter", "vigil_api_requests_total": "counter",
    "vigil_write_duration_seconds": "histogram", "vigil_fsm_apply_duration_seconds": "histogram",
    "vigil_snapshot_take_duration_seconds": "histogram",
    "vigil_snapshot_restore_duration_seconds": "histogram",
}


def test_every_node_serves_metrics_and_counters_move_with_writes(cluster_factory):
    cluster = cluster_factory(3)
    leader = cluster.leader()
    leader_id = leader.id
    before = {n.id: metrics_of(n) for n in cluster.nodes}
    for node_id, fams in before.items():
        for family, kind in EXPECTED_FAMILIES.items():
            assert fams.get(family, {}).get("type") == kind, (node_id, family)
        assert value(fams, "vigil_node_info")  == 1
        assert value(fams, "vigil_raft_leader_id") == leader_id
        roles = {lab["role"]: v for _, lab, v in fams["vigil_raft_role"]["samples"]}
        assert sum(roles.values()) == 1, roles
        assert roles["leader" if node_id == leader_id else "follower"] == 1, (node_id, roles)
        statuses = [v for _, _, v in fams["vigil_cluster_status"]["samples"]]
        assert sorted(statuses) == [0] * (len(statuses) - 1) + [1]
        assert value(fams, "vigil_raft_leader_changes_total") >= 1
        assert value(fams, "vigil_events_recorded_total") >= 1

    acked, failed = write_many(leader.api, [f"metrics-{i:03d}" for i in range(40)])
    assert not failed, failed
    top = max(n.api.get("/api/cluster/runtime")[1]["node_states"][0]["applied_index"]
              for n in cluster.nodes)

    def caught_up():
        return all(value(metrics_of(n), "vigil_raft_applied_index") >= top
                   for n in cluster.nodes)
    harness.wait_until(caught_up, 20, "every node's applied index to reach the writes")
    after = {n.id: metrics_of(n) for n in cluster.nodes}
    lb, la = before[leader_id], after[leader_id]
    committed = (value(la, "vigil_raft_proposals_total", outcome="committed")
                 - value(lb, "vigil_raft_proposals_total", outcome="committed"))
    assert committed >= len(acked), committed
    writes = (value(la, "vigil_write_duration_seconds", "vigil_write_duration_seconds_count")
              - value(lb, "vigil_write_duration_seconds", "vigil_write_duration_seconds_count"))
    assert writes >= len(acked), writes
    created = value(la, "vigil_api_requests_total", path_class="objects", code="201")
    assert created >= len(acked), created
    for node_id in after:
        b, a = before[node_id], after[node_id]
        for gauge in ("vigil_raft_commit_index", "vigil_raft_applied_index"):
            assert value(a, gauge) >= value(b, gauge) + 1, (node_id, gauge)
        applies = "vigil_fsm_apply_duration_seconds"
        assert value(a, applies, applies + "_count") > value(b, applies, applies + "_count")
        assert value(a, "vigil_raft_log_bytes") > 0


def test_metrics_refuse_unauthenticated_and_allow_read_only(cluster_factory):
    node = cluster_factory(1).nodes[0]
    r = scrape(node, auth=False)
    # requests' auth=False sends none; check by hand that no Authorization went out
    assert r.request.headers.get("Authorization") is None
    assert r.status_code == 401, r.status_code
    assert scrape(node, auth=("admin", "wrong-password-x")).status_code == 401
    failures = value(metrics_of(node), "vigil_api_auth_failures_total", reason="unauthenticated")
    assert failures >= 2, failures

    status, doc = node.api.post("/api/user", {"username": "prom", "password": "prom-password-1",
                                              "role": "read-only"})
    assert status in (200, 201), (status, doc)
    fams = metrics_of(node, auth=("prom", "prom-password-1"))
    assert value(fams, "vigil_api_requests_total", path_class="metrics", code="401") >= 2

    s = requests.Session()
    s.auth = ("prom", "prom-password-1")
    r = s.post(f"{node.api.base}/api/token", json={"description": "prometheus"},
               verify=node.api.verify, timeout=(2, 10))
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    fams = metrics_of(node, auth=False, headers={"Authorization": f"Bearer {token}"})
    assert value(fams, "vigil_raft_role", role="leader") == 1
    r = requests.post(f"{node.api.base}/metrics", auth=node.api.auth, verify=node.api.verify,
                      timeout=(2, 10))
    assert r.status_code in (403, 405), r.status_code
