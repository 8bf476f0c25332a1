"""Issue 2: flag validation, unusable data dirs, ports in use (exit 2, one line, DIR intact)
and the --config INI file."""

import re
import socket

import pytest

import harness
from harness import assert_all_present, write_many


def open_segment(p):
    # raft's open segments may be closed (renamed) by any start; they are not "damage"
    return re.fullmatch(r"open-\d+", p.name) is not None


@pytest.fixture(scope="module")
def golden(session_registry, tmp_path_factory):
    """A data dir of a stopped node holding 300 acknowledged objects (copied per test)."""
    base = tmp_path_factory.mktemp("golden-flags")
    node = harness.Node(session_registry, 1, base / "data")
    node.start()
    harness.wait_until(lambda: node.runtime().get("leader_id") == 1, 20, "golden node to lead")
    acked, failed = write_many(node.api, [f"g-{i:04d}" for i in range(300)])
    assert not failed, failed
    assert node.term() == 0
    return node, acked


@pytest.fixture
def populated(golden, cluster_factory, tmp_path):
    """(Node not started, acked) on a fresh copy of the golden data dir, same ports and id."""
    gnode, acked = golden
    data = tmp_path / "data"
    node = cluster_factory.node_on_copy(gnode, data)
    return node, acked


def names_problem(line, name):
    return re.search(r"(--%s|(?<![\w-])%s)(?![\w-])" % (re.escape(name), re.escape(name)),
                     line, re.IGNORECASE) is not None


def assert_exit2_one_line(rc, out, err, *names):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, f"exit status {rc}, expected 2; stderr: {err!r}"
    assert len(lines) == 1, f"expected exactly one line on stderr, got {len(lines)}: {err!r}"
    if names:
        assert any(names_problem(lines[0], n) or n in lines[0] for n in names), \
            f"stderr line should name {names}: {lines[0]!r}"
    return lines[0]


def assert_dir_intact(node, acked, before):
    after = harness.tree_digest(node.data_dir, ignore=open_segment)
    changed = {k for k in before if before[k] != after.get(k)}
    assert not changed, f"files in DIR changed or removed by a refused start: {sorted(changed)}"
    node.start(timeout=60)
    harness.wait_until(lambda: node.runtime().get("leader_id") == 1, 20, "node to lead")
    assert_all_present(node.api, acked)


def base_args(node):
    return ["--data-dir", node.data_dir, "--id", "1", "--raft", node.raft,
            "--api", node.api_address, "--se-listen", node.se_listen, "--name", "node-1"]


def with_flag(args, flag, value):
    """args with `flag` set to value (replaced if present, appended otherwise)."""
    args = list(args)
    if flag in args:
        i = args.index(flag)
        args[i + 1] = value
    else:
        args += [flag, value]
    return args


BAD_FLAGS = [
    ("unknown-flag", lambda a, n: a + ["--bogus-flag", "1"], ("bogus-flag",)),
    ("unknown-switch", lambda a, n: a + ["--frobnicate"], ("frobnicate",)),
    ("stray-argument", lambda a, n: a + ["stray"], ("stray",)),
    ("api-port-not-number", lambda a, n: with_flag(a, "--api", "127.0.0.1:notaport"), ("api", "notaport")),
    ("api-no-port", lambda a, n: with_flag(a, "--api", "127.0.0.1"), ("api",)),
    ("api-missing-value", lambda a, n: [x for x in a if x not in ("--api", n.api_address)] + ["--api"],
     ("api",)),
    ("raft-bad-ip", lambda a, n: with_flag(a, "--raft", "999.0.0.1:7000"), ("raft", "999.0.0.1")),
    ("raft-empty", lambda a, n: with_flag(a, "--raft", ""), ("raft",)),
    ("se-listen-port-range", lambda a, n: with_flag(a, "--se-listen", "127.0.0.1:70000"),
     ("se-listen", "70000")),
    ("id-zero", lambda a, n: with_flag(a, "--id", "0"), ("id",)),
    ("id-negative", lambda a, n: with_flag(a, "--id", "-1"), ("id",)),
    ("id-not-number", lambda a, n: with_flag(a, "--id", "abc"), ("id",)),
    ("id-trailing-junk", lambda a, n: with_flag(a, "--id", "1x"), ("id",)),
    ("heartbeat-not-number", lambda a, n: with_flag(a, "--heartbeat-ms", "fast"), ("heartbeat-ms",)),
    ("election-timeout-zero", lambda a, n: with_flag(a, "--election-timeout-ms", "0"),
     ("election-timeout-ms",)),
    ("cluster-garbage", lambda a, n: with_flag(a, "--cluster", "garbage"), ("cluster",)),
    ("cluster-bad-address", lambda a, n: with_flag(a, "--cluster", "1@127.0.0.1:x"), ("cluster",)),
    ("se-wait-negative", lambda a, n: with_flag(a, "--se-wait-s", "-3"), ("se-wait-s",)),
]


