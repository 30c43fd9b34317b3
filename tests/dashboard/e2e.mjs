// e2e.mjs - the dashboard end to end: a private redis-server, the built
// weft-scheduler (with --http and an API token) and weft-worker, and the
// page in headless Chromium driven over the Chrome DevTools Protocol.
//
// The test submits a run of two noop steps (the first waits 1.5 s) through
// the API, opens the page with the token in its fragment, clicks the run in
// the runs table and watches the DAG: the first step must be seen running
// and then every step must turn green (status success, the success colour).
// A screenshot of the final page is kept as OUT/dashboard.png.
//
// Node 20's WebSocket (--experimental-websocket) talks CDP, so there is no
// npm dependency. A missing chromium or redis-server is a failure, never a
// skip.
//
// usage: node --experimental-websocket e2e.mjs BUILD_DIR OUT_DIR [CHROMIUM]

import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

const [buildDir, outDir, chromiumBin = "chromium"] = process.argv.slice(2);
if (!buildDir || !outDir) {
  console.error("usage: e2e.mjs BUILD_DIR OUT_DIR [CHROMIUM]");
  process.exit(2);
}
const TOKEN = "dashboard-e2e-token-0123";
const HMAC = "dashboard-e2e-signing-key-0123456789";
const SUCCESS_RGB = "rgb(46, 157, 80)"; // --success in index.html
const WORKFLOW = `name: dashboard-e2e
steps:
  - id: wait
    type: noop
    params:
      delay_ms: 1500
  - id: after
    type: noop
    dependencies: [wait]
`;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "weft-dash-"));
const children = [];
let failed = false;

function log(...a) {
  console.log(new Date().toISOString(), ...a);
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function start(name, bin, args, env) {
  const out = fs.openSync(path.join(tmp, `${name}.log`), "a");
  const p = spawn(bin, args, {
    env: { ...process.env, ...env },
    stdio: ["ignore", out, out],
  });
  p.on("error", (e) => {
    log(`${name}: cannot start ${bin}: ${e.message}`);
    failed = true;
  });
  children.push({ name, p });
  return p;
}

async function until(what, fn, timeoutMs = 20000, stepMs = 50) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(stepMs);
  }
  throw new Error(`timed out waiting for ${what}${last ? ": " + last.message : ""}`);
}

function redisPing(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.on("error", () => resolve(false));
    s.on("connect", () => s.write("PING\r\n"));
    s.on("data", (d) => {
      resolve(d.toString().startsWith("+PONG"));
      s.destroy();
    });
  });
}

class Cdp {
  constructor(url) {
    this.ws = new WebSocket(url);
    this.id = 0;
    this.waiting = new Map();
    this.ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.id && this.waiting.has(m.id)) {
        const { resolve, reject } = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        if (m.error) reject(new Error(m.error.message));
        else resolve(m.result);
      }
    };
  }
  open() {
    return new Promise((resolve, reject) => {
      this.ws.onopen = resolve;
      this.ws.onerror = () => reject(new Error("CDP connection failed"));
    });
  }
  send(method, params = {}, sessionId) {
    const id = ++this.id;
    this.ws.send(JSON.stringify({ id, method, params, sessionId }));
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
    });
  }
}

