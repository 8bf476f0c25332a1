// stream.js: the live view of the cluster from GET /api/stream (Server-Sent Events). It
// keeps one EventSource, resumes after the last event id it saw (so a reconnection neither
// misses nor repeats an event), and says how live its data is:
//   "connecting"   - before the first snapshot;
//   "live"         - a snapshot arrived within STALE_MS;
//   "reconnecting" - the connection broke; it tries again by itself (through the cluster IP
//                    that reaches whichever node holds it now);
//   "stale"        - no snapshot for STALE_MS although the connection looks open (a hung
//                    node): the data shown is old; it reconnects.
// What it learned is given to the callbacks; it never shows anything itself.

const STALE_MS = 3500;      // snapshots come every second
const RETRY_MIN_MS = 300;
const RETRY_MAX_MS = 3000;

export const CONN_STATES = ["connecting", "live", "reconnecting", "stale"];

export class LiveStream {
  // CALLBACKS: onSnapshot(snapshot, receivedAtMs), onEvent(event, seq), onGap(info),
  // onState(state, detail), onAuthLost().
  constructor(callbacks) {
    this.cb = callbacks;
    this.source = null;
    this.lastId = null;
    this.lastSnapshotAt = 0;
    this.state = "connecting";
    this.retryMs = RETRY_MIN_MS;
    this.retryTimer = null;
    this.failures = 0;
    this.watchdog = setInterval(() => this.check(), 500);
  }

  setState(state, detail) {
    if (state === this.state && !detail) return;
    this.state = state;
    this.cb.onState(state, detail || "");
  }

  open() {
    this.close();
    const url = this.lastId !== null ? `/api/stream?last_event_id=${encodeURIComponent(this.lastId)}` : "/api/stream";
    const source = new EventSource(url, { withCredentials: true });
    this.source = source;
    source.addEventListener("snapshot", (m) => {
      if (source !== this.source) return;
      let snap;
      try { snap = JSON.parse(m.data); } catch { return; }
      this.lastSnapshotAt = Date.now();
      this.retryMs = RETRY_MIN_MS;
      this.failures = 0;
      this.cb.onSnapshot(snap, this.lastSnapshotAt);
      this.setState("live");
    });
    source.addEventListener("event", (m) => {
      if (source !== this.source) return;
      let event;
      try { event = JSON.parse(m.data); } catch { return; }
      if (m.lastEventId) this.lastId = m.lastEventId;
      this.cb.onEvent(event, Number(m.lastEventId));
    });
    source.addEventListener("gap", (m) => {
      if (source !== this.source) return;
      try { this.cb.onGap(JSON.parse(m.data)); } catch { /* ignored: a malformed notice */ }
    });
    source.onerror = () => {
      if (source !== this.source) return;
      this.broken();
    };
  }

  // The connection broke: close it and try again after a short, growing pause. A refusal
  // (401: the session ended) shows as an error too; the caller's session check tells.
  broken() {
    this.close();
    this.failures++;
    this.setState("reconnecting", `attempt ${this.failures}`);
    if (this.failures === 2 && this.cb.onAuthLost) this.cb.onAuthLost();
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), this.retryMs);
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
  }

  check() {
    if (this.source === null) return;
    if (this.lastSnapshotAt !== 0 && Date.now() - this.lastSnapshotAt > STALE_MS) {
      this.setState("stale", "no snapshot for " + Math.round((Date.now() - this.lastSnapshotAt) / 1000) + " s");
      this.broken();
    }
  }

  close() {
    if (this.source !== null) {
      this.source.close();
      this.source = null;
    }
  }

  stop() {
    this.close();
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdog);
  }
}
