"""Issue 14: the dashboard end to end in headless Chromium (Debian's /usr/bin/chromium,
driven by playwright-core from ui/node_modules: tests/ui/dashboard.mjs) against real vigild
processes over TLS, as users run them. Each scenario fails on any console error of the
page. Screenshots are kept in build-test/ui-artifacts/ (the README's is from `failover`).

- failover: log in on a follower, see three nodes and the leader; kill -9 the leader; with
  no reload, the banner names the new leader and 2/3, the old leader's row goes inactive,
  the status strip shows the failover, and the timeline gets CONTROLLER_NODE_LEFT and
  CONTROLLER_LEADER_FAILOVER (its type filter and search work on them);
- readonly: a read-only user sees no write controls on any page;
- crud: a create with a bad field shows the API's message next to that field; a good one
  is listed; delete removes it;
- ownnode: the node the page talks to dies: its data is marked stale, the other nodes are
  offered, and a link opens a live dashboard on one of them;
- small: a phone-sized screen has no horizontal scrolling; the keyboard reaches the nav.

Run: /usr/bin/python3 -m pytest tests/system/test_ui_browser.py
"""

import harness
from cluster_helpers import three_nodes
from ui_helpers import needs_browser, run_scenario

pytestmark = needs_browser


def test_failover_seen_live_without_reload(cluster_factory, tmp_path):
    cluster = three_nodes(cluster_factory)
    leader = next(n for n in cluster.nodes if n.runtime()["leader_id"] == n.id)
    follower = next(n for n in cluster.nodes if n is not leader)
    out = run_scenario("failover", follower, tmp_path, leader_pid=leader.pid,
                       leader_name=leader.name, names=[n.name for n in cluster.nodes])
    assert "new leader" in out and "failover: passed" in out


def test_read_only_user_sees_no_write_controls(cluster_factory, tmp_path):
    cluster = three_nodes(cluster_factory)
    node = cluster.nodes[0]
    status, body = node.api.post("/api/user", {"username": "viewer", "password": "viewer-pass-1",
                                               "role": "read-only"})
    assert status == 201, (status, body)
    status, body = node.api.post("/api/pool", harness.pool_body("seen-pool"))
    assert status == 201, (status, body)
    out = run_scenario("readonly", node, tmp_path, username="viewer", password="viewer-pass-1",
                       expect_pool="seen-pool")
    assert "pools: 1 object(s) listed, no write controls" in out


def test_create_with_bad_field_shows_the_api_message(cluster_factory, tmp_path):
    cluster = three_nodes(cluster_factory)
    out = run_scenario("crud", cluster.nodes[1], tmp_path)
    assert "servers field says: servers[0].port" in out


def test_own_node_down_marks_data_stale_and_offers_the_others(cluster_factory, tmp_path):
    cluster = three_nodes(cluster_factory)
    own = cluster.nodes[0]
    others = [n.name for n in cluster.nodes if n is not own]
    out = run_scenario("ownnode", own, tmp_path, own_pid=own.pid, own_name=own.name,
                       other_names=others)
    assert f"live again via {others[0]}" in out


def test_phone_screen_and_keyboard(cluster_factory, tmp_path):
    cluster = three_nodes(cluster_factory)
    out = run_scenario("small", cluster.nodes[2], tmp_path)
    assert "no horizontal scrolling" in out and "Enter opens it" in out
