// dashboard.mjs SCENARIO CONFIG.json: drives the dashboard in headless Chromium (Debian's
// /usr/bin/chromium, through playwright-core from ui/node_modules) against real vigild
// processes that tests/system/test_ui_browser.py started. Prints what it checks as it goes;
// exits 0 when every check held, 1 with the failed check otherwise. Screenshots go to
// CONFIG.shots. Any console error or uncaught page error fails the scenario, except a
// resource-load error for a status the scenario expects (a refused create: 400).
//
// CONFIG: {url, username, password, shots, ...scenario's own fields}.
import { readFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const { chromium } = await import(new URL("../../ui/node_modules/playwright-core/index.mjs", import.meta.url));

const [scenario, configPath] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configPath, "utf8"));
mkdirSync(config.shots, { recursive: true });

const DEADLINE_MS = config.deadline_ms || 20000;
const problems = [];
const expectedStatuses = new Set();
// Network errors (net::ERR_...) a scenario expects, for the URLs this says yes to: a node
// it killed does not answer.
let netErrorExpected = () => false;

function say(text) {
  console.log(`ui: ${text}`);
}

function fail(text) {
  throw new Error(text);
}

// Waits until FN (evaluated in the page) returns a truthy value; fails with WHAT after the deadline.
async function until(page, what, fn, arg, ms = DEADLINE_MS) {
  try {
    const handle = await page.waitForFunction(fn, arg, { timeout: ms, polling: 100 });
    return await handle.jsonValue();
  } catch (err) {
    await page.screenshot({ path: join(config.shots, `${scenario}-failed.png`), fullPage: true });
    fail(`${what}: not seen within ${ms} ms`);
  }
}

async function shot(page, name) {
  const path = join(config.shots, `${scenario}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  say(`screenshot ${path}`);
}

async function openBrowser() {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  });
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: config.viewport || { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const m = /status of (\d+)/.exec(msg.text());
    if (m && expectedStatuses.has(Number(m[1]))) return;
    if (/net::ERR_/.test(msg.text()) && netErrorExpected(msg.location().url || "")) return;
    problems.push(`console error: ${msg.text()} (${msg.location().url || "?"})`);
  });
  return { browser, page };
}

async function login(page, username, password) {
  const response = await page.goto(config.url);
  await page.waitForSelector("#username", { timeout: DEADLINE_MS });
  await page.fill("#username", username);
  await page.fill("#password", password);
  await page.press("#password", "Enter");
  await page.waitForSelector("[data-testid=leader]", { timeout: DEADLINE_MS });
  say(`logged in as ${username}`);
  return response;
}

// The certificate an answer came with, as one comparable string.
async function certificateOf(response) {
  const d = response ? await response.securityDetails() : null;
  return d ? `${d.subjectName}|${d.issuer}|${d.validFrom}|${d.validTo}` : null;
}

// Waits until the banner's part ID (data-testid) contains TEXT.
function bannerHas(page, id, text) {
  return until(page, `banner ${id} showing "${text}"`, ([i, t]) =>
    (document.querySelector(`[data-testid=${i}]`)?.textContent || "").includes(t), [id, text]);
}

// --- scenarios -----------------------------------------------------------------------------

// Login; three nodes and the leader; kill -9 the leader; without a reload: the banner's
// leader, quorum and status change, the old leader's row goes inactive, the events
// CONTROLLER_NODE_LEFT and CONTROLLER_LEADER_FAILOVER arrive, and the status strip shows
// the failover.
async function failover(page) {
  await login(page, config.username, config.password);
  await bannerHas(page, "leader", config.leader_name);
  await until(page, "three nodes in the table", () => document.querySelectorAll("tr[data-node]").length === 3);
  await bannerHas(page, "quorum", "3/3");
  await bannerHas(page, "connection", "live");
  await shot(page, "before");
  await page.evaluate(() => { window.__vigilSamePage = true; });

  process.kill(config.leader_pid, "SIGKILL");
  say(`killed the leader ${config.leader_name} (pid ${config.leader_pid})`);
  const newLeader = await until(page, "a new leader in the banner", ([old, names]) => {
    const t = document.querySelector("[data-testid=leader]")?.textContent || "";
    return names.find((n) => n !== old && t.includes(n)) || null;
  }, [config.leader_name, config.names]);
  say(`banner: new leader ${newLeader}`);
  await bannerHas(page, "quorum", "2/3");
  await until(page, `${config.leader_name}'s row inactive`, (name) => {
    const row = document.querySelector(`tr[data-node="${name}"]`);
    return row && row.textContent.includes("CLUSTER_INACTIVE");
  }, config.leader_name);
  await until(page, "the status strip showing Not Responsive after Ready", () => {
    const segs = [...document.querySelectorAll(".strip .seg")].map((s) => s.textContent);
    const i = segs.lastIndexOf("Not Responsive");
    return i > 0 && segs.slice(0, i).includes("Ready");
  });
  await bannerHas(page, "cluster-status", "Ready");
  await shot(page, "after");

  await page.click('nav a[data-page="events"]');
  await until(page, "CONTROLLER_NODE_LEFT in the timeline", (name) =>
    [...document.querySelectorAll('[data-event="CONTROLLER_NODE_LEFT"]')].some((e) => e.textContent.includes(name)), config.leader_name);
  await until(page, "CONTROLLER_LEADER_FAILOVER in the timeline", (name) =>
    [...document.querySelectorAll('[data-event="CONTROLLER_LEADER_FAILOVER"]')].some((e) => e.textContent.includes(`leader_node=${name}`)), newLeader);
  await page.selectOption("#event-type", "CONTROLLER_LEADER_FAILOVER");
  await until(page, "the type filter showing only failovers", () => {
    const items = [...document.querySelectorAll("[data-event]")];
    return items.length > 0 && items.every((e) => e.dataset.event === "CONTROLLER_LEADER_FAILOVER");
  });
  await page.selectOption("#event-type", "");
  await page.fill("#event-search", config.leader_name);
  await until(page, "the search narrowing the timeline", (name) => {
    const items = [...document.querySelectorAll("[data-event]")];
    return items.length > 0 && items.every((e) => e.textContent.includes(name));
  }, config.leader_name);
  await shot(page, "events");
  if (!(await page.evaluate(() => window.__vigilSamePage === true))) fail("the page reloaded");
  say("no reload: one navigation from login to the end");
}

