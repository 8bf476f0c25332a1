"""The cluster IP follows the leader (issue 7), on the namespace test bed: three
controller hosts and a client host on one bridge, vigild started with
`--vip 198.18.0.100/24 --vip-dev eth0 --api 0.0.0.0:8080`.

Times from the fault to the VIP on the new leader, to the client's neighbour entry naming
the new leader (gratuitous ARP) and to the client's first answer from the new leader are
printed in the "cluster IP measurements" section at the end of the run.
"""

import time

import pytest

from harness import ROLE_FOLLOWER
from testbed import NetnsNode, wait_for
from vip_helpers import (ELECTION_TIMEOUT_S, FAILOVER_DEADLINE_S, VIP, VIP_CIDR, VipBed,
                         VipSampler, record_measurement)


@pytest.fixture
def vip_bed(testbed, tmp_path):
    vb = VipBed(testbed, tmp_path / "cluster")
    vb.start()
    return vb


def client_sees(vb, node):
    """The client reaches NODE on the VIP, and its neighbour entry names NODE's MAC."""
    vb.wait_client_reaches(node)
    vb.wait_client_mac(node)


def wait_follower_of(vb, node, leader, timeout=30.0):
    """NODE answers and names LEADER as leader, with itself a follower."""
    def ok():
        rt = vb.view(node)
        if rt is None or rt.get("leader_id") != leader.id:
            return False
        own = node.own_state(rt) or {}
        return own.get("role", ROLE_FOLLOWER) == ROLE_FOLLOWER
    return wait_for(ok, timeout, f"node {node.id} to follow node {leader.id}", interval=0.1)


def failover(vb, how):
    """Takes the leader away (HOW: "reboot" = host power off, "stop" = SIGTERM), checks
    that the VIP moves to the new leader, that the client's neighbour entry follows
    (gratuitous ARP, no client traffic meanwhile) and that the client's curl answers from
    the new leader; brings the old leader back and checks it follows and does not take
    the VIP back. At no sampled moment two live quorum-holding nodes hold the VIP."""
    old = vb.wait_vip_on_leader()
    client_sees(vb, old)
    others = [n for n in vb.nodes if n is not old]
    sampler = VipSampler(vb).start()
    try:
        time.sleep(0.3)  # a few samples of the steady state
        t0 = time.monotonic()
        if how == "reboot":
            vb.bed.power_off(old.host)
        else:
            assert old.term() == 0, f"node {old.id} exit status after SIGTERM"
            assert not old.host.has_address(VIP), "a cleanly stopped leader kept the VIP"
        new = vb.wait_vip_on_leader(candidates=others)
        t_vip = time.monotonic() - t0
        # Gratuitous ARP: the client's entry moves before the client sends anything.
        vb.wait_client_mac(new)
        t_arp = time.monotonic() - t0
        vb.wait_client_reaches(new)
        t_curl = time.monotonic() - t0
        record_measurement(f"leader {how}: VIP on the new leader", t_vip)
        record_measurement(f"leader {how}: client's ARP entry names the new leader", t_arp)
        record_measurement(f"leader {how}: client's curl to VIP answered by the new leader",
                           t_curl)
        assert t_vip >= ELECTION_TIMEOUT_S, \
            f"VIP taken {t_vip:.3f}s after the fault: before one election timeout"

        # The old leader comes back as a follower and leaves the VIP alone.
        if how == "reboot":
            vb.bed.power_on(old.host)
        else:
            old.start(wait=False)
        old.wait_healthy(30)
        wait_follower_of(vb, old, new)
        vb.assert_only_holder_for(new, 3 * ELECTION_TIMEOUT_S + 1.0)
        assert vb.leads(new), f"node {new.id} no longer leads"
        client_sees(vb, new)
    finally:
        sampler.stop()
    sampler.assert_never_two()
    return old, new


def test_leader_host_reboot_moves_vip(vip_bed):
    failover(vip_bed, "reboot")


