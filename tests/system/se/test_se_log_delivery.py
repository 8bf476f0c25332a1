"""vigil-se with --controllers delivers its access-log records to its log node (issue 13):
LOGS frames from the spool DIR/spool, oldest first, answered LOGS_ACK; checked against a
fake controller (fake_controller.py) that checks every frame, stores records by seq and can
withhold its acks: order, completeness and no duplicates record by record; the window of
four frames; serving and spooling without acks, then draining; kill -9 under traffic; resend
from the ack mark after a reconnection and a log node change; the size cap's drops in
/status and in every HEARTBEAT; bad LOGS_ACKs."""
import re
import os
import struct

import requests

from conftest import free_port, http_config, wait_for
from fake_controller import BYE, HEARTBEAT, HELLO, LOGS, LOGS_ACK, FakeController
from test_se_channel_client import (ChannelSE, Load, acks, config_payload, one_controller,
                                    write_known_hosts)


def start(procs, tmp_path, se_key, fakes, extra=()):
    """A backend, a fake log node (node 1) pushing a one-VS config, an SE serving it."""
    backend_port, vs = free_port(), free_port()
    procs.backend("http", backend_port, "b1")
    fake, se = one_controller(procs, tmp_path, se_key, fakes, 3, http_config([backend_port], vs),
                              extra)
    wait_for(lambda: acks(fake, 3), 10, "CONFIG_ACK of version 3")
    wait_for(lambda: se.state() == "CONNECTED", 5, "CONNECTED")
    return fake, se, vs


def get_many(vs, n, prefix="/r/", pad=0):
    """N sequential keep-alive GETs of PREFIX<i> (i from 0), each must answer 200."""
    with requests.Session() as s:
        for i in range(n):
            r = s.get("http://127.0.0.1:%d%s%d%s" % (vs, prefix, i, "x" * pad), timeout=5)
            assert r.status_code == 200, (i, r.status_code)


def logs(se):
    return se.status()["logs"]


def spool_seqs(se_dir, folder="spool"):
    """The seqs of the valid frames in DIR/FOLDER's segments (the format of log_spool.h)."""
    seqs = []
    spool = se_dir / folder
    for name in sorted(os.listdir(spool)):
        if not name.endswith(".seg"):
            continue
        data = (spool / name).read_bytes()
        at = 0
        while at + 20 <= len(data) and data[at:at + 4] == b"\xf5VS1":
            length, seq = struct.unpack("<IQ", data[at + 4:at + 16])
            if at + 20 + length > len(data):
                break
            seqs.append(seq)
            at += 20 + length
    return seqs


def ack_mark(se_dir):
    path = se_dir / "spool" / "acked"
    return int(path.read_text()) if path.exists() else 0


def test_records_arrive_in_order_none_missing_none_duplicated(procs, tmp_path, se_key, fakes):
    fake, se, vs = start(procs, tmp_path, se_key, fakes)
    assert fake.frames(HELLO)[0]["log_seq"] == 1
    n = 400
    get_many(vs, n)
    wait_for(lambda: len(fake.stored) == n, 10, "%d records at the log node" % n)
    wait_for(lambda: logs(se)["acked"] == n, 5, "every record acknowledged in /status")
    st = logs(se)
    assert st == {"generated": n, "acked": n, "spooled": 0, "dropped": 0}, st
    assert fake.log_errors == [] and fake.duplicates == 0
    # record by record: seq i+1 is the i-th request made (one client, in order)
    for i in range(n):
        rec = fake.stored[i + 1]
        assert rec["seq"] == i + 1 and rec["uri"] == "/r/%d" % i and rec["status"] == 200, rec
        assert rec["se_name"] == "se-1"
    firsts = [p["first_seq"] for p in fake.logs_of(0)]
    assert firsts == sorted(firsts) and firsts[0] == 1
    assert (tmp_path / "se-data" / "access.log").exists() is False