// A read-only user sees the lists but no New / Edit / Delete.
async function readonly(page) {
  await login(page, config.username, config.password);
  for (const [hash, type] of [["pools", "pool"], ["monitors", "healthmonitor"], ["vs", "virtualservice"], ["se", "serviceengine"]]) {
    await page.click(`nav a[data-page="${hash}"]`);
    await until(page, `the ${type} list`, (t) => {
      const s = document.querySelector(`section.objects[data-type="${t}"]`);
      return s && s.querySelector("table") ? true : null;
    }, type);
    const controls = await page.evaluate((t) => {
      const s = document.querySelector(`section.objects[data-type="${t}"]`);
      return [...s.querySelectorAll("button")].map((b) => b.textContent);
    }, type);
    if (controls.length !== 0) fail(`a read-only user sees write controls on ${hash}: ${controls.join(", ")}`);
    const rows = await page.evaluate((t) => [...document.querySelectorAll(`section.objects[data-type="${t}"] tbody tr`)]
      .filter((r) => !r.querySelector("td.empty")).length, type);
    say(`${hash}: ${rows} object(s) listed, no write controls`);
  }
  await page.click('nav a[data-page="pools"]');
  await until(page, `${config.expect_pool} in the pool list`, (name) =>
    [...document.querySelectorAll('section.objects[data-type="pool"] tbody tr')].some((r) => r.textContent.includes(name)), config.expect_pool);
  await shot(page, "pools");
}

// A create with a bad field shows the API's message next to that field; a good one lands
// in the list; delete removes it.
async function crud(page) {
  await login(page, config.username, config.password);
  await page.click('nav a[data-page="pools"]');
  await page.click('[data-testid="new-pool"]');
  await page.waitForSelector("#f-name");
  await page.fill("#f-name", "ui-pool");
  await page.fill("#f-servers", "127.0.0.1:99999");
  expectedStatuses.add(400);
  await page.click('form.object-form button[type=submit]');
  const message = await until(page, "the API's message next to the servers field", () => {
    const el = document.querySelector('[data-error-for="servers"]');
    return el && el.textContent ? el.textContent : null;
  });
  say(`servers field says: ${message}`);
  if (!/port/.test(message)) fail(`the message does not name the port: ${message}`);
  await shot(page, "bad-field");
  await page.fill("#f-servers", "127.0.0.1:9001\n127.0.0.2:9002 disabled");
  await page.click('form.object-form button[type=submit]');
  await until(page, "ui-pool in the list", () => [...document.querySelectorAll("section.objects tbody tr")].some((r) => r.textContent.includes("ui-pool") && r.textContent.includes("127.0.0.2:9002")));
  say("created ui-pool");
  await page.click('button[aria-label="edit ui-pool"]');
  await page.waitForSelector("#f-lb_algorithm");
  await page.selectOption("#f-lb_algorithm", "LB_ALGORITHM_LEAST_CONNECTIONS");
  await page.click('form.object-form button[type=submit]');
  await until(page, "ui-pool listed with its new algorithm", () => [...document.querySelectorAll("section.objects tbody tr")]
    .some((r) => r.textContent.includes("ui-pool") && r.textContent.includes("LEAST_CONNECTIONS") && r.textContent.includes("127.0.0.2:9002")));
  say("edited ui-pool (PUT kept its servers)");
  page.once("dialog", (d) => d.accept());
  await page.click('button[aria-label="delete ui-pool"]');
  await until(page, "ui-pool gone from the list", () => ![...document.querySelectorAll("section.objects tbody tr")].some((r) => r.textContent.includes("ui-pool")));
  say("deleted ui-pool");
}

