"""Issue 2: damaged state in DIR (raft segments, metadata, snapshots, the DB file).

vigild either refuses to start with a clear error (exit status > 0, not a crash) or
starts with every acknowledged object present. A start that silently lost data fails.
"""

import os
import re

import pytest

import harness
from harness import assert_all_present, wait_until, write_many

N_OBJECTS = 1500   # well above the snapshot threshold set below

CLOSED_SEGMENT = re.compile(r"\d{16}-\d{16}")
OPEN_SEGMENT = re.compile(r"open-\d+")
METADATA = re.compile(r"metadata[12]")
SNAPSHOT_DATA = re.compile(r"snapshot-\d+-\d+-\d+")
SNAPSHOT_META = re.compile(r"snapshot-\d+-\d+-\d+\.meta")

DAMAGE_WORDS = ("corrupt", "damag", "checksum", "crc", "invalid", "malformed", "bad", "segment",
                "metadata", "snapshot", "raft", "database", "cannot", "can't", "failed",
                "error", "refus", "truncat", "missing")


def files(directory, pattern):
    return sorted((p for p in directory.rglob("*") if p.is_file() and pattern.fullmatch(p.name)),
                  key=lambda p: p.name)


def segment_range(p):
    a, b = p.name.split("-")
    return int(a), int(b)


def snapshot_index(p):
    return int(p.name.split("-")[2])


@pytest.fixture(scope="module")
def golden(session_registry, tmp_path_factory):
    """A stopped node's DIR with N_OBJECTS acknowledged objects, a snapshot and closed segments."""
    base = tmp_path_factory.mktemp("golden-damage")
    # vigild's own knobs (not in the contract): snapshot early so that DIR holds a snapshot
    # and closed segments after it with a small number of writes (64 entries: the writes of
    # one loop iteration share an entry, up to 16 here, and more so on a slow build)
    node = harness.Node(session_registry, 1, base / "data",
                        extra_flags=["--snapshot-threshold", "64", "--snapshot-trailing", "16"])
    node.start()
    wait_until(lambda: node.runtime().get("leader_id") == 1, 20, "golden node to lead")
    acked, failed = write_many(node.api, [f"d-{i:05d}" for i in range(N_OBJECTS)])
    assert not failed, list(failed.items())[:3]
    assert node.term() == 0
    # a second start closes the open segments of the first run (libraft renames them)
    node.start(timeout=60)
    acked2, failed = write_many(node.api, [f"e-{i:05d}" for i in range(200)])
    assert not failed, list(failed.items())[:3]
    acked.update(acked2)
    assert node.term() == 0
    listing = sorted(str(p.relative_to(node.data_dir)) + f" ({p.stat().st_size})"
                     for p in node.data_dir.rglob("*") if p.is_file())
    return node, acked, listing


@pytest.fixture
def damaged_node(golden, cluster_factory, tmp_path):
    gnode, acked, listing = golden
    data = tmp_path / "data"
    node = cluster_factory.node_on_copy(gnode, data)
    return node, acked, listing


def flip_middle(path, length=64):
    data = bytearray(path.read_bytes())
    assert len(data) > 2 * length, f"{path} too small to damage ({len(data)} bytes)"
    mid = len(data) // 2
    for i in range(mid, mid + length):
        data[i] ^= 0xA5
    path.write_bytes(bytes(data))


