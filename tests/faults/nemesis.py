"""The nemesis: a schedule of faults drawn from a seed, and the thread that applies them to
the test bed's controller hosts, healing each before the next.

make_schedule(seed, seconds) is a pure function of its arguments: the same seed gives the
same list of faults (kind, when, how long, which role it aims at). Which node is the leader
at that moment is the run's, so the node a "leader" fault hits is resolved when it runs and
recorded in the fault log.

Kinds:
  isolate      one node's cable cut (the leader or a follower)
  partition    one node alone on a bridge of its own, the other two on another
  flap         a node cut and reconnected every 0.3-1 s
  kill9        SIGKILL, down 1-4 s, started again with its data dir
  kill9-two    two nodes SIGKILLed (no quorum), down 1-3 s
  pause        SIGSTOP for 2-6 s, then SIGCONT
  term         SIGTERM (a leader hands over first), down 1-3 s, started again
  netem        tc netem on one node's or every node's eth0: loss, or delay with jitter
               (which reorders); without netem in the kernel, see impair()
  slow-disk    the node restarted (SIGTERM) with the test build's --test-apply-delay-ms
               (its log appends complete that much later), then restarted without it
  bridge       two nodes cannot reach each other, the third reaches both (nftables rules
               in the two ends' namespaces); the aimed node is one of the two ends
  kill9-snapshot  SIGKILL the moment a new snapshot file appears in the node's raft dir
               (one it takes, or one the leader installs), watched for up to the fault's
               duration (killed at its end if none came), down 1-2 s
"""

import random
import threading

from harness import HarnessError

KINDS = {"isolate": 3, "partition": 2, "flap": 1, "kill9": 2, "kill9-two": 1, "pause": 2,
         "term": 2, "netem": 2, "slow-disk": 1, "kill9-snapshot": 1, "bridge": 1}


def make_schedule(seed, seconds, kinds=None):
    """[{"kind", "at", "duration", "aim", "pick", "params"}] covering SECONDS from the start
    (the last fault ends by then). AIM is "leader", "follower" or "any"; PICK a number in
    [0, 1) that chooses among the candidates at run time."""
    rng = random.Random(seed)
    weights = kinds or KINDS
    names = sorted(weights)
    schedule, t = [], 2.0 + rng.random() * 2
    while True:
        kind = rng.choices(names, weights=[weights[n] for n in names])[0]
        duration = round(rng.uniform(2.0, 8.0), 2)
        gap = round(rng.uniform(2.0, 5.0), 2)
        if t + duration + gap > seconds:
            return schedule
        params = {}
        if kind == "netem":
            params = ({"loss": rng.choice([10, 20, 30])} if rng.random() < 0.5 else
                      {"delay": rng.choice([30, 80, 150]), "jitter": rng.choice([10, 40])})
            params["all"] = rng.random() < 0.4
        elif kind in ("kill9", "kill9-two", "term"):
            duration = round(rng.uniform(1.0, 4.0), 2)
        elif kind == "kill9-snapshot":
            params = {"down": round(rng.uniform(1.0, 2.0), 2)}
        elif kind == "bridge":
            params = {"other": rng.randrange(2)}
        elif kind == "flap":
            params = {"period": round(rng.uniform(0.3, 1.0), 2)}
        elif kind == "slow-disk":
            params = {"ms": rng.choice([20, 80, 200])}
        schedule.append({"kind": kind, "at": round(t, 2), "duration": duration,
                         "aim": rng.choice(["leader", "follower", "any"]),
                         "pick": rng.random(), "params": params})
        t += duration + gap


# Packet loss and delay. `tc netem` when the kernel has it (CONFIG_NET_SCH_NETEM); without
# it (some VM kernels), loss is an nftables rule dropping that share of the packets at
# random both ways, and delay is a tbf rate limit (queueing delay; no reordering).
NFT_TABLE = "vigil_fault"
TBF_SLOW = ["tbf", "rate", "256kbit", "burst", "16kb", "latency", "400ms"]
_netem_works = {}


def _has_netem(host):
    if "ok" not in _netem_works:
        probe = host.run(["tc", "qdisc", "replace", "dev", "lo", "root", "netem", "delay",
                          "1ms"], check=False)
        _netem_works["ok"] = probe.returncode == 0
        host.run(["tc", "qdisc", "del", "dev", "lo", "root"], check=False)
    return _netem_works["ok"]


def impair(host, params):
    """Loss or delay on HOST's eth0 as PARAMS say; returns the mechanism used."""
    if _has_netem(host):
        spec = (["loss", f"{params['loss']}%"] if "loss" in params else
                ["delay", f"{params['delay']}ms", f"{params['jitter']}ms"])
        host.run(["tc", "qdisc", "replace", "dev", "eth0", "root", "netem", *spec])
        return "netem"
    if "loss" in params:
        host.run(["nft", "add", "table", "inet", NFT_TABLE])
        for chain, hook, dev in (("in", "input", "iifname"), ("out", "output", "oifname")):
            host.run(["nft", "add", "chain", "inet", NFT_TABLE, chain,
                      f"{{ type filter hook {hook} priority 0 ; }}"])
            host.run(["nft", "add", "rule", "inet", NFT_TABLE, chain, dev, "eth0", "numgen",
                      "random", "mod", "100", "<", str(int(params["loss"])), "drop"])
        return "nftables"
    host.run(["tc", "qdisc", "replace", "dev", "eth0", "root", *TBF_SLOW])
    return "tbf"