// Asks the test to do its fault now (a line "FAULT" on stdout) and waits for its "DONE" on stdin.
function askForFault(what) {
  console.log(`FAULT ${what}`);
  return new Promise((resolve) => {
    let buffered = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (chunk) => {
      buffered += chunk;
      if (buffered.includes("DONE")) {
        process.stdin.pause();
        resolve();
      }
    });
  });
}

// The page is opened on the cluster IP; the leader's host goes down. With no reload and
// no new login, the page reconnects through the cluster IP to the new leader, served with
// the same certificate, and shows it.
async function vip(page) {
  netErrorExpected = (url) => url.includes("/api/stream");   // its node is powered off under it
  const before = await certificateOf(await login(page, config.username, config.password));
  if (!before) fail("no TLS details for the page");
  await bannerHas(page, "leader", config.leader_name);
  await bannerHas(page, "connection", "live");
  await until(page, `the page served by ${config.leader_name}`, (name) =>
    (document.querySelector(".banner-row")?.textContent || "").includes(`via ${name}`), config.leader_name);
  await shot(page, "before");
  await page.evaluate(() => { window.__vigilSamePage = true; });
  await askForFault(`power off ${config.leader_name}`);
  const movedAt = Date.now();
  say(`the leader's host ${config.leader_name} is down and the cluster IP has moved`);
  const newLeader = await until(page, "the banner naming a new leader, via that leader", ([old, names]) => {
    const row = document.querySelector(".banner-row")?.textContent || "";
    const leader = document.querySelector("[data-testid=leader]")?.textContent || "";
    const conn = document.querySelector("[data-testid=connection]")?.textContent || "";
    return names.find((n) => n !== old && leader.includes(n) && row.includes(`via ${n}`) && conn.includes("live")) || null;
  }, [config.leader_name, config.names], 30000);
  say(`reconnected through the cluster IP to the new leader ${newLeader}, ${Date.now() - movedAt} ms after the IP moved`);
  if (await page.$("#password")) fail("the login page came back: the session was lost");
  if (!(await page.evaluate(() => window.__vigilSamePage === true))) fail("the page reloaded");
  const answer = await page.evaluate(async () => (await fetch("/api/session", { headers: { "X-Requested-With": "vigil-ui" } })).status);
  if (answer !== 200) fail(`the session does not hold on the new leader: /api/session answered ${answer}`);
  say("same session on the new leader (/api/session 200)");
  await shot(page, "after");
  // the same address in a second tab now reaches the new leader: same certificate, and the
  // session cookie opens the dashboard there without a login
  const second = await page.context().newPage();
  const after = await certificateOf(await second.goto(config.url));
  if (after !== before) fail(`the certificate changed: ${before} / ${after}`);
  say(`same certificate before and after (${before.split("|")[0]})`);
  await second.waitForSelector("[data-testid=leader]", { timeout: DEADLINE_MS });
  await until(second, "the second tab via the new leader", (name) =>
    (document.querySelector(".banner-row")?.textContent || "").includes(`via ${name}`), newLeader);
  say("a second tab opens on the new leader without a login");
  await second.close();
}