def truncate_half(path):
    size = path.stat().st_size
    os.truncate(path, size // 2)


def garbage(path, size=None):
    size = size if size is not None else max(path.stat().st_size, 32)
    path.write_bytes(os.urandom(size))


def start_and_judge(node, acked):
    """Start on damaged state; refusal must be clear, a start must have every object."""
    node.start(wait=False)

    def outcome():
        if not node.running:
            return "exited"
        status, doc = node.api.get("/api/healthz", timeout=(0.5, 2))
        if status == 200:
            rt = node.runtime()
            return "leads" if rt.get("leader_id") == 1 else None
        return None
    result = wait_until(outcome, 30, "vigild to either exit or lead on damaged state")
    if result == "exited":
        rc = node.proc.returncode
        err = node.stderr_path.read_text(errors="replace")
        last = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("==== start")]
        assert rc > 0, f"vigild died by signal {-rc} on damaged state (a crash, not a refusal)"
        assert last, "vigild refused to start but printed nothing on stderr"
        assert any(w in last[-1].lower() for w in DAMAGE_WORDS), \
            f"refusal should say what is damaged: {last[-1]!r}"
        print(f"outcome: refused to start (exit {rc}): {last[-1]}")
        return "refused", last[-1]
    assert_all_present(node.api, acked)
    status, doc = node.api.post("/api/healthmonitor", harness.healthmonitor_body("after-damage"))
    assert status == 201, (status, doc)
    print("outcome: started with every acknowledged object")
    return "started", None


def test_golden_dir_has_what_the_damage_tests_need(golden):
    gnode, acked, listing = golden
    d = gnode.data_dir
    assert files(d, METADATA), f"no raft metadata files in DIR: {listing}"
    assert files(d, SNAPSHOT_DATA), f"no snapshot after {len(acked)} writes: {listing}"
    assert files(d, CLOSED_SEGMENT), f"no closed segment after a restart: {listing}"


def _latest_closed_segment(d, listing):
    segs = files(d, CLOSED_SEGMENT)
    if not segs:
        pytest.skip(f"no closed raft segment in DIR to damage: {listing}")
    return max(segs, key=lambda p: segment_range(p)[1])


def test_corrupt_middle_of_closed_segment(damaged_node):
    node, acked, listing = damaged_node
    seg = _latest_closed_segment(node.data_dir, listing)
    flip_middle(seg)
    start_and_judge(node, acked)


def test_corrupt_every_closed_segment(damaged_node):
    node, acked, listing = damaged_node
    _latest_closed_segment(node.data_dir, listing)
    for seg in files(node.data_dir, CLOSED_SEGMENT):
        flip_middle(seg, length=16)
    start_and_judge(node, acked)


def test_truncated_closed_segment(damaged_node):
    node, acked, listing = damaged_node
    truncate_half(_latest_closed_segment(node.data_dir, listing))
    start_and_judge(node, acked)


def test_missing_closed_segment(damaged_node):
    """A hole in the log after the snapshot: the entries are gone, so starting means loss."""
    node, acked, listing = damaged_node
    _latest_closed_segment(node.data_dir, listing).unlink()
    start_and_judge(node, acked)


@pytest.mark.parametrize("how", ["truncate-both", "garbage-both", "garbage-newer", "empty-both",
                                 "delete-both"])
def test_damaged_metadata(damaged_node, how):
    node, acked, listing = damaged_node
    metas = files(node.data_dir, METADATA)
    if not metas:
        pytest.skip(f"no raft metadata files in DIR: {listing}")
    if how == "truncate-both":
        for m in metas:
            os.truncate(m, 5)
    elif how == "garbage-both":
        for m in metas:
            garbage(m)
    elif how == "garbage-newer":
        newest = max(metas, key=lambda p: p.stat().st_mtime_ns)
        garbage(newest)
    elif how == "empty-both":
        for m in metas:
            os.truncate(m, 0)
    elif how == "delete-both":
        for m in metas:
            m.unlink()
    start_and_judge(node, acked)


@pytest.mark.parametrize("how", ["flip-data", "truncate-data", "garbage-meta", "delete-data",
                                 "garbage-data", "sqlite-header-garbage"])
def test_damaged_snapshot(damaged_node, how):
    node, acked, listing = damaged_node
    snaps = files(node.data_dir, SNAPSHOT_DATA)
    if not snaps:
        pytest.skip(f"no snapshot in DIR: {listing}")
    latest = max(snaps, key=snapshot_index)
    meta = latest.with_name(latest.name + ".meta")
    if how == "flip-data":
        flip_middle(latest)
    elif how == "truncate-data":
        truncate_half(latest)
    elif how == "garbage-meta":
        assert meta.exists(), listing
        garbage(meta)
    elif how == "delete-data":
        latest.unlink()
    elif how == "garbage-data":
        # not an LZ4 frame: libraft hands the bytes to vigild's restore as they are
        latest.write_bytes(b"NOT-LZ4!" + os.urandom(latest.stat().st_size))
    elif how == "sqlite-header-garbage":
        latest.write_bytes(b"SQLite format 3\x00" + os.urandom(latest.stat().st_size))
    start_and_judge(node, acked)