def test_leader_clean_stop_moves_vip(vip_bed):
    failover(vip_bed, "stop")


def test_twice_in_a_row(vip_bed):
    """The VIP keeps following: a reboot, then a clean stop of the next leader."""
    failover(vip_bed, "reboot")
    failover(vip_bed, "stop")


def test_isolated_leader_drops_vip(vip_bed):
    """A leader cut off from both followers drops the VIP once it steps down, before the
    majority's new leader takes it; after healing it follows and leaves the VIP alone."""
    vb = vip_bed
    old = vb.wait_vip_on_leader()
    others = [n for n in vb.nodes if n is not old]
    sampler = VipSampler(vb).start()
    try:
        time.sleep(0.3)
        t0 = time.monotonic()
        vb.bed.isolate(old.host)
        wait_for(lambda: not old.host.has_address(VIP), FAILOVER_DEADLINE_S,
                 f"isolated node {old.id} to drop the VIP")
        t_drop = time.monotonic() - t0
        new = vb.wait_vip_on_leader(candidates=others)
        t_new = time.monotonic() - t0
        record_measurement("isolated leader: VIP dropped by the isolated leader", t_drop)
        record_measurement("isolated leader: VIP on the majority's new leader", t_new)
        # It dropped it because it lost its majority: it no longer leads with quorum.
        wait_for(lambda: not vb.leads(old) or not old.host.has_address(VIP), 10,
                 "the isolated node to step down")
        vb.bed.heal()
        wait_follower_of(vb, old, new, timeout=60)
        vb.assert_only_holder_for(new, 3 * ELECTION_TIMEOUT_S + 1.0)
        client_sees(vb, new)
    finally:
        sampler.stop()
    sampler.assert_never_two()
    # Stronger than the rule: the isolated node had dropped it before anyone took it.
    dropped = sampler.first_time(lambda r: not r[old.id][1], since=t0)
    taken = sampler.first_time(lambda r: any(r[n.id][1] for n in others), since=t0)
    assert dropped is not None and taken is not None
    assert dropped <= taken, (f"the new leader took the VIP {dropped - taken:.3f}s before "
                              f"the isolated leader dropped it")


def test_follower_reboot_keeps_vip_on_leader(vip_bed):
    vb = vip_bed
    leader = vb.wait_vip_on_leader()
    follower = next(n for n in vb.nodes if n is not leader)
    sampler = VipSampler(vb).start()
    try:
        vb.bed.reboot(follower.host, down_s=3 * ELECTION_TIMEOUT_S)
        follower.wait_healthy(30)
        wait_follower_of(vb, follower, leader)
        assert vb.wait_vip_on_leader() is leader
        vb.assert_only_holder_for(leader, 1.0)
        client_sees(vb, leader)
    finally:
        sampler.stop()
    sampler.assert_never_two()
    # The VIP never left the leader.
    assert all(dict((nid, h) for nid, _, h in row)[leader.id] for _, row in sampler.samples)


def test_all_nodes_reboot(vip_bed):
    vb = vip_bed
    vb.wait_vip_on_leader()
    sampler = VipSampler(vb).start()
    try:
        for host in vb.hosts:
            vb.bed.power_off(host)
        time.sleep(3 * ELECTION_TIMEOUT_S)
        t0 = time.monotonic()
        for host in vb.hosts:
            vb.bed.power_on(host)
        leader = vb.wait_vip_on_leader(timeout=60)
        record_measurement("all nodes rebooted: VIP on the leader after power on",
                           time.monotonic() - t0)
        for node in vb.nodes:
            if node is not leader:
                wait_follower_of(vb, node, leader)
        vb.assert_only_holder_for(leader, 1.0)
        client_sees(vb, leader)
    finally:
        sampler.stop()
    sampler.assert_never_two()