@pytest.mark.parametrize("case,make,names", BAD_FLAGS, ids=[c[0] for c in BAD_FLAGS])
def test_bad_flag_exit2_one_line_dir_intact(cluster_factory, populated, case, make, names):
    node, acked = populated
    before = harness.tree_digest(node.data_dir, ignore=open_segment)
    rc, out, err = cluster_factory.run_vigild(make(base_args(node), node), timeout=10)
    assert_exit2_one_line(rc, out, err, *names)
    assert_dir_intact(node, acked, before)


def test_missing_data_dir_flag(cluster_factory):
    n = cluster_factory.node()
    args = [a for a in base_args(n)][2:]  # drop --data-dir DIR
    rc, out, err = cluster_factory.run_vigild(args, timeout=10)
    assert_exit2_one_line(rc, out, err, "data-dir")


def test_data_dir_is_a_regular_file(cluster_factory, tmp_path):
    f = tmp_path / "not-a-dir"
    f.write_bytes(b"precious")
    n = cluster_factory.node(data_dir=f)
    rc, out, err = cluster_factory.run_vigild(base_args(n), timeout=10)
    assert_exit2_one_line(rc, out, err, "data-dir", str(f))
    assert f.read_bytes() == b"precious"


def test_data_dir_under_a_regular_file(cluster_factory, tmp_path):
    f = tmp_path / "plain-file"
    f.write_bytes(b"precious")
    d = f / "sub" / "dir"
    n = cluster_factory.node(data_dir=d)
    rc, out, err = cluster_factory.run_vigild(base_args(n), timeout=10)
    assert_exit2_one_line(rc, out, err, "data-dir", str(f))
    assert f.read_bytes() == b"precious"


def test_data_dir_in_use_by_a_running_node(cluster_factory, populated):
    """A second vigild on the same DIR must refuse, not share (and corrupt) the raft log."""
    node, acked = populated
    node.start(timeout=60)
    other = cluster_factory.node(data_dir=node.data_dir)
    rc, out, err = cluster_factory.run_vigild(base_args(other), timeout=10)
    assert_exit2_one_line(rc, out, err, "data-dir", str(node.data_dir))
    assert node.running
    assert_all_present(node.api, acked)
    assert node.api.post("/api/healthmonitor", harness.healthmonitor_body("after-second"))[0] == 201


@pytest.mark.parametrize("which", ["--api", "--raft", "--se-listen"])
def test_port_in_use(cluster_factory, populated, which):
    node, acked = populated
    before = harness.tree_digest(node.data_dir, ignore=open_segment)
    address = {"--api": node.api_address, "--raft": node.raft, "--se-listen": node.se_listen}[which]
    host, port = address.split(":")
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT from earlier runs
    try:
        blocker.bind((host, int(port)))
        blocker.listen(1)
        rc, out, err = cluster_factory.run_vigild(base_args(node), timeout=10)
    finally:
        blocker.close()
    assert_exit2_one_line(rc, out, err, port, which.lstrip("-"))
    assert_dir_intact(node, acked, before)


# --- the INI file ----------------------------------------------------------