# vigild keeps no database file (the DB is rebuilt from raft); these are the other files in
# DIR. Identity and credentials refuse clearly; the address cache and the log's durable-end
# mark only help, so damage there must harm nothing.
@pytest.mark.parametrize("name,expect", [("node.json", "refused"),
                                         ("cluster-credentials.json", "refused"),
                                         ("nodes.json", "started"),
                                         ("raft/log-end", "started")])
def test_damaged_side_file(damaged_node, name, expect):
    node, acked, listing = damaged_node
    path = node.data_dir / name
    assert path.exists(), f"{name} not in DIR: {listing}"
    garbage(path, 300)
    outcome, line = start_and_judge(node, acked)
    assert outcome == expect, (outcome, line)
    if expect == "refused":
        assert name in line, f"the refusal should name {name}: {line!r}"


# A parser's error quotes the bad input ("near '...'"); bytes like a newline or an escape
# there must not split the refusal over lines or reach the terminal raw (CI once met a
# random garbage file that did exactly this).
@pytest.mark.parametrize("content", [b'{"id": 1, "raft": "\n\x1b[2J\x07', b"\x01\n\x1b]0;x\x07\n"])
def test_damaged_identity_refusal_is_one_printable_line(damaged_node, content):
    node, acked, _ = damaged_node
    (node.data_dir / "node.json").write_bytes(content)
    outcome, line = start_and_judge(node, acked)
    assert outcome == "refused", (outcome, line)
    err = node.stderr_path.read_text(errors="replace")
    refusal = [ln for ln in err.splitlines() if ln.startswith("vigild: ")]
    assert len(refusal) == 1 and "node.json" in refusal[0], err[-2000:]
    assert err.endswith(refusal[0] + "\n"), f"refusal should be the last line: {err[-500:]!r}"
    assert not any(ord(c) < 0x20 or ord(c) == 0x7f for c in refusal[0]), repr(refusal[0])


@pytest.fixture(scope="module")
def golden_killed(session_registry, tmp_path_factory):
    """A node's DIR after kill -9 (its open segments left as they were)."""
    base = tmp_path_factory.mktemp("golden-killed")
    node = harness.Node(session_registry, 1, base / "data")
    node.start()
    wait_until(lambda: node.runtime().get("leader_id") == 1, 20, "golden node to lead")
    acked, failed = write_many(node.api, [f"k-{i:05d}" for i in range(300)])
    assert not failed, list(failed.items())[:3]
    node.kill9()
    listing = sorted(str(p.relative_to(node.data_dir)) + f" ({p.stat().st_size})"
                     for p in node.data_dir.rglob("*") if p.is_file())
    return node, acked, listing


@pytest.fixture
def killed_node(golden_killed, cluster_factory, tmp_path):
    gnode, acked, listing = golden_killed
    data = tmp_path / "data"
    node = cluster_factory.node_on_copy(gnode, data)
    return node, acked, listing


def test_kill9_dir_starts_with_everything(killed_node):
    node, acked, listing = killed_node
    assert start_and_judge(node, acked)[0] == "started", "an undamaged DIR after kill -9 must start"


def test_garbage_open_segment(killed_node):
    """A damaged open segment (holding acknowledged writes) must not make them vanish."""
    node, acked, listing = killed_node
    opens = files(node.data_dir, OPEN_SEGMENT)
    if not opens:
        pytest.skip(f"no open segment in DIR: {listing}")
    for o in opens:
        flip_middle(o, length=32) if o.stat().st_size > 128 else garbage(o, 4096)
    start_and_judge(node, acked)