def test_no_acks_keeps_serving_and_spooling_then_drains_window_holds(procs, tmp_path, se_key,
                                                                     fakes):
    fake, se, vs = start(procs, tmp_path, se_key, fakes)
    fake.ack_logs = False
    n = 4 * 1024 + 700
    get_many(vs, n)   # every request answered 200 while nothing is acknowledged
    wait_for(lambda: logs(se)["generated"] == n, 5, "every record generated")
    wait_for(lambda: len(fake.logs_of(0)) == 4, 10, "four LOGS frames")
    assert logs(se)["spooled"] == n and logs(se)["acked"] == 0
    # no fifth frame while four are unacknowledged: three more heartbeats pass first
    beats = len(fake.frames(HEARTBEAT))
    wait_for(lambda: len(fake.frames(HEARTBEAT)) >= beats + 3, 5, "three more heartbeats")
    assert len(fake.logs_of(0)) == 4 and fake.max_unacked == 4
    frames = fake.logs_of(0)
    for a, b in zip(frames, frames[1:]):   # sent while the records came: consecutive
        assert b["first_seq"] == a["first_seq"] + len(a["records"])
    assert se.state() == "CONNECTED"
    fake.ack_logs = True
    wait_for(lambda: len(fake.stored) == n, 15, "every record after acks resumed")
    wait_for(lambda: logs(se)["acked"] == n, 5, "every record acknowledged")
    assert logs(se)["spooled"] == 0
    assert fake.stored_seqs() == list(range(1, n + 1))
    assert fake.log_errors == [] and fake.duplicates == 0 and fake.max_unacked <= 4
    sizes = [len(p["records"]) for p in fake.logs_of(0)]
    assert max(sizes) == 1024, sizes   # the backlog goes in frames of at most 1024


def test_kill_9_under_traffic_then_restart_loses_and_repeats_nothing(procs, tmp_path, se_key,
                                                                     fakes):
    fake, se, vs = start(procs, tmp_path, se_key, fakes)
    load = Load([vs])
    try:
        wait_for(lambda: len(fake.stored) >= 300, 15, "300 records delivered under load")
        fake.ack_logs = False        # some records wait in the spool, unacknowledged
        load.wait_more(200)
        se.proc.kill()
    finally:
        load.stop()
    se.log.close()
    served = load.ok
    before = set(fake.stored)
    mark = ack_mark(se.dir)
    on_disk = spool_seqs(se.dir)
    assert on_disk == sorted(on_disk) and len(on_disk) == len(set(on_disk))
    sessions_before = len(fake.conns)
    fake.ack_logs = True
    se.start()
    wait_for(lambda: set(on_disk) <= set(fake.stored), 15, "every spooled record delivered")
    # a record per request served, but the last one may not have reached the spool
    assert len(fake.stored) >= served - 1, (len(fake.stored), served)
    got = fake.stored_seqs()
    assert got == list(range(1, len(got) + 1)), "a gap in the delivered seqs"
    resent = [r["seq"] for n in range(sessions_before, len(fake.conns))
              for p in fake.logs_of(n) for r in p["records"]]
    assert resent and min(resent) == mark + 1, (min(resent), mark)   # acked ones not resent
    assert all(s > mark for s in fake.duplicate_seqs)
    # seqs continue after the restart, none reused
    top = max(fake.stored)
    get_many(vs, 5, prefix="/after/")
    wait_for(lambda: sum(1 for r in fake.stored.values() if r["uri"].startswith("/after/")) == 5,
             10, "the records made after the restart")
    after = sorted(s for s, r in fake.stored.items() if r["uri"].startswith("/after/"))
    assert after[0] > top and before <= set(fake.stored)
    assert fake.log_errors == []


def test_reconnection_resends_from_the_mark_and_a_clean_stop_keeps_it(procs, tmp_path, se_key,
                                                                       fakes):
    fake, se, vs = start(procs, tmp_path, se_key, fakes)
    get_many(vs, 100)
    wait_for(lambda: logs(se)["acked"] == 100, 10, "100 acknowledged")
    fake.ack_logs = False
    get_many(vs, 50, prefix="/late/")
    wait_for(lambda: len(fake.stored) == 150, 10, "150 sent")
    for c in fake.open_sessions():      # the session drops; the SE connects again
        c.transport.close()
    wait_for(lambda: len(fake.logs_of(1)) >= 1, 10, "LOGS on the new session")
    assert fake.frames(HELLO)[1]["log_seq"] == 101 and fake.frames(HELLO)[1]["spooled_logs"] == 50
    assert fake.logs_of(1)[0]["first_seq"] == 101
    fake.ack_logs = True
    wait_for(lambda: logs(se)["acked"] == 150, 10, "150 acknowledged")
    assert sorted(fake.duplicate_seqs) == list(range(101, 151))
    se.stop()                            # a clean stop records every ack taken
    assert ack_mark(se.dir) == 150
    se.start()
    wait_for(lambda: len(fake.frames(HELLO)) == 3, 10, "HELLO after the restart")
    assert fake.frames(HELLO)[2]["log_seq"] == 151 and fake.frames(HELLO)[2]["spooled_logs"] == 0
    get_many(vs, 3, prefix="/new/")
    wait_for(lambda: len(fake.stored) == 153, 10, "the new records")
    assert fake.logs_of(2)[0]["first_seq"] > 150 and len(fake.duplicate_seqs) == 50
    assert fake.log_errors == []


