// The completion point in workerd: one access line and one data point per request on every
// path, credentials never in any line, sampling that keeps errors, and a metrics binding that
// fails without failing requests.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startObservedGateway, startUpstream, config, hs256Token } from "./harness.mjs";

const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

const SECRET = "an HMAC secret for the observability tests, over 32 bytes";

async function gateway({ observability = {}, metricsFail = false, metricsBinding } = {}) {
  const upstream = await startUpstream((req, res) => {
    res.setHeader("content-type", "application/json");
    res.setHeader("cache-control", "max-age=60");
    res.end(JSON.stringify({ ok: true }));
  });
  cleanup.push(() => upstream.close());
  const routes = config({
    settings: { admin: { path: "/__gateway", token_secret: "ADMIN_TOKEN" } },
    observability,
    upstreams: { u: { targets: [{ url: upstream.url }] } },
    auth: {
      users: { type: "jwt", issuer: "https://id.test/", audiences: ["api"], secret: "JWT_SECRET", algorithms: ["HS256"], token_query: "access_token" },
      keys: { type: "api_key", header: "x-api-key" },
      qkeys: { type: "api_key", query: "key" },
    },
    rate_limits: { one: { key: "ip", limit: 1, window_s: 60 } },
    routes: [
      { id: "direct", path: "/direct", upstream: "u", auth: "none" },
      { id: "cached", path: "/cached", upstream: "u", auth: "none", cache: { ttl_s: 60 } },
      { id: "jwt", path: "/jwt", upstream: "u", auth: ["users"] },
      { id: "key", path: "/key", upstream: "u", auth: ["keys", "qkeys"] },
      { id: "limited", path: "/limited", upstream: "u", auth: "none", rate_limits: ["one"] },
      { id: "quiet", path: "/quiet", upstream: "u", auth: "none", observability: { log_sample_rate: 0, metrics: false } },
    ],
  });
  const gw = await startObservedGateway({
    routes,
    bindings: { JWT_SECRET: SECRET, ADMIN_TOKEN: "admin-token-for-tests-thirty-two-bytes" },
    metricsFail,
    metricsBinding,
  });
  cleanup.push(() => gw.close());
  return gw;
}

const ip = (n) => ({ "cf-connecting-ip": `203.0.113.${n}` });

test("every path ends in one access line and one data point", async () => {
  const gw = await gateway();
  const sent = [
    ["/direct", 200],
    ["/cached", 200],
    ["/cached", 200],
    ["/jwt", 401],
    ["/limited", 200],
    ["/limited", 429],
    ["/nowhere", 404],
    ["/__gateway/health", 200],
  ];
  for (const [path, status] of sent) {
    const r = await gw.fetch(path, { headers: ip(7) });
    await r.arrayBuffer();
    assert.equal(r.status, status, path);
  }
  const lines = await gw.capture.lines("access", { until: (l) => l.length >= sent.length });
  assert.equal(lines.length, sent.length, "exactly one line per request");
  const by = (path) => lines.filter((l) => l.path === path);
  assert.deepEqual(by("/cached").map((l) => [l.source, l.cache]).sort(), [["cache", "hit"], ["upstream", "miss"]]);
  const [refused] = by("/jwt");
  assert.equal(refused.code, "missing_credentials");
  assert.equal(refused.source, "gateway");
  assert.deepEqual(by("/limited").map((l) => l.rate_limit).sort(), ["allowed", "limited:one"]);
  const [missing] = by("/nowhere");
  assert.equal(missing.route, null);
  assert.equal(missing.code, "route_not_found");
  const [direct] = by("/direct");
  assert.equal(direct.route, "direct");
  assert.equal(direct.upstream, "u");
  assert.equal(direct.attempts, 1);
  assert.match(direct.trace_id, /^[0-9a-f]{32}$/);
  assert.match(direct.span_id, /^[0-9a-f]{16}$/);
  assert.equal(typeof direct.latency_ms, "number");
  for (const l of lines) assert.equal(l.type, "access");

  const points = await gw.capture.dataPoints({ until: (p) => p.length >= sent.length });
  assert.equal(points.length, sent.length);
  const point = points.find((p) => p.indexes[0] === "direct");
  assert.deepEqual(point.blobs.slice(0, 6), ["direct", "GET", "2xx", "200", "upstream", ""]);
  assert.equal(point.doubles[0], 200);
});