def unimpair(host):
    host.run(["tc", "qdisc", "del", "dev", "eth0", "root"], check=False)
    host.run(["nft", "delete", "table", "inet", NFT_TABLE], check=False)
    host.run(["nft", "delete", "table", "inet", NFT_BRIDGE_TABLE], check=False)


NFT_BRIDGE_TABLE = "vigil_fault_bridge"


def cut_pair(host, other_ip):
    """HOST drops every packet to and from OTHER_IP (one end of a bridge partition)."""
    host.run(["nft", "add", "table", "inet", NFT_BRIDGE_TABLE])
    for chain, hook, match in (("in", "input", "saddr"), ("out", "output", "daddr")):
        host.run(["nft", "add", "chain", "inet", NFT_BRIDGE_TABLE, chain,
                  f"{{ type filter hook {hook} priority 0 ; }}"])
        host.run(["nft", "add", "rule", "inet", NFT_BRIDGE_TABLE, chain, "ip", match, other_ip,
                  "drop"])


class Nemesis:
    """Applies SCHEDULE to the cluster's nodes (testbed NetnsNodes with .host) on BED. The
    log (self.faults) keeps for each fault its kind, targets, start, heal and what it
    measured. `connected_at` tells which nodes were in a connected majority at a time."""

    def __init__(self, bed, nodes, schedule, now, stop, leader_hint, measure_rejoin):
        self.bed = bed
        self.leader_hint = leader_hint          # () -> the leader's id or None
        self.measure_rejoin = measure_rejoin    # (node, since) -> seconds or None
        self.nodes = nodes
        self.schedule = schedule
        self.now = now
        self.stop = stop
        self.faults = []
        self.errors = []
        self.timeline = [(0.0, frozenset(n.id for n in nodes))]   # (time, majority ids)
        self._cut = set()          # isolated node ids
        self._groups = []          # partition groups (sets of ids)
        self._down = set()         # paused or stopped
        self._netem = set()
        self._current = None       # the fault being applied (its start is set by _note)
        self.thread = None

    # the majority timeline ----------------------------------------------------------------
    def _note(self):
        up = {n.id for n in self.nodes} - self._down
        comps = [set(g) & up for g in self._groups]
        rest = up - self._cut - set().union(*self._groups) if self._groups else up - self._cut
        comps.append(rest)
        major = next((c for c in comps if len(c) * 2 > len(self.nodes)), set())
        now = self.now()
        self.timeline.append((now, frozenset(major)))
        if self._current is not None and "start" not in self._current:
            self._current["start"] = now      # the moment the fault took effect

    def connected_at(self, t):
        """The ids of the nodes in a connected majority at time T."""
        ids = self.timeline[0][1]
        for when, major in self.timeline:
            if when > t:
                break
            ids = major
        return ids

    # running -----------------------------------------------------------------------------
    def start(self):
        self.thread = threading.Thread(target=self._run, name="nemesis", daemon=True)
        self.thread.start()

    def join(self, timeout):
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self):
        for fault in self.schedule:
            if self.stop.wait(max(0.0, fault["at"] - self.now())):
                return
            try:
                self._apply(fault)
            except Exception as exc:  # noqa: BLE001 - kept, healed, and reported
                self.errors.append(f"{fault['kind']} at {fault['at']}: {exc!r}")
                self.heal_all()

    def _leader_id(self):
        """The leader as the monitor's last samples name it (None when unknown)."""
        return self.leader_hint()

    def _targets(self, fault, count=1):
        ids = [n.id for n in self.nodes if n.running and not n.paused]
        leader = self._leader_id()
        if fault["aim"] == "leader" and leader in ids:
            first = [leader]
        elif fault["aim"] == "follower" and leader in ids and len(ids) > 1:
            others = [i for i in ids if i != leader]
            first = [others[int(fault["pick"] * len(others))]]
        else:
            first = [ids[int(fault["pick"] * len(ids))]] if ids else []
        rest = [i for i in ids if i not in first]
        rng = random.Random(fault["pick"])
        rng.shuffle(rest)
        return [self._node(i) for i in (first + rest)[:count]]

    def _node(self, node_id):
        return next(n for n in self.nodes if n.id == node_id)

    def _apply(self, fault):
        kind, dur = fault["kind"], fault["duration"]
        victims = self._targets(fault, 2 if kind == "kill9-two" else 1)
        if not victims:
            return
        entry = {"kind": kind, "at": fault["at"], "targets": [v.id for v in victims],
                 "leader_before": self._leader_id(), "params": fault["params"]}
        self.faults.append(entry)
        self._current = entry
        try:
            getattr(self, "_do_" + kind.replace("-", "_"))(victims, dur, fault["params"])
        finally:
            self._current = None
        entry["healed"] = self.now()
        if kind in ("isolate", "partition", "flap"):
            entry["rejoin_s"] = self.measure_rejoin(victims[0], entry["healed"])

    def _hold(self, seconds):
        self.stop.wait(seconds)

    # the faults -------------------------------------------------------------------------
    def _do_isolate(self, victims, dur, params):
        self.bed.isolate(victims[0].host)
        self._cut.add(victims[0].id)
        self._note()
        self._hold(dur)
        self._heal_network()

    def _do_partition(self, victims, dur, params):
        alone = victims[0]
        others = [n for n in self.nodes if n is not alone]
        self.bed.partition([alone.host], [n.host for n in others])
        self._groups = [{alone.id}, {n.id for n in others}]
        self._note()
        self._hold(dur)
        self._heal_network()

    def _do_flap(self, victims, dur, params):
        end = self.now() + dur
        cut = False
        while self.now() < end and not self.stop.is_set():
            if cut:
                self._heal_network()
            else:
                self.bed.isolate(victims[0].host)
                self._cut.add(victims[0].id)
                self._note()
            cut = not cut
            self._hold(params["period"])
        self._heal_network()

    def _do_kill9(self, victims, dur, params):
        for v in victims:
            v.kill9()
            self._down.add(v.id)
        self._note()
        self._hold(dur)
        for v in victims:
            self._start(v)

    _do_kill9_two = _do_kill9

    def _do_pause(self, victims, dur, params):
        victims[0].pause()
        self._down.add(victims[0].id)
        self._note()
        self._hold(dur)
        victims[0].resume()
        self._down.discard(victims[0].id)
        self._note()

    def _do_term(self, victims, dur, params):
        v = victims[0]
        self._down.add(v.id)
        self._note()
        rc = v.term(deadline=15.0)
        if rc != 0:
            self.errors.append(f"node {v.id} exited {rc} on SIGTERM")
        self._hold(dur)
        self._start(v)

    def _do_netem(self, victims, dur, params):
        hosts = [n for n in self.nodes] if params.get("all") else victims
        for n in hosts:
            params["impl"] = impair(n.host, params)
            self._netem.add(n.id)
        self._note()
        self._hold(dur)
        self._clear_netem()

    def _do_bridge(self, victims, dur, params):
        a = victims[0]
        others = [n for n in self.nodes if n is not a]
        c = others[int(params.get("other", 0)) % len(others)]
        params["ends"] = [a.id, c.id]
        cut_pair(a.host, c.host.ip)
        cut_pair(c.host, a.host.ip)
        self._netem.update({a.id, c.id})   # healed by _clear_netem (unimpair)
        self._note()                        # every node still has a majority with the middle
        self._hold(dur)
        self._clear_netem()

    def _do_kill9_snapshot(self, victims, dur, params):
        v = victims[0]
        raft_dir = v.data_dir / "raft"

        def snapshots():
            try:
                return {p.name for p in raft_dir.iterdir() if p.name.startswith("snapshot-")}
            except OSError:
                return set()
        before, end = snapshots(), self.now() + dur
        params["snapshot_seen"] = False
        while self.now() < end and not self.stop.is_set():
            if snapshots() - before:
                params["snapshot_seen"] = True
                break
            self.stop.wait(0.005)
        self._do_kill9(victims, params["down"], params)

    def _do_slow_disk(self, victims, dur, params):
        v = victims[0]
        self._restart_with(v, ["--test-apply-delay-ms", str(params["ms"])])
        self._hold(dur)
        self._restart_with(v, [])

    def _restart_with(self, node, flags):
        """A clean stop, and a start with the node's own flags plus FLAGS."""
        if not hasattr(node, "base_flags"):
            node.base_flags = list(node.extra_flags)
        self._down.add(node.id)
        self._note()
        rc = node.term(deadline=15.0)
        if rc != 0:
            self.errors.append(f"node {node.id} exited {rc} on SIGTERM")
        node.extra_flags = node.base_flags + list(flags)
        self._start(node)

    # healing ------------------------------------------------------------------------------
    def _start(self, node):
        if not node.running:
            node.start(wait=False)
        self._down.discard(node.id)
        self._note()

    def _heal_network(self):
        self.bed.heal()
        self._cut.clear()
        self._groups = []
        self._note()

    def _clear_netem(self, every=False):
        for n in self.nodes:
            if every or n.id in self._netem:
                unimpair(n.host)
        self._netem.clear()

    def heal_all(self):
        """Every fault undone: links, netem, paused and stopped nodes."""
        self._heal_network()
        self._clear_netem(every=True)
        for n in self.nodes:
            if n.paused:
                n.resume()
            if getattr(n, "base_flags", None) is not None and n.extra_flags != n.base_flags:
                self._restart_with(n, [])
            if not n.running:
                try:
                    n.start(wait=False)
                except HarnessError as exc:
                    self.errors.append(f"restart of node {n.id}: {exc}")
        self._down.clear()
        self._note()
