"""vigil-se's per-second metrics (issue 13, "Metrics without a gap"; src/se/vs_metrics.c):
each second's requests per virtual service become one METRICS record, spooled in
DIR/spool-metrics and delivered to the log node (a fake controller, fake_controller.py),
which answers METRICS_ACK. The counts add up to the requests made; they wait in the spool
while the log node does not acknowledge, survive kill -9 of the SE, and arrive once."""
import time

from conftest import wait_for
from test_se_log_delivery import get_many, spool_seqs, start


def total(fake, field="requests"):
    with fake.lock:
        return sum(r[field] for r in fake.metrics.values())


def spooled_metrics(se_dir):
    return spool_seqs(se_dir, "spool-metrics")


def next_second():
    """Waits (on the clock, with a deadline) until a new wall-clock second starts."""
    now = int(time.time())
    wait_for(lambda: int(time.time()) > now, 2, "the next second")


def test_each_seconds_counts_add_up_to_the_requests_made(procs, tmp_path, se_key, fakes):
    fake, se, vs = start(procs, tmp_path, se_key, fakes)
    bursts = [120, 80, 40]
    for n in bursts:
        get_many(vs, n)
        next_second()
    wait_for(lambda: total(fake) == sum(bursts), 10, "every request counted at the log node")
    with fake.lock:
        records = [fake.metrics[s] for s in sorted(fake.metrics)]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert len({r["timestamp"] for r in records}) == len(records) >= len(bursts)
    for r in records:
        assert r["se_name"] == "se-1" and r["vs_name"] == "web" and r["interval_ms"] == 1000, r
        assert r["timestamp"].endswith(".000Z"), r["timestamp"]
        classes = r["status_classes"]
        assert classes["2xx"] == r["requests"] and sum(classes.values()) == r["requests"], r
        assert sum(r["latency_histogram"].values()) == r["requests"], r
        assert r["bytes_out"] > 0 and r["bytes_in"] > 0, r
    # the access-log records are the LOGS frames' business: one per request, none of these
    wait_for(lambda: len(fake.stored) == sum(bursts), 10, "the access-log records")
    assert all("requests" not in r for r in fake.stored.values())
    assert fake.log_errors == [] and fake.metrics_duplicates == 0
    # acknowledged: the metrics spool's ack mark reaches the last seq
    mark = se.dir / "spool-metrics" / "acked"
    wait_for(lambda: mark.exists() and int(mark.read_text()) == len(records), 10,
             "the metrics spool's ack mark")


def test_unacknowledged_metrics_wait_survive_kill_9_and_arrive_once(procs, tmp_path, se_key,
                                                                   fakes):
    fake, se, vs = start(procs, tmp_path, se_key, fakes)
    fake.ack_logs = False
    get_many(vs, 50)
    next_second()
    get_many(vs, 30)
    next_second()
    wait_for(lambda: len(spooled_metrics(se.dir)) >= 2, 10, "two seconds of metrics spooled")
    wait_for(lambda: total(fake) == 80, 10, "sent, though not acknowledged")
    on_disk = spooled_metrics(se.dir)
    se.proc.kill()
    se.log.close()
    with fake.lock:
        fake.metrics.clear()     # as if the log node had lost what it never acknowledged
    fake.ack_logs = True
    se.start()
    wait_for(lambda: set(on_disk) <= set(fake.metrics), 15, "the spooled metrics sent again")
    assert total(fake) == 80, total(fake)
    top = max(fake.metrics)
    get_many(vs, 10, prefix="/after/")
    wait_for(lambda: total(fake) == 90, 10, "the requests after the restart counted")
    assert min(s for s in fake.metrics if s not in on_disk) > top   # seqs continue, none reused
    assert fake.log_errors == []
