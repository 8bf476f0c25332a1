"""vigil-se with --controllers against fake controllers (fake_controller.py, paramiko):
startup checks, host keys, HELLO / WELCOME / CONFIG / CONFIG_ACK, config push under load,
heartbeats and the SE states, the last good config after a restart, two controllers."""
import json
import os
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import free_port, http_config, se_binary, wait_for
from fake_controller import BYE, CONFIG_ACK, HEARTBEAT, HELLO, FakeController, make_key

HEARTBEAT_MS = 200
MISS_LIMIT = 3


class ChannelSE:
    """A vigil-se process in controller mode."""

    def __init__(self, procs, tmp_path, key_path, known_hosts, controllers, name="se-1",
                 heartbeat_ms=HEARTBEAT_MS, extra=()):
        self.procs = procs
        self.extra = list(extra)
        self.dir = tmp_path / "se-data"
        self.admin_port = free_port()
        self.name = name
        self.key_path = key_path
        self.known_hosts = known_hosts
        self.controllers = controllers
        self.heartbeat_ms = heartbeat_ms
        self.log_path = tmp_path / "se-log.txt"
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = self.procs.start(
            [se_binary(), "--name", self.name, "--data-dir", str(self.dir), "--admin",
             "127.0.0.1:%d" % self.admin_port, "--controllers", ",".join(self.controllers),
             "--key", str(self.key_path), "--known-hosts", str(self.known_hosts),
             "--heartbeat-ms", str(self.heartbeat_ms), "--miss-limit", str(MISS_LIMIT)]
            + self.extra,
            stdout=self.log, stderr=self.log)
        wait_for(lambda: self.status()["state"], 10, "SE admin /status")
        return self

    def stop(self):
        self.proc.stop()
        self.log.close()

    def status(self):
        with requests.get("http://127.0.0.1:%d/status" % self.admin_port, timeout=2) as r:
            return r.json()

    def state(self):
        return self.status()["state"]

    def log_text(self):
        return self.log_path.read_text(errors="replace")