async function main() {
  const redisPort = await freePort();
  const httpPort = await freePort();
  const workerPort = await freePort();
  const base = `http://127.0.0.1:${httpPort}`;

  start("redis", "redis-server", [
    "--port", String(redisPort), "--bind", "127.0.0.1", "--save", "",
    "--appendonly", "no", "--dir", tmp, "--hz", "100",
  ]);
  await until("redis", () => redisPing(redisPort));
  const env = {
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    WEFT_HMAC_KEY: HMAC,
  };
  start("scheduler", path.join(buildDir, "scheduler/weft-scheduler"),
    ["--http", `127.0.0.1:${httpPort}`], { ...env, WEFT_API_TOKEN: TOKEN });
  start("worker", path.join(buildDir, "worker/weft-worker"),
    ["--http", `127.0.0.1:${workerPort}`, "--queues", "default"], env);
  await until("scheduler ready", async () =>
    (await fetch(`${base}/readyz`)).status === 200);
  await until("worker ready", async () =>
    (await fetch(`http://127.0.0.1:${workerPort}/readyz`)).status === 200);
  log("system up: redis", redisPort, "http", httpPort);

  // Chromium with a DevTools port it picks itself.
  const profile = path.join(tmp, "chrome");
  fs.mkdirSync(profile);
  start("chromium", chromiumBin, [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    "--remote-debugging-port=0", `--user-data-dir=${profile}`,
    "--window-size=1200,800", "about:blank",
  ]);
  const portFile = path.join(profile, "DevToolsActivePort");
  const [devPort, devPath] = await until("chromium DevTools", () =>
    fs.existsSync(portFile) &&
      fs.readFileSync(portFile, "utf8").trim().split("\n").length === 2 &&
      fs.readFileSync(portFile, "utf8").trim().split("\n"), 30000);
  const cdp = new Cdp(`ws://127.0.0.1:${devPort}${devPath}`);
  await cdp.open();
  const { targetId } = await cdp.send("Target.createTarget", { url: "about:blank" });
  const { sessionId } = await cdp.send("Target.attachToTarget",
    { targetId, flatten: true });
  const page = (m, p) => cdp.send(m, p, sessionId);
  await page("Page.enable");
  await page("Runtime.enable");
  await page("Emulation.setDeviceMetricsOverride",
    { width: 1200, height: 800, deviceScaleFactor: 1, mobile: false });
  const evaluate = async (expr) => {
    const r = await page("Runtime.evaluate",
      { expression: expr, returnByValue: true });
    if (r.exceptionDetails) throw new Error(r.exceptionDetails.text);
    return r.result.value;
  };

  // The page first, so it is watching when the run starts.
  await page("Page.navigate", { url: `${base}/#token=${TOKEN}` });
  await until("page live", () =>
    evaluate("document.getElementById('conn').textContent === 'live'"));

  const res = await fetch(`${base}/v1/runs`, {
    method: "POST",
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify({ definition: WORKFLOW, task: { from: "e2e" } }),
  });
  if (res.status !== 202) throw new Error(`submit: HTTP ${res.status}`);
  const { run } = await res.json();
  log("submitted run", run);

  const rowSel = JSON.stringify(`tr.run[data-run="${run}"]`);
  await until("the run in the runs table", () =>
    evaluate(`!!document.querySelector(${rowSel})`));
  await evaluate(`document.querySelector(${rowSel}).click()`);

  const seen = new Set();
  const final = await until("every step green", async () => {
    const steps = await evaluate(`Array.from(document.querySelectorAll(
        '#dag .step')).map(e => ({id: e.dataset.step,
        status: e.dataset.status, border: getComputedStyle(e).borderTopColor}))`);
    for (const s of steps) seen.add(`${s.id}:${s.status}`);
    const ids = steps.map((s) => s.id).sort().join(",");
    return ids === "after,wait" &&
      steps.every((s) => s.status === "success" && s.border === SUCCESS_RGB) &&
      steps;
  }, 30000, 100);
  log("steps seen:", [...seen].join(" "));
  if (!seen.has("wait:running") && !seen.has("wait:queued"))
    throw new Error("never saw the first step before it finished");
  for (const s of final)
    if (s.border !== SUCCESS_RGB) throw new Error(`${s.id} is not green`);

  // The run's header and its timeline say success too.
  const head = await until("run header success", () =>
    evaluate(`(function () { var h = document.getElementById('runhead');
      return h.dataset.run === ${JSON.stringify(run)} &&
        h.dataset.status === 'success' && h.dataset.status; })()`));
  const bars = await evaluate(
    "document.querySelectorAll('#gantt .bar[data-status=success]').length");
  if (bars !== 2) throw new Error(`timeline shows ${bars} finished bars, want 2`);
  log("run header:", head, "timeline bars:", bars);

  fs.mkdirSync(outDir, { recursive: true });
  const shot = await page("Page.captureScreenshot", { format: "png" });
  const file = path.join(outDir, "dashboard.png");
  fs.writeFileSync(file, Buffer.from(shot.data, "base64"));
  log("screenshot", file);
  cdp.ws.close();
}

async function cleanup() {
  for (const { p } of children.reverse()) {
    if (p.exitCode === null && p.signalCode === null) p.kill("SIGTERM");
  }
  await sleep(500);
  for (const { p } of children) {
    if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  }
}

const timer = setTimeout(() => {
  log("overall timeout");
  failed = true;
  cleanup().then(() => process.exit(1));
}, 120000);

main().catch((e) => {
  failed = true;
  log("FAILED:", e.message);
  for (const n of ["scheduler", "worker"]) {
    const f = path.join(tmp, `${n}.log`);
    if (fs.existsSync(f)) console.log(`---- ${n}.log\n` + fs.readFileSync(f, "utf8"));
  }
}).finally(async () => {
  clearTimeout(timer);
  await cleanup();
  fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(failed ? 1 : 0);
});
