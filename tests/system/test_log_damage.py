"""Issue 10, defect 3: a damaged byte in an open raft segment is refused, never cut off.

libraft 0.15 stops loading an open segment at its first bad batch and drops the rest without
a word. vigild checks the segments itself before libraft loads them (src/controller/
raft_log_check.c): a bad batch with a valid one after it is refused with one line naming the
file and the byte; a torn tail (the last batch cut by a crash, zeros after) is accepted.
DIR/raft/log-end marks the durable end of the log after every append
(src/controller/consensus/raft_log_mark.c): a log that loads shorter than that is refused too.
"""

import struct
import threading
import time

import pytest

import harness
from harness import assert_all_present, wait_until, write_many

ENTRY_HEADER = 16


# ---------------------------------------------------------------------------
# the segment format (libraft 0.15): u64 format, then batches of
# u32 header crc, u32 data crc, u64 n, n * (u64 term, u8 type, 3 unused, u32 size), data

def batches(data):
    """[(start, end)] of the batches in a segment's bytes, by their sizes (CRCs unchecked),
    up to the zeros after the last one."""
    out, at = [], 8
    while at + 16 <= len(data):
        n = struct.unpack_from("<Q", data, at + 8)[0]
        if n == 0 or n > 1 << 18:
            break
        header = 8 + ENTRY_HEADER * n
        sizes = sum(struct.unpack_from("<I", data, at + 16 + ENTRY_HEADER * i + 12)[0]
                    for i in range(n))
        end = at + 8 + header + sizes
        if end > len(data):
            break
        out.append((at, end))
        at = end
    return out


def open_segments(data_dir):
    """The open segments that hold batches, newest last: [(path, bytes, batches)]."""
    segs = sorted((p for p in (data_dir / "raft").glob("open-*")),
                  key=lambda p: int(p.name.split("-")[1]))
    out = []
    for p in segs:
        data = p.read_bytes()
        found = batches(data)
        if found:
            out.append((p, data, found))
    return out


def flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def payload_offset(batch):
    """A byte in the middle of a batch's data (past its header)."""
    start, end = batch
    return start + (end - start) * 3 // 4


def wait_exit(node, timeout=30):
    """Wait for node to exit on its own; return (returncode, the refusal line)."""
    wait_until(lambda: not node.running, timeout, f"{node.label} to refuse and exit")
    err = node.stderr_path.read_text(errors="replace")
    refusals = [ln for ln in err.splitlines() if ln.startswith("vigild: ")]
    assert refusals, f"{node.label} exited without a one-line refusal: {err[-2000:]}"
    assert err.endswith(refusals[-1] + "\n"), f"the refusal should be the last line: {err[-800:]!r}"
    return node.proc.returncode, refusals[-1]


def assert_refused(node, *words):
    rc, line = wait_exit(node)
    assert rc > 0, f"{node.label} died by signal {-rc} (a crash, not a refusal): {line}"
    for w in words:
        assert w in line, f"the refusal should say {w!r}: {line!r}"
    return line


# ---------------------------------------------------------------------------
# one node killed with -9: its open segment as the crash left it

@pytest.fixture(scope="module")
def killed_dir(session_registry, tmp_path_factory):
    base = tmp_path_factory.mktemp("log-damage-killed")
    node = harness.Node(session_registry, 1, base / "data")
    node.start()
    wait_until(lambda: node.runtime().get("leader_id") == 1, 20, "the node to lead")
    acked, failed = write_many(node.api, [f"k-{i:05d}" for i in range(600)])
    assert not failed, list(failed.items())[:3]
    node.kill9()
    segs = open_segments(node.data_dir)
    assert segs and len(segs[-1][2]) >= 20, f"expected an open segment with batches: {segs}"
    return node, acked


@pytest.fixture
def copy_of_killed(killed_dir, cluster_factory, tmp_path):
    gnode, acked = killed_dir
    data = tmp_path / "data"
    node = cluster_factory.node_on_copy(gnode, data)
    path, data_bytes, found = open_segments(data)[-1]
    return node, acked, path, found


def start_and_lead(node):
    node.start(timeout=30)
    wait_until(lambda: node.runtime().get("leader_id") == 1, 20, "the node to lead again")


@pytest.mark.parametrize("where", ["middle", "near-end"])
def test_flipped_byte_with_valid_batches_after_is_refused(copy_of_killed, where):
    node, acked, path, found = copy_of_killed
    index = len(found) // 2 if where == "middle" else len(found) - 3
    offset = payload_offset(found[index])
    flip_byte(path, offset)
    node.start(wait=False)
    line = assert_refused(node, path.name, "byte")
    start = found[index][0]
    assert f"byte {start}" in line, f"the refusal should name the batch at byte {start}: {line}"


