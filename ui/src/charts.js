// charts.js: one virtual service's page: its one-second charts (uPlot) of requests,
// throughput, errors and latency (p50, p99) with the cluster's events marked on them, its
// latency percentiles, and its newest access-log records with filters (the analytics API).
import uPlot from "uplot";
import { api } from "./api.js";
import { h, fill, table, fmtTime, fmtNumber, fmtBytes } from "./dom.js";

const WINDOW_S = 300;

function chart(title, series, width) {
  const opts = {
    title,
    width,
    height: 160,
    scales: { x: { time: true } },
    axes: [{}, { size: 60 }],
    legend: { live: false },
    series: [{}, ...series.map(([label, stroke]) => ({ label, stroke, width: 1.5, points: { show: false } }))],
    hooks: { draw: [(u) => drawMarkers(u)] },
  };
  return opts;
}

// Vertical lines at the times of u.markers ([seconds]).
function drawMarkers(u) {
  const ctx = u.ctx;
  ctx.save();
  ctx.strokeStyle = "#c2410c";
  ctx.setLineDash([4, 3]);
  for (const t of u.markers || []) {
    const x = Math.round(u.valToPos(t, "x", true));
    if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
  }
  ctx.restore();
}

// The rows of the series as uPlot's columns, one point per second over the window (a
// second with no row counts 0: the SE sends a row for every second it served).
function columns(series, since, until) {
  const byTime = new Map(series.map((r) => [Math.floor(new Date(r.time).getTime() / 1000), r]));
  const xs = [], req = [], bin = [], bout = [], e4 = [], e5 = [], p50 = [], p99 = [];
  for (let t = since; t <= until; t++) {
    const r = byTime.get(t);
    xs.push(t);
    req.push(r ? r.requests : 0);
    bin.push(r ? r.bytes_in : 0);
    bout.push(r ? r.bytes_out : 0);
    e4.push(r ? r.errors_4xx : 0);
    e5.push(r ? r.errors_5xx : 0);
    p50.push(r && r.latency_p50_ms !== undefined ? r.latency_p50_ms : null);   // no request: no latency
    p99.push(r && r.latency_p99_ms !== undefined ? r.latency_p99_ms : null);
  }
  return { req: [xs, req], bytes: [xs, bin, bout], errors: [xs, e4, e5], latency: [xs, p50, p99] };
}

// The page of virtual service UUID; STATE (main.js) gives the events to mark. Returns
// {el, update(), stop()}.
export function vsPage(uuid, state) {
  const head = h("div", { class: "section-head" }, h("h2", {}, "Virtual service"));
  const totals = h("div", { class: "totals" });
  const plots = h("div", { class: "charts" });
  const logs = h("div", {});
  const statusSel = h("select", { id: "log-status", "aria-label": "status class" },
    ["", "2xx", "3xx", "4xx", "5xx"].map((c) => h("option", { value: c }, c || "any status")));
  const ipInput = h("input", { id: "log-ip", type: "text", placeholder: "client IP", "aria-label": "client IP" });
  const el = h("section", { class: "vs-page" }, head, totals, plots,
    h("div", { class: "section-head" }, h("h3", {}, "Newest log records"),
      h("div", { class: "filters" }, statusSel, ipInput)), logs);
  let charts = null, stopped = false, timer = null;

  async function loadMetrics() {
    const until = Math.floor(Date.now() / 1000) - 1;
    const since = until - WINDOW_S;
    let m;
    try {
      m = await api("GET", `/api/analytics/metrics/virtualservice/${uuid}?step=1&since=${new Date(since * 1000).toISOString()}&until=${new Date(until * 1000).toISOString()}`);
    } catch (err) {
      fill(totals, h("p", { class: "form-error" }, err.message));
      return;
    }
    const vs = (state.snapshot && state.snapshot.virtualservices || []).find((v) => v.uuid === uuid);
    if (vs) fill(head, h("h2", {}, `Virtual service ${vs.name}`));
    fill(totals,
      h("span", {}, `Requests (5 min): ${fmtNumber(m.requests)}`),
      h("span", {}, `4xx: ${fmtNumber(m.errors["4xx"])} · 5xx: ${fmtNumber(m.errors["5xx"])}`),
      h("span", {}, `In ${fmtBytes(m.bytes_in)} · out ${fmtBytes(m.bytes_out)}`),
      h("span", {}, `Latency p50 ${fmtNumber(m.latency_ms.p50, 1)} ms · p90 ${fmtNumber(m.latency_ms.p90, 1)} ms · p99 ${fmtNumber(m.latency_ms.p99, 1)} ms`),
      m.unreachable && m.unreachable.length ? h("span", { class: "badge bad" }, `nodes not answering: ${m.unreachable.join(", ")}`) : null);
    const data = columns(m.series || [], since, until);
    const markers = state.events.map((e) => new Date(e.report_timestamp).getTime() / 1000).filter((t) => t >= since);
    const width = Math.max(280, Math.min(900, plots.clientWidth || 600));
    if (charts === null) {
      charts = [
        new uPlot(chart("Requests per second", [["requests", "#2563eb"]], width), data.req, plots),
        new uPlot(chart("Throughput (bytes per second)", [["in", "#059669"], ["out", "#7c3aed"]], width), data.bytes, plots),
        new uPlot(chart("Errors per second", [["4xx", "#d97706"], ["5xx", "#dc2626"]], width), data.errors, plots),
        new uPlot(chart("Latency (ms)", [["p50", "#0891b2"], ["p99", "#be185d"]], width), data.latency, plots),
      ];
    } else {
      charts[0].setData(data.req);
      charts[1].setData(data.bytes);
      charts[2].setData(data.errors);
      charts[3].setData(data.latency);
    }
    for (const c of charts) { c.markers = markers; c.redraw(false); }
  }

  async function loadLogs() {
    const q = new URLSearchParams({ page_size: "50" });
    if (statusSel.value) q.set("status_class", statusSel.value);
    if (ipInput.value.trim()) q.set("client_ip", ipInput.value.trim());
    try {
      const body = await api("GET", `/api/analytics/logs/virtualservice/${uuid}?${q}`);
      fill(logs, table([
        { title: "Time", cell: (r) => fmtTime(r.timestamp) },
        { title: "Client", cell: (r) => `${r.client_ip}:${r.client_port}` },
        { title: "Request", cell: (r) => `${r.method || ""} ${r.uri || ""}` },
        { title: "Status", cell: (r) => String(r.status), class: "num" },
        { title: "Server", cell: (r) => r.server_ip ? `${r.server_ip}:${r.server_port}` : "—" },
        { title: "Total", cell: (r) => `${fmtNumber(r.total_ms, 1)} ms`, class: "num" },
        { title: "SE / seq", cell: (r) => `${r.se_name} #${r.seq}` },
      ], body.results || [], "no records in this range"));
    } catch (err) {
      fill(logs, h("p", { class: "form-error", role: "alert" }, err.message));
    }
  }

  statusSel.addEventListener("change", loadLogs);
  ipInput.addEventListener("change", loadLogs);
  async function tick() {
    if (stopped) return;
    await loadMetrics();
    await loadLogs();
    if (!stopped) timer = setTimeout(tick, 2000);
  }
  tick();
  return {
    el,
    stop() {
      stopped = true;
      clearTimeout(timer);
      if (charts) for (const c of charts) c.destroy();
    },
  };
}