// The node the page talks to dies (no cluster IP): the page marks its data stale, says
// which other nodes were alive and links to them; one link opens a live dashboard there.
async function ownnode(page) {
  const dead = new URL(config.url).origin;
  netErrorExpected = (url) => url.startsWith(dead);
  await login(page, config.username, config.password);
  await bannerHas(page, "quorum", "3/3");
  await bannerHas(page, "connection", "live");
  process.kill(config.own_pid, "SIGKILL");
  say(`killed this page's node ${config.own_name} (pid ${config.own_pid})`);
  await until(page, "the notice naming the other nodes", (names) => {
    const el = document.querySelector("[data-testid=failover-help]");
    return el && names.every((n) => el.textContent.includes(n)) && el.textContent.includes("not current");
  }, config.other_names);
  await bannerHas(page, "data-age", "stale");
  const connection = await page.textContent("[data-testid=connection]");
  if (connection.includes("live")) fail(`the connection still says live: ${connection}`);
  say(`stale data marked, connection: ${connection.trim()}`);
  await shot(page, "notice");
  const links = await page.$$eval("[data-testid=failover-help] a", (as) => as.map((a) => a.href));
  say(`offered: ${links.join(", ")}`);
  if (links.length < config.other_names.length) fail("not every other node is offered");
  await page.click(`[data-testid=failover-help] a >> text=${config.other_names[0]}`);
  await page.waitForSelector("[data-testid=leader], #username", { timeout: DEADLINE_MS });
  if (await page.$("#username")) await login(page, config.username, config.password);
  await bannerHas(page, "connection", "live");
  await until(page, `the page now via ${config.other_names[0]}`, (name) =>
    (document.querySelector(".banner-row")?.textContent || "").includes(`via ${name}`), config.other_names[0]);
  say(`live again via ${config.other_names[0]}`);
}

// A virtual service's page with traffic: health, the four charts (requests, throughput,
// errors, latency), the totals, and its
// newest log records, filtered by status class.
async function vs(page) {
  await login(page, config.username, config.password);
  await until(page, `${config.vs_name} UP on the overview`, (name) => [...document.querySelectorAll("tbody tr")]
    .some((r) => r.textContent.includes(name) && r.textContent.includes("UP")), config.vs_name);
  await until(page, `${config.se_name} in the SE table with its controller node`, (name) => [...document.querySelectorAll("tbody tr")]
    .some((r) => r.textContent.includes(name) && r.textContent.includes("CONNECTED") && /node-\d/.test(r.textContent)), config.se_name);
  await page.click(`a >> text=${config.vs_name}`);
  await until(page, "four charts drawn", () => document.querySelectorAll(".charts .uplot canvas").length === 4);
  const requests = await until(page, "requests counted in the totals", () => {
    const m = /Requests \(5 min\): ([\d,.\s]+)/.exec(document.querySelector(".totals")?.textContent || "");
    const n = m ? Number(m[1].replace(/[^\d]/g, "")) : 0;
    return n > 0 ? n : null;
  });
  say(`totals: ${requests} requests in the last 5 minutes`);
  await until(page, "log records with status 200", () => [...document.querySelectorAll(".vs-page tbody tr")]
    .some((r) => r.textContent.includes("GET") && r.textContent.includes("200")));
  await shot(page, "vs");
  await page.selectOption("#log-status", "5xx");
  await until(page, "the 5xx filter leaving no records", () =>
    (document.querySelector(".vs-page td.empty")?.textContent || "").includes("no records"));
  say("5xx filter: no records");
  await page.click('nav a[data-page="pools"]');
  const server = await until(page, "the pool's server UP as its monitor sees it", () => {
    const el = [...document.querySelectorAll("section.objects[data-type=pool] .server")].find((s) => s.textContent.includes("UP"));
    return el ? el.dataset.server : null;
  });
  say(`pool server ${server}: UP`);
}

// A phone's screen: nothing wider than the screen, the banner and the nav reachable; and
// the keyboard alone moves through the nav and opens a page.
async function small(page) {
  await page.setViewportSize({ width: 390, height: 844 });
  await login(page, config.username, config.password);
  await bannerHas(page, "connection", "live");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 1) fail(`the page is ${overflow} px wider than a 390 px screen`);
  say("390 px wide: no horizontal scrolling");
  await shot(page, "phone");
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.focus('nav a[data-page="overview"]');
  let reached = null;
  for (let i = 0; i < 6 && !reached; i++) {
    await page.keyboard.press("Tab");
    reached = await page.evaluate(() => document.activeElement?.dataset?.page === "events" ? "events" : null);
  }
  if (!reached) fail("Tab did not reach the Events link");
  await page.keyboard.press("Enter");
  await until(page, "the events page opened from the keyboard", () => location.hash === "#/events" && document.querySelector("#event-type"));
  say("keyboard: Tab to Events, Enter opens it");
}

const SCENARIOS = { failover, readonly, crud, vip, ownnode, vs, small };

const { browser, page } = await openBrowser();
let code = 0;
try {
  if (!SCENARIOS[scenario]) fail(`no scenario ${scenario}`);
  await SCENARIOS[scenario](page);
  if (problems.length) fail(problems.join("; "));
  say(`${scenario}: passed`);
} catch (err) {
  console.log(`ui: ${scenario}: FAILED: ${err.message}`);
  if (problems.length) console.log(`ui: also: ${problems.join("; ")}`);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