test("no credential, in any form, reaches any line the gateway writes", async () => {
  const gw = await gateway({ observability: { access_log: { request_headers: ["x-client-version"], redact_query: ["sig"] } } });
  const token = await hs256Token(SECRET, "someone");
  const secrets = [token, "gwk_notarealkeybutsecret", "cookie-secret-value", "sig-secret-value", "query-token-secret"];
  const requests = [
    ["/jwt", { authorization: `Bearer ${token}` }],
    ["/jwt?access_token=query-token-secret", {}],
    ["/key", { "x-api-key": "gwk_notarealkeybutsecret", cookie: "session=cookie-secret-value" }],
    ["/key?key=gwk_notarealkeybutsecret", {}],
    ["/direct?sig=sig-secret-value&page=2", { "x-client-version": "7.1" }],
    ["/nowhere?access_token=query-token-secret", {}],
    // The gateway's own lookup ignores a leading `?` and some upstreams read `;` as `&`.
    ["/key??key=gwk_notarealkeybutsecret", {}],
    ["/direct?page=1;sig=sig-secret-value", { "x-client-version": `7.1 ${token}` }],
  ];
  for (const [path, headers] of requests) await (await gw.fetch(path, { headers })).arrayBuffer();
  const logs = await gw.capture.logs({ until: (l) => l.filter((x) => x.message[0]?.type === "access").length >= requests.length });
  const text = JSON.stringify(logs.map((l) => l.message));
  for (const s of secrets) assert.ok(!text.includes(s), `a log line carries ${s.slice(0, 12)}…`);
  const access = logs.map((l) => l.message[0]).filter((m) => m?.type === "access");
  const direct = access.find((l) => l.path === "/direct");
  assert.equal(direct.query, "sig=REDACTED&page=2");
  assert.deepEqual(direct.request_headers, { "x-client-version": "7.1" });
  assert.equal(access.find((l) => l.path === "/jwt" && l.status === 200)?.consumer, "jwt/users/someone");
});

test("sampling at rate 0 keeps every gateway error and nothing else; routes can be quiet", async () => {
  const gw = await gateway({ observability: { access_log: { sample_rate: 0 } } });
  for (const path of ["/direct", "/direct", "/jwt", "/nowhere", "/quiet"]) await (await gw.fetch(path)).arrayBuffer();
  const lines = await gw.capture.lines("access", { until: (l) => l.length >= 2, timeoutMs: 1500 });
  assert.deepEqual(lines.map((l) => l.status).sort(), [401, 404]);
  const points = await gw.capture.dataPoints({ until: (p) => p.length >= 4 });
  assert.equal(points.length, 4, "metrics keep their own rate (1); the quiet route writes none");
});

test("a failing metrics binding never fails a request and is counted on the health endpoint", async () => {
  const gw = await gateway({ metricsFail: true, observability: { metrics: { binding: "GATEWAY_METRICS" } } });
  for (let i = 0; i < 3; i++) {
    const r = await gw.fetch("/direct");
    assert.equal(r.status, 200);
    await r.arrayBuffer();
  }
  const health = await (await gw.fetch("/__gateway/health", { headers: { authorization: "Bearer admin-token-for-tests-thirty-two-bytes" } })).json();
  assert.ok(health.isolate_counters.metrics_failures >= 3, JSON.stringify(health.isolate_counters));
});

test("without the default binding nothing is written and nothing is counted", async () => {
  const gw = await gateway({ metricsBinding: null });
  assert.equal((await gw.fetch("/direct")).status, 200);
  const health = await (await gw.fetch("/__gateway/health", { headers: { authorization: "Bearer admin-token-for-tests-thirty-two-bytes" } })).json();
  assert.equal(health.isolate_counters.metrics_failures, 0);
  const lines = await gw.capture.lines("access", { until: (l) => l.length >= 1 });
  assert.ok(lines.length >= 1, "the access log does not depend on the binding");
});