def test_crashed_leader_removes_stale_vip_at_start(vip_bed):
    """kill -9 of the leader's vigild alone (the host stays up): the address stays on its
    device until vigild starts again, which removes it before it knows any leader."""
    vb = vip_bed
    old = vb.wait_vip_on_leader()
    others = [n for n in vb.nodes if n is not old]
    old.kill9()
    assert old.host.has_address(VIP), "the crash itself should leave the address behind"
    new = vb.wait_vip_on_leader(candidates=others)
    old.start(wait=False)
    wait_for(lambda: not old.host.has_address(VIP), 10,
             f"restarted node {old.id} to remove its stale copy of the VIP")
    old.wait_healthy(30)
    wait_follower_of(vb, old, new)
    vb.assert_only_holder_for(new, 1.0)
    client_sees(vb, new)


# --- a node that cannot manage the address keeps working ----------------------------------

def single_node(testbed, tmp_path, flags, wrap=()):
    host = testbed.add_host("ctl1", "controller")
    node = NetnsNode(testbed.registry, 1, tmp_path / "node1", host, extra_flags=flags)
    if wrap:
        base_args = node.args
        node.args = lambda: host.argv(list(wrap) + base_args()[4:])
    node.start(wait=True)
    wait_for(lambda: node.api.get("/api/cluster")[0] == 200, 20, "/api/cluster to answer")
    return host, node


def error_lines(node, needle):
    text = node.stderr_path.read_text(errors="replace")
    return [line for line in text.splitlines()
            if needle in line and not line.startswith("==== start")]


def test_missing_device_is_one_clear_error(testbed, tmp_path):
    host, node = single_node(testbed, tmp_path, ["--vip", VIP_CIDR, "--vip-dev", "nosuch0"])
    status, doc = node.api.get("/api/cluster")
    assert status == 200 and doc["virtual_ip"] == VIP_CIDR
    wait_for(lambda: error_lines(node, "nosuch0"), 5, "the error line")
    time.sleep(1.0)
    lines = error_lines(node, "nosuch0")
    assert len(lines) == 1 and "no such network device" in lines[0], lines
    assert not host.has_address(VIP)


def test_missing_cap_net_admin_is_one_clear_error(testbed, tmp_path):
    # Dropped from the bounding set, root's execve no longer gets CAP_NET_ADMIN.
    wrap = ["setpriv", "--bounding-set", "-net_admin", "--inh-caps", "-net_admin", "--"]
    host, node = single_node(testbed, tmp_path, ["--vip", VIP_CIDR, "--vip-dev", "eth0"],
                             wrap=wrap)
    status, doc = node.api.get("/api/cluster")
    assert status == 200 and doc["virtual_ip"] == VIP_CIDR
    wait_for(lambda: error_lines(node, "CAP_NET_ADMIN"), 5, "the error line")
    time.sleep(1.0)
    assert len(error_lines(node, "CAP_NET_ADMIN")) == 1
    assert not host.has_address(VIP)
    # The rest works: a write commits.
    status, doc = node.api.post("/api/healthmonitor", {
        "name": "hm1", "type": "HEALTH_MONITOR_TCP", "send_interval": 5,
        "receive_timeout": 4, "successful_checks": 2, "failed_checks": 2})
    assert status == 201, doc


def test_single_node_holds_vip_and_releases_on_stop(testbed, tmp_path):
    host, node = single_node(testbed, tmp_path, ["--vip", VIP_CIDR, "--vip-dev", "eth0"])
    wait_for(lambda: host.has_address(VIP), 10, "the one-node leader to take the VIP")
    assert node.term() == 0
    assert not host.has_address(VIP)


def test_bad_vip_flag_is_refused(testbed, tmp_path):
    host = testbed.add_host("ctl1", "controller")
    node = NetnsNode(testbed.registry, 1, tmp_path / "node1", host,
                     extra_flags=["--vip", "198.18.0.300/24", "--vip-dev", "eth0"])
    node.start(wait=False)
    assert node.proc.wait(timeout=20) == 2
    assert "--vip" in node.stderr_tail()