def test_flipped_header_byte_is_refused(copy_of_killed):
    node, acked, path, found = copy_of_killed
    start, _ = found[len(found) // 3]
    flip_byte(path, start + 9)   # the entry count
    node.start(wait=False)
    assert_refused(node, path.name, f"byte {start}")


def test_damaged_last_batch_is_refused_by_the_mark(copy_of_killed):
    """No valid batch after it, so it looks like a torn tail: but its append had completed,
    and the durable-end mark says so."""
    node, acked, path, found = copy_of_killed
    flip_byte(path, payload_offset(found[-1]))
    node.start(wait=False)
    assert_refused(node, "log-end", "durably stored")


def test_torn_tail_starts_with_everything(copy_of_killed):
    """A batch half written by a crash (its first half, then zeros) after the last one."""
    node, acked, path, found = copy_of_killed
    data = bytearray(path.read_bytes())
    start, end = found[-1]
    half = (end - start) // 2
    assert data[end:end + half] == bytes(half), "expected zeros after the last batch"
    data[end:end + half] = data[start:start + half]
    path.write_bytes(bytes(data))
    start_and_lead(node)
    assert_all_present(node.api, acked)
    status, doc = node.api.post("/api/healthmonitor", harness.healthmonitor_body("after-torn"))
    assert status == 201, (status, doc)


def test_killed_dir_starts_with_everything(copy_of_killed):
    node, acked, path, found = copy_of_killed
    start_and_lead(node)
    assert_all_present(node.api, acked)


# ---------------------------------------------------------------------------
# end to end: three kills, one flipped byte

def write_for(api, seconds, prefix):
    """Writes from 16 threads for about SECONDS; returns (acked, in_flight names)."""
    acked, failed = {}, {}
    stop = threading.Event()
    names = [f"{prefix}-{i:06d}" for i in range(50_000)]  # map() submits them all at once
    writer = threading.Thread(target=write_many, args=(api, names),
                              kwargs=dict(workers=16, stop=stop, acked=acked, failed=failed),
                              daemon=True)
    writer.start()
    deadline = time.monotonic() + seconds
    try:
        wait_until(lambda: time.monotonic() >= deadline and len(acked) > 0, seconds + 30,
                   f"{seconds}s of writes with some acknowledged")
    finally:
        stop.set()
        writer.join(timeout=60)
    assert not writer.is_alive(), "writer threads did not finish"
    return dict(acked), {n for n, e in failed.items() if e != "not sent"}


def test_three_kills_one_flipped_byte_loses_nothing(cluster_factory):
    cluster = cluster_factory(3)
    leader = cluster.leader()
    a, b = [n for n in cluster.nodes if n is not leader]
    acked, in_flight = write_for(leader.api, 1, "pre")
    b.kill9()
    more, in_flight2 = write_for(leader.api, 3, "e2e")
    acked.update(more)
    in_flight |= in_flight2
    a.kill9()
    leader.kill9()

    path, data, found = open_segments(a.data_dir)[-1]
    extent = found[-1][1]
    target = next(i for i, (s, e) in enumerate(found) if e >= extent * 98 // 100)
    target = min(target, len(found) - 2)  # a valid batch after it, as measured in the issue
    flip_byte(path, payload_offset(found[target]))

    a.start(wait=False)
    b.start(wait=False)
    # Refused either by the segment check (the damaged batch, a valid one after it) or, when
    # the kill left the flipped batch last in the file (it then looks like a torn tail), by
    # the durable end: the log ends before DIR/raft/log-end. Both say which file.
    line = assert_refused(a, "raft")
    assert (path.name in line and "byte" in line) or \
        ("log-end" in line and "cut off or lost" in line), line
    # B alone has no majority; with the old leader back, one of them is elected
    leader.start(wait=False)
    new = cluster.wait_leader(30)   # B or the old leader: A is not running
    assert new is not a
    wait_until(lambda: len(new.api.list_all("healthmonitor")) >= len(acked), 30,
               "the new leader to have applied every acknowledged write")
    assert_all_present(new.api, acked, allowed_extra=in_flight)


# ---------------------------------------------------------------------------
# the mark follows a snapshot install (a follower rebuilt from the leader's snapshot)

def test_follower_restored_by_snapshot_restarts(cluster_factory):
    flags = ["--snapshot-threshold", "256", "--snapshot-trailing", "32"]
    cluster = cluster_factory(3, extra_flags=flags)
    leader = cluster.leader()
    follower = next(n for n in cluster.nodes if n is not leader)
    acked, _ = write_many(leader.api, [f"s1-{i:05d}" for i in range(200)])
    follower.term()
    # two writers: about one entry per write, well past the snapshot threshold
    more, failed = write_many(leader.api, [f"s2-{i:05d}" for i in range(1500)], workers=2)
    assert not failed, list(failed.items())[:3]
    acked.update(more)
    restores = follower.stderr_path.read_text().count("restored from a snapshot")
    follower.start()
    wait_until(lambda: follower.stderr_path.read_text().count("restored from a snapshot") >
               restores, 30, "the follower to install the leader's snapshot")
    wait_until(lambda: follower.own_state().get("applied_index", 0) >=
               leader.own_state().get("applied_index", 0), 30, "the follower to catch up")
    more, failed = write_many(leader.api, [f"s3-{i:05d}" for i in range(100)])
    assert not failed, list(failed.items())[:3]
    acked.update(more)
    follower.kill9()
    follower.start()
    wait_until(lambda: len(follower.api.list_all("healthmonitor")) >= len(acked), 30,
               "the restarted follower to serve every write")
    assert_all_present(follower.api, acked)