def cpu_seconds(pid):
    """User + system CPU time of process PID so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_known_hosts(tmp_path, *lines):
    path = tmp_path / "known_hosts"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def config_payload(version, cfg):
    out = dict(cfg)
    out["config_version"] = version
    return out


def acks(fake, version):
    return [a for a in fake.frames(CONFIG_ACK) if a.get("config_version") == version]


def one_controller(procs, tmp_path, se_key, fakes, version, cfg, extra=()):
    """A fake controller (node 1) that pushes CFG as VERSION, and an SE connecting to it
    (with the flags EXTRA too)."""
    key, pub = se_key
    fake = FakeController(tmp_path, 1, "se-1", pub)
    fakes.append(fake)
    fake.config = config_payload(version, cfg)
    kh = write_known_hosts(tmp_path, fake.known_hosts_line())
    se = ChannelSE(procs, tmp_path, key, kh, [fake.address], extra=extra).start()
    return fake, se


class Load:
    """Keep-alive GETs on PORTS in a thread; every failure is kept."""

    def __init__(self, ports):
        self.ports = ports
        self.ok = 0
        self.failures = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self):
        with requests.Session() as s:
            while not self.stop_event.is_set():
                for port in self.ports:
                    try:
                        r = s.get("http://127.0.0.1:%d/load" % port, timeout=5)
                        if r.status_code == 200:
                            self.ok += 1
                        else:
                            self.failures.append(r.status_code)
                    except requests.RequestException as exc:
                        self.failures.append(repr(exc))

    def wait_more(self, n=30, timeout=10):
        mark = self.ok
        wait_for(lambda: self.ok >= mark + n, timeout, "%d more requests served" % n)

    def stop(self):
        self.stop_event.set()
        self.thread.join(10)


def run_exit_2(tmp_path, key, known_hosts):
    r = subprocess.run([se_binary(), "--name", "se-1", "--data-dir", str(tmp_path / "d"),
                        "--admin", "127.0.0.1:%d" % free_port(), "--controllers",
                        "127.0.0.1:%d" % free_port(), "--key", str(key), "--known-hosts",
                        str(known_hosts)], capture_output=True, timeout=10)
    return r.returncode, r.stderr.decode()


def test_bad_key_or_known_hosts_exits_2_with_one_line(tmp_path, se_key):
    key, _ = se_key
    kh = write_known_hosts(tmp_path, "[127.0.0.1]:1 ssh-ed25519 AAAA")
    garbage = tmp_path / "garbage"
    garbage.write_text("not a key\n")
    rsa = tmp_path / "rsa-key"
    make_key(rsa, "rsa")
    cases = [(tmp_path / "missing", kh, "--key"), (garbage, kh, "--key"), (rsa, kh, "ed25519"),
             (key, tmp_path / "missing-kh", "--known-hosts"), (key, tmp_path, "--known-hosts")]
    for k, h, word in cases:
        rc, err = run_exit_2(tmp_path, k, h)
        assert rc == 2, (k, h, err)
        assert len(err.strip().splitlines()) == 1 and word in err, err


def test_unknown_or_changed_host_key_is_refused(procs, tmp_path, se_key, fakes):
    key, pub = se_key
    fake = FakeController(tmp_path, 1, "se-1", pub)
    fakes.append(fake)
    other = FakeController(tmp_path, 2, "se-1", pub)   # its host key under fake's address
    fakes.append(other)
    kh = write_known_hosts(tmp_path, "[127.0.0.1]:%d %s %s" % ((fake.port,) + tuple(other.host_pub)))
    se = ChannelSE(procs, tmp_path, key, kh, [fake.address]).start()
    wait_for(lambda: "host key refused: it CHANGED" in se.log_text(), 10, "changed key refused")
    kh.write_text("")
    wait_for(lambda: "host key refused: unknown" in se.log_text(), 15, "unknown key refused")
    assert se.state() == "CONNECTING"
    assert fake.frames(HELLO) == []
    c = se.status()["controllers"][0]
    assert not c["connected"] and "host key refused" in c["last_failure"]
    assert c["last_failure_time"]


def test_hello_welcome_config_served_and_acked(procs, tmp_path, se_key, fakes):
    backend_port, vs = free_port(), free_port()
    procs.backend("http", backend_port, "b1")
    fake, se = one_controller(procs, tmp_path, se_key, fakes, 7, http_config([backend_port], vs))
    wait_for(lambda: acks(fake, 7), 10, "CONFIG_ACK of version 7")
    assert acks(fake, 7)[0]["ok"] is True
    hello = fake.frames(HELLO)[0]
    assert hello["name"] == "se-1" and hello["config_version"] == 0
    assert hello["state"] == "CONNECTING" and hello["version"][0].isdigit()
    assert set(hello) >= {"name", "version", "config_version", "state", "log_seq"}
    # its own flags, which the nodes keep to for this session
    assert hello["heartbeat_ms"] == se.heartbeat_ms and hello["miss_limit"] == MISS_LIMIT, hello
    # generous deadlines: once failed at load average ~80 with 5 s ones
    r = requests.get("http://127.0.0.1:%d/x" % vs, timeout=20)
    assert r.status_code == 200 and r.headers["X-Backend"] == "b1"
    wait_for(lambda: se.state() == "CONNECTED", 20, "CONNECTED")
    st = se.status()
    assert st["config_version"] == 7
    c = st["controllers"][0]
    assert c["address"] == fake.address and c["connected"] is True and c["last_heartbeat"]
    saved = json.loads((se.dir / "controller-config.json").read_text())
    assert saved["config_version"] == 7
    se.stop()
    wait_for(lambda: fake.frames(BYE), 20, "BYE from the stopping SE")
    assert fake.frames(BYE)[0]["reason"]


def test_config_push_under_load_and_invalid_config_refused(procs, tmp_path, se_key, fakes):
    b1, vs1, vs2 = free_port(), free_port(), free_port()
    procs.backend("http", b1, "b1")
    cfg1 = http_config([b1], vs1)
    fake, se = one_controller(procs, tmp_path, se_key, fakes, 1, cfg1)
    wait_for(lambda: acks(fake, 1), 10, "CONFIG_ACK 1")
    load = Load([vs1])
    try:
        load.wait_more()
        cfg2 = json.loads(json.dumps(cfg1))
        cfg2["virtualservice"].append({"name": "second", "vip": "127.0.0.1",
                                       "services": [{"port": vs2}], "application": "http",
                                       "pool_ref": "pool-a"})
        fake.push(config_payload(2, cfg2))
        wait_for(lambda: acks(fake, 2), 10, "CONFIG_ACK 2")
        assert acks(fake, 2)[0]["ok"] is True
        assert requests.get("http://127.0.0.1:%d/" % vs2, timeout=5).status_code == 200
        load.wait_more()
        bad = json.loads(json.dumps(cfg2))
        bad["virtualservice"][0]["pool_ref"] = "no-such-pool"
        fake.push(config_payload(3, bad))
        wait_for(lambda: acks(fake, 3), 10, "CONFIG_ACK 3")
        ack = acks(fake, 3)[0]
        assert ack["ok"] is False and "no-such-pool" in ack["error"]
        load.wait_more()
        assert se.status()["config_version"] == 2
        assert requests.get("http://127.0.0.1:%d/" % vs2, timeout=5).status_code == 200
    finally:
        load.stop()
    assert load.failures == []


def test_states_follow_heartbeats_and_traffic_is_served(procs, tmp_path, se_key, fakes):
    b1, vs = free_port(), free_port()
    procs.backend("http", b1, "b1")
    fake, se = one_controller(procs, tmp_path, se_key, fakes, 1, http_config([b1], vs))
    wait_for(lambda: se.state() == "CONNECTED", 10, "CONNECTED")
    load = Load([vs])
    try:
        load.wait_more()
        fake.silent = True
        wait_for(lambda: se.state() == "HEADLESS", 10, "HEADLESS")
        log = se.log_text()
        assert "CONNECTED -> CONTROLLER_HEARTBEAT_FAILED" in log
        assert "CONTROLLER_HEARTBEAT_FAILED -> HEADLESS" in log
        load.wait_more()
        fake.silent = False
        wait_for(lambda: se.state() == "CONNECTED", 15, "CONNECTED again")
        assert "HEADLESS -> CONNECTED" in se.log_text()
        load.wait_more()
    finally:
        load.stop()
    assert load.failures == []
    assert load.ok > 0


def test_restarted_se_serves_last_good_config_before_any_controller(procs, tmp_path, se_key,
                                                                    fakes):
    _, pub = se_key
    b1, vs = free_port(), free_port()
    procs.backend("http", b1, "b1")
    fake, se = one_controller(procs, tmp_path, se_key, fakes, 5, http_config([b1], vs))
    wait_for(lambda: acks(fake, 5), 10, "CONFIG_ACK 5")
    se.stop()
    fake.stop()
    se = ChannelSE(procs, tmp_path, se.key_path, se.known_hosts, [fake.address]).start()
    wait_for(lambda: requests.get("http://127.0.0.1:%d/" % vs, timeout=2).status_code == 200,
             5, "the last good config served")
    st = se.status()
    assert st["config_version"] == 5 and st["state"] == "CONNECTING"
    # the node comes back: the SE says which config it serves, and nothing is applied again
    back = FakeController(tmp_path, 1, "se-1", pub, port=fake.port)
    fakes.append(back)
    back.config = fake.config
    wait_for(lambda: back.frames(HELLO), 15, "HELLO to the node that came back")
    assert back.frames(HELLO)[0]["config_version"] == 5
    wait_for(lambda: acks(back, 5), 10, "CONFIG_ACK 5")
    assert acks(back, 5)[0]["ok"] is True
    wait_for(lambda: se.state() == "CONNECTED", 5, "CONNECTED")
    assert se.log_text().count("configuration version 5 applied") == 2   # first run, restart


def test_two_controllers_one_going_away_keeps_connected(procs, tmp_path, se_key, fakes):
    """With heartbeats every second: the remaining controller (Python threads in this test
    process) must not miss 1.5 intervals on a loaded machine for "never left CONNECTED" to
    be about the one that went away."""
    key, pub = se_key
    hb = 1000
    a = FakeController(tmp_path, 1, "se-1", pub, heartbeat_ms=hb)
    b = FakeController(tmp_path, 2, "se-1", pub, heartbeat_ms=hb)
    fakes.extend([a, b])
    both = [{"node_id": 1, "address": a.address}, {"node_id": 2, "address": b.address}]
    a.controllers = b.controllers = both
    kh = write_known_hosts(tmp_path, a.known_hosts_line(), b.known_hosts_line())
    se = ChannelSE(procs, tmp_path, key, kh, [a.address], heartbeat_ms=hb).start()  # b: WELCOME
    wait_for(lambda: len([c for c in se.status()["controllers"] if c["connected"]]) == 2, 10,
             "sessions to both controllers")
    wait_for(lambda: se.state() == "CONNECTED", 5, "CONNECTED")
    a.stop()
    wait_for(lambda: not [c for c in se.status()["controllers"] if c["address"] == a.address
                          and c["connected"]], 10, "a's session closed")
    # two miss limits later it is still CONNECTED and never was anything else
    end = time.monotonic() + hb * MISS_LIMIT * 2 / 1000.0
    while time.monotonic() < end:
        assert se.state() == "CONNECTED"
        time.sleep(0.05)
    assert "CONTROLLER_HEARTBEAT_FAILED" not in se.log_text()


def test_node_knowing_no_leader_never_makes_the_se_connected(procs, tmp_path, se_key, fakes):
    key, pub = se_key
    fake = FakeController(tmp_path, 1, "se-1", pub)
    fakes.append(fake)
    fake.leader_known = False
    kh = write_known_hosts(tmp_path, fake.known_hosts_line())
    se = ChannelSE(procs, tmp_path, key, kh, [fake.address]).start()
    wait_for(lambda: se.status()["controllers"][0]["connected"], 10, "session open")
    wait_for(lambda: len(fake.frames(HEARTBEAT)) >= 3, 10, "three heartbeats from the SE")
    assert se.state() == "CONNECTING"
    fake.leader_known = True   # its next HEARTBEAT says so
    wait_for(lambda: se.state() == "CONNECTED", 5, "CONNECTED once the node knows a leader")


def test_wrong_se_key_is_refused(procs, tmp_path, se_key, fakes):
    key, _ = se_key
    other_pub = make_key(tmp_path / "other-key")
    fake = FakeController(tmp_path, 1, "se-1", other_pub)
    fakes.append(fake)
    se = ChannelSE(procs, tmp_path, key, write_known_hosts(tmp_path, fake.known_hosts_line()),
                   [fake.address]).start()
    wait_for(lambda: "authentication refused" in se.log_text(), 10, "refusal logged")
    assert fake.refused_auth > 0 and fake.frames(HELLO) == []
    assert se.state() == "CONNECTING"


def test_stalled_handshake_never_stalls_traffic(procs, tmp_path, se_key, fakes):
    """A controller address that accepts TCP and never says a word: the data plane and the
    session to the other controller go on (the loop never blocks in libssh)."""
    key, pub = se_key
    stall = socket.socket()
    stall.bind(("127.0.0.1", 0))
    stall.listen(8)
    stall_addr = "127.0.0.1:%d" % stall.getsockname()[1]
    b1, vs = free_port(), free_port()
    procs.backend("http", b1, "b1")
    fake = FakeController(tmp_path, 1, "se-1", pub)
    fakes.append(fake)
    fake.config = config_payload(1, http_config([b1], vs))
    kh = write_known_hosts(tmp_path, fake.known_hosts_line())
    try:
        se = ChannelSE(procs, tmp_path, key, kh, [stall_addr, fake.address]).start()
        wait_for(lambda: se.state() == "CONNECTED", 10, "CONNECTED through the other node")
        worst = 0.0
        with requests.Session() as s:
            for _ in range(60):   # ~44 ms each: backend.py answers slowly (Nagle)
                t0 = time.monotonic()
                assert s.get("http://127.0.0.1:%d/" % vs, timeout=5).status_code == 200
                worst = max(worst, time.monotonic() - t0)
        sessions = {c["address"]: c["session"] for c in se.status()["controllers"]}
        assert sessions[stall_addr] == "CONNECTING" and sessions[fake.address] == "OPEN"
        assert worst < 0.5, worst
        # idle, one session stalled and one open: the loop sleeps (no spinning on a socket)
        before = cpu_seconds(se.proc.pid)
        time.sleep(1.5)
        assert cpu_seconds(se.proc.pid) - before < 0.15
    finally:
        stall.close()


@pytest.mark.parametrize("raw, reason", [
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", "not a vigil frame"),
    (b"VF\x01\x03\xff\xff\xff\xff", "over"),
])
def test_garbage_or_oversized_frame_closes_that_session(procs, tmp_path, se_key, fakes, raw,
                                                        reason):
    key, pub = se_key
    bad = FakeController(tmp_path, 1, "se-1", pub)
    good = FakeController(tmp_path, 2, "se-1", pub)
    fakes.extend([bad, good])
    bad.raw_after_hello = raw
    kh = write_known_hosts(tmp_path, bad.known_hosts_line(), good.known_hosts_line())
    se = ChannelSE(procs, tmp_path, key, kh, [bad.address, good.address]).start()
    wait_for(lambda: se.state() == "CONNECTED", 10, "CONNECTED through the good node")
    wait_for(lambda: [ln for ln in se.log_text().splitlines()
                      if bad.address in ln and reason in ln], 10, "the refusal logged")
    sessions = {c["address"]: c for c in se.status()["controllers"]}
    assert sessions[good.address]["connected"] is True


def test_controller_given_by_name_is_resolved_off_the_loop(procs, tmp_path, se_key, fakes):
    """localhost:PORT: looked up in libuv's thread pool; the host key is checked under the
    name given ([localhost]:PORT in --known-hosts)."""
    key, pub = se_key
    fake = FakeController(tmp_path, 1, "se-1", pub)
    fakes.append(fake)
    line = fake.known_hosts_line().replace("[127.0.0.1]", "[localhost]")
    se = ChannelSE(procs, tmp_path, key, write_known_hosts(tmp_path, line),
                   ["localhost:%d" % fake.port]).start()
    wait_for(lambda: se.state() == "CONNECTED", 10, "CONNECTED to localhost")
    se.stop()
    # the same key listed under the address only: unknown under the name
    se = ChannelSE(procs, tmp_path, key, write_known_hosts(tmp_path, fake.known_hosts_line()),
                   ["localhost:%d" % fake.port]).start()
    wait_for(lambda: "host key refused: unknown" in se.log_text(), 10, "unknown under the name")
    assert se.state() == "CONNECTING"


def test_node_losing_its_leader_fails_like_a_silent_one(procs, tmp_path, se_key, fakes):
    """A node that still answers but says it knows no leader: CONTROLLER_HEARTBEAT_FAILED at
    once, HEADLESS after --miss-limit intervals, CONNECTED once it knows one again."""
    b1, vs = free_port(), free_port()
    procs.backend("http", b1, "b1")
    fake, se = one_controller(procs, tmp_path, se_key, fakes, 1, http_config([b1], vs))
    wait_for(lambda: se.state() == "CONNECTED", 10, "CONNECTED")
    fake.leader_known = False
    t0 = time.monotonic()
    wait_for(lambda: se.state() == "CONTROLLER_HEARTBEAT_FAILED", 5, "HEARTBEAT_FAILED")
    wait_for(lambda: se.state() == "HEADLESS", 10, "HEADLESS")
    assert time.monotonic() - t0 >= (MISS_LIMIT - 1) * HEARTBEAT_MS / 1000.0
    assert requests.get("http://127.0.0.1:%d/" % vs, timeout=5).status_code == 200
    fake.leader_known = True
    wait_for(lambda: se.state() == "CONNECTED", 5, "CONNECTED again")
