// The harness's capture of what a worker writes: log lines through a tail consumer worker and
// Analytics Engine data points through the recording binding. Proven with a tiny inline worker
// that logs objects and writes points the way the gateway does (env[name].writeDataPoint).

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { Miniflare } from "miniflare";
import { observedWorkers, capture, startObservedGateway, config, closedPort } from "./harness.mjs";

const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

// Logs an access-like object, a nested object and a plain string line; writes the point the
// request's query describes (`?point=<json>`), or a default one; answers what happened.
const SCRIPT = `
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    console.log({ type: "access", path: url.pathname, status: 200, nested: { a: [1, "x"] }, none: null });
    console.log("a plain line", 42);
    console.error({ type: "failure", reason: "for the test" });
    const binding = env[url.searchParams.get("binding") || "GATEWAY_METRICS"];
    if (!binding) return new Response("no binding");
    const point = url.searchParams.has("point")
      ? JSON.parse(url.searchParams.get("point"))
      : { indexes: [url.pathname], blobs: ["route-a", "GET", "2xx"], doubles: [200, 1.5] };
    try {
      binding.writeDataPoint(point);
      return new Response("written");
    } catch (e) {
      return new Response("refused: " + e.message);
    }
  },
};
`;

async function observed(options) {
  const mf = new Miniflare({
    workers: observedWorkers({ modules: true, script: SCRIPT, compatibilityDate: "2026-07-01" }, options),
  });
  cleanup.push(() => mf.dispose());
  await mf.ready;
  return { mf, cap: capture(mf), get: (path) => mf.dispatchFetch(new URL(path, "http://observed.test")) };
}

test("logged objects arrive as structured values, one entry per console call, with their request", async () => {
  const { cap, get } = await observed();
  assert.equal(await (await get("/one")).text(), "written");
  assert.equal(await (await get("/two")).text(), "written");
  const lines = await cap.lines("access", { until: (l) => l.length >= 2 });
  assert.deepEqual(lines.map((l) => l.path).sort(), ["/one", "/two"]);
  assert.deepEqual(lines[0].nested, { a: [1, "x"] }, "an object, not inspect text");
  assert.equal(lines[0].none, null);
  const logs = await cap.logs({ until: (l) => l.length >= 6 });
  assert.equal(logs.length, 6, "three entries per request; data points are not among the logs");
  const one = logs.filter((l) => l.request?.url === "http://observed.test/one");
  assert.deepEqual(
    one.map((l) => [l.level, l.message]),
    [
      ["log", [{ type: "access", path: "/one", status: 200, nested: { a: [1, "x"] }, none: null }]],
      ["log", ["a plain line", 42]],
      ["error", [{ type: "failure", reason: "for the test" }]],
    ],
  );
  assert.deepEqual(
    (await cap.lines("failure")).map((l) => l.reason),
    [],
    "lines() keeps console.log entries only",
  );
  const items = await cap.items({ until: (i) => i.length >= 2 });
  // One trace item per invocation (Miniflare leaves scriptName null locally).
  assert.equal(items.length, 2);
  assert.ok(items.every((i) => i.outcome === "ok" && i.exceptions.length === 0), JSON.stringify(items));
});

test("data points written through the binding are recorded in order, as written", async () => {
  const { cap, get } = await observed();
  await get("/a");
  const point = { indexes: ["r"], blobs: ["x", "é".repeat(10)], doubles: [1, 0.25, 1e6] };
  assert.equal(await (await get("/b?point=" + encodeURIComponent(JSON.stringify(point)))).text(), "written");
  const points = await cap.dataPoints({ until: (p) => p.length >= 2 });
  assert.equal(points.length, 2);
  const byIndex = Object.fromEntries(points.map((p) => [p.indexes[0], p]));
  assert.deepEqual(byIndex["/a"], { indexes: ["/a"], blobs: ["route-a", "GET", "2xx"], doubles: [200, 1.5] });
  assert.deepEqual(byIndex["r"], point);
});

test("the recording binding refuses points Analytics Engine would refuse", async () => {
  const { cap, get } = await observed();
  const refused = async (point) => (await get("/p?point=" + encodeURIComponent(JSON.stringify(point)))).text();
  assert.match(await refused({ indexes: ["x".repeat(97)] }), /^refused: .*96 bytes/);
  assert.match(await refused({ indexes: ["a", "b"] }), /^refused: .*one index/);
  assert.match(await refused({ blobs: Array(21).fill("b") }), /^refused: .*20 blobs/);
  assert.match(await refused({ blobs: ["x".repeat(10000), "y".repeat(6385)] }), /^refused: .*16 KB/);
  assert.match(await refused({ doubles: Array(21).fill(1) }), /^refused: .*20 doubles/);
  assert.match(await refused({ doubles: ["1"] }), /^refused: .*finite numbers/);
  assert.equal(await refused({ indexes: ["x".repeat(96)], blobs: ["x".repeat(16384)] }), "written");
  const points = await cap.dataPoints({ until: (p) => p.length >= 1 });
  assert.equal(points.length, 1, "refused points are not recorded");
});

test("a failing binding throws on every write, and an absent one is absent", async () => {
  const failing = await observed({ metricsFail: true });
  assert.equal(await (await failing.get("/x")).text(), "refused: Analytics Engine binding unavailable (test)");
  await failing.cap.lines("access");
  assert.deepEqual(await failing.cap.dataPoints({ timeoutMs: 300 }), []);

  const none = await observed({ metricsBinding: null });
  assert.equal(await (await none.get("/x")).text(), "no binding");

  const renamed = await observed({ metricsBinding: "MY_METRICS" });
  assert.equal(await (await renamed.get("/x?binding=MY_METRICS")).text(), "written");
  assert.equal(await (await renamed.get("/x")).text(), "no binding");
  assert.equal((await renamed.cap.dataPoints()).length, 1);
});

test("clear forgets what was captured", async () => {
  const { cap, get } = await observed();
  await get("/before");
  await cap.lines("access");
  await cap.clear();
  assert.deepEqual(await cap.items({ timeoutMs: 300 }), []);
  await get("/after");
  const lines = await cap.lines("access");
  assert.deepEqual(lines.map((l) => l.path), ["/after"]);
});

test("the built gateway runs observed: its own lines are captured, and the bindings do not disturb it", async () => {
  const port = await closedPort();
  const gw = await startObservedGateway({
    routes: config({
      upstreams: { down: { targets: [{ url: `http://127.0.0.1:${port}` }] } },
      routes: [{ id: "down", path: "/down", upstream: "down", auth: "none" }],
    }),
  });
  cleanup.push(() => gw.close());
  const r = await gw.fetch("/down");
  assert.equal(r.status, 502);
  assert.equal((await r.json()).code, "upstream_unreachable");
  const logs = await gw.capture.logs({ until: (l) => l.some((e) => e.level === "warn") });
  const warn = logs.find((e) => e.level === "warn");
  assert.ok(warn, JSON.stringify(logs));
  assert.equal(warn.request.url, "http://gateway.test/down");
  assert.equal(JSON.parse(warn.message[0]).event, "upstream_unreachable");
});