def write_ini(path, entries, comments=True):
    lines = ["# vigild test config", ""] if comments else []
    lines += [f"{k} = {v}" for k, v in entries.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_config_file_sets_every_flag(cluster_factory, tmp_path):
    n = cluster_factory.node(data_dir=tmp_path / "cfgdata")
    n.data_dir.mkdir()
    ini = write_ini(tmp_path / "vigild.ini", {
        "data-dir": n.data_dir, "id": 1, "raft": n.raft, "api": n.api_address,
        "se-listen": n.se_listen, "name": "from-file", "cluster-name": "ini-cluster",
        "heartbeat-ms": 100, "election-timeout-ms": 1000})
    n.args = lambda: [n.binary, "--config", ini] + n.auth_flags()
    n.start()
    harness.wait_until(lambda: n.runtime().get("leader_id") == 1, 20, "config-file node to lead")
    n.wait_registered()
    status, doc = n.api.get("/api/cluster")
    assert status == 200, doc
    assert doc["name"] == "ini-cluster"
    me = doc["nodes"][0]
    assert (me["name"], me["raft_address"], me["api_address"], me["se_address"]) == \
        ("from-file", n.raft, n.api_address, n.se_listen)
    assert n.term() == 0


def test_flags_win_over_config_file(cluster_factory, tmp_path):
    n = cluster_factory.node(data_dir=tmp_path / "cfgdata")
    n.data_dir.mkdir()
    file_api = harness.addr(harness.allocate_port())
    ini = write_ini(tmp_path / "vigild.ini", {
        "data-dir": n.data_dir, "api": file_api, "name": "from-file",
        "raft": n.raft, "se-listen": n.se_listen})
    n.args = lambda: [n.binary, "--config", ini, "--api", n.api_address, "--name",
                      "from-flag"] + n.auth_flags()
    n.start()
    n.wait_registered()
    status, doc = n.api.get("/api/cluster")
    assert status == 200, doc
    assert doc["nodes"][0]["name"] == "from-flag"
    assert doc["nodes"][0]["api_address"] == n.api_address
    assert harness.port_is_free(int(file_api.split(":")[1])), "the file's --api is also listening"


def test_config_file_unknown_key(cluster_factory, tmp_path):
    n = cluster_factory.node(data_dir=tmp_path / "d")
    ini = write_ini(tmp_path / "bad.ini", {"data-dir": n.data_dir, "api": n.api_address,
                                          "raft": n.raft, "se-listen": n.se_listen,
                                          "no-such-option": "1"})
    rc, out, err = cluster_factory.run_vigild(["--config", ini], timeout=10)
    assert_exit2_one_line(rc, out, err, "no-such-option")


def test_config_file_bad_value(cluster_factory, tmp_path):
    n = cluster_factory.node(data_dir=tmp_path / "d")
    ini = write_ini(tmp_path / "bad.ini", {"data-dir": n.data_dir, "api": "127.0.0.1:notaport",
                                          "raft": n.raft, "se-listen": n.se_listen})
    rc, out, err = cluster_factory.run_vigild(["--config", ini], timeout=10)
    assert_exit2_one_line(rc, out, err, "api", "notaport")


def test_config_file_missing(cluster_factory, tmp_path):
    missing = tmp_path / "nope.ini"
    rc, out, err = cluster_factory.run_vigild(["--config", missing], timeout=10)
    assert_exit2_one_line(rc, out, err, str(missing), "config")


def test_config_file_garbage_line(cluster_factory, tmp_path):
    n = cluster_factory.node(data_dir=tmp_path / "d")
    ini = tmp_path / "garbage.ini"
    ini.write_text(f"data-dir = {n.data_dir}\nthis line has no equals sign\n")
    rc, out, err = cluster_factory.run_vigild(["--config", ini], timeout=10)
    assert_exit2_one_line(rc, out, err)


TEST_KNOBS = [["--test-fast-password-hash"], ["--test-wrong-answer-index"],
              ["--test-apply-delay-ms", "10"], ["--test-se-max-sessions", "2"],
              ["--test-log-commit-delay-ms", "5"], ["--test-events-keep", "20"]]


@pytest.mark.parametrize("knob", TEST_KNOBS, ids=[k[0] for k in TEST_KNOBS])
def test_default_build_refuses_test_knobs(cluster_factory, tmp_path, knob):
    """The build users run and install (meson's default, no -Dtest_knobs) knows no --test-*
    flag: one line naming it as unknown, exit 2, no data dir made. The test build accepts it
    (every system test runs with --test-fast-password-hash)."""
    if not harness.VIGILD_DEFAULT.exists():
        pytest.skip(f"no default build at {harness.VIGILD_DEFAULT} (`make` builds it; "
                    f"VIGILD_DEFAULT points elsewhere)")
    data = tmp_path / "data"
    rc, out, err = cluster_factory.registry.run_once(
        [harness.VIGILD_DEFAULT, "--data-dir", data] + knob)
    line = assert_exit2_one_line(rc, out, err, knob[0])
    assert f"unknown flag {knob[0]}" in line, line
    assert not data.exists(), "a refused start made its data dir"


@pytest.mark.parametrize("program", ["vigild", "vigil-se", "vigil"])
def test_version_prints_name_and_version_on_one_line_and_exits_0(program, tmp_path):
    """Contract: "--version prints the program's name and version on one line and exits 0
    (all three programs)"; the daemons then touch no data dir."""
    import subprocess
    build = harness.VIGILD_DEFAULT.parents[2]          # build/src/controller/vigild -> build
    path = {"vigild": build / "src" / "controller" / "vigild",
            "vigil-se": build / "src" / "se" / "vigil-se",
            "vigil": build / "src" / "cli" / "vigil"}[program]
    if not path.exists():
        pytest.skip(f"{path} is not built (`make` builds it)")
    extra = [] if program == "vigil" else ["--data-dir", str(tmp_path / "nowhere")]
    p = subprocess.run([str(path)] + extra + ["--version"], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert re.fullmatch(rf"{re.escape(program)} \d+\.\d+\.\d+\n", p.stdout), p.stdout
    assert not (tmp_path / "nowhere").exists()