def test_a_small_cap_drops_counts_keeps_serving_and_heartbeats_carry_the_episode(
        procs, tmp_path, se_key, fakes):
    fake, se, vs = start(procs, tmp_path, se_key, fakes, extra=["--spool-cap-mb", "1"])
    fake.ack_logs = False
    n = 1200
    get_many(vs, n, pad=1500)   # ~2 KB records: 1 MiB holds about 500; all served
    wait_for(lambda: logs(se)["generated"] == n, 5, "every record generated")
    st = logs(se)
    assert st["dropped"] > 0 and st["spooled"] + st["dropped"] == n, st

    def episode():
        beats = [h.get("logs") for h in fake.frames(HEARTBEAT) if h.get("logs")]
        return beats and beats[-1]["dropped"] == st["dropped"] and beats[-1]
    hb = wait_for(episode, 5, "a HEARTBEAT telling the drops")
    run = hb.pop("run")
    assert re.fullmatch(r"\d+-%d" % se.proc.pid, run), run  # names this process's run
    assert 0 < hb.pop("spooled") <= st["generated"], st     # what waits in the spool
    assert hb == {"dropped": st["dropped"], "drop_episodes": 1, "episode_dropped": st["dropped"],
                  "spool_cap_bytes": 1 << 20}, hb
    assert "log_spool: dropping records (the spool's size cap)" in se.log_text()
    assert se.state() == "CONNECTED"
    fake.ack_logs = True
    wait_for(lambda: logs(se)["spooled"] == 0, 15, "the spool drained")
    assert len(fake.stored) == n - st["dropped"] and fake.duplicates == 0
    get_many(vs, 10, prefix="/again/")
    wait_for(lambda: len(fake.stored) == n - st["dropped"] + 10, 10, "served and delivered again")
    assert logs(se)["dropped"] == st["dropped"]


def test_bad_logs_acks_are_logged_and_harm_nothing(procs, tmp_path, se_key, fakes):
    fake, se, vs = start(procs, tmp_path, se_key, fakes)
    get_many(vs, 20)
    wait_for(lambda: logs(se)["acked"] == 20, 10, "20 acknowledged")
    fake.send_all(LOGS_ACK, {"through_seq": "twenty"})
    fake.send_all(LOGS_ACK, {"through_seq": 10 ** 9})
    fake.send_all(LOGS_ACK, {})
    wait_for(lambda: se.log_text().count("LOGS_ACK refused") == 3, 5, "three refusals logged")
    assert "through_seq 1000000000 is above the last record sent" in se.log_text()
    get_many(vs, 20, prefix="/more/")
    wait_for(lambda: logs(se)["acked"] == 40, 10, "delivery goes on")
    assert len(fake.open_sessions()) == 1 and not fake.frames(BYE)
    assert fake.stored_seqs() == list(range(1, 41)) and fake.duplicates == 0


def test_a_new_log_node_gets_the_records_from_the_mark(procs, tmp_path, se_key, fakes):
    key, pub = se_key
    backend_port, vs = free_port(), free_port()
    procs.backend("http", backend_port, "b1")
    one, two = FakeController(tmp_path, 1, "se-1", pub), FakeController(tmp_path, 2, "se-1", pub)
    fakes.extend([one, two])
    for f in (one, two):
        f.log_node = 1
        f.config = config_payload(3, http_config([backend_port], vs))
    kh = write_known_hosts(tmp_path, one.known_hosts_line(), two.known_hosts_line())
    se = ChannelSE(procs, tmp_path, key, kh, [one.address, two.address]).start()
    wait_for(lambda: acks(one, 3) and acks(two, 3), 10, "both CONFIG_ACKs")
    get_many(vs, 100)
    wait_for(lambda: logs(se)["acked"] == 100, 10, "100 acknowledged by node 1")
    one.ack_logs = False
    get_many(vs, 30, prefix="/late/")
    wait_for(lambda: len(one.stored) == 130, 10, "130 at node 1")
    assert two.frames(LOGS) == []            # only the log node gets records
    one.log_node = two.log_node = 2          # node 2's next WELCOME names itself
    for c in two.open_sessions():
        c.transport.close()
    wait_for(lambda: len(two.frames(LOGS)) >= 1, 10, "LOGS at node 2")
    assert two.frames(LOGS)[0]["first_seq"] == 101   # from the mark: the 30 again
    wait_for(lambda: logs(se)["acked"] == 130, 10, "130 acknowledged")
    frames_at_one = len(one.frames(LOGS))
    get_many(vs, 20, prefix="/new/")
    wait_for(lambda: len(two.stored) == 50, 10, "the new records at node 2")
    assert len(one.frames(LOGS)) == frames_at_one
    assert two.stored_seqs() == list(range(101, 151)) and one.stored_seqs() == list(range(1, 131))
    assert "the log node is now 2 (was 1)" in se.log_text()
    assert one.log_errors == [] and two.log_errors == []
