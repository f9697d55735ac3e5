// Forwarding to real upstreams: bodies, header hygiene, ids, timeouts, failures, retries,
// circuit breaking, service bindings.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startGateway, startUpstream, config, closedPort, sleep } from "./harness.mjs";

const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function setup(upstreamSpec, routeExtra = {}, settings = {}, gatewayOptions = {}) {
  const gw = await startGateway({
    routes: config({
      settings,
      upstreams: { u: upstreamSpec },
      routes: [{ id: "r", path: "/{*p}", upstream: "u", auth: "none", ...routeExtra }],
    }),
    ...gatewayOptions,
  });
  cleanup.push(() => gw.close());
  return gw;
}

async function upstream(handler, opts) {
  const up = await startUpstream(handler, opts);
  cleanup.push(() => up.close());
  return up;
}

test("spoofed forwarding headers are replaced by what the gateway knows", async () => {
  const up = await upstream();
  const gw = await setup({ targets: [{ url: up.url }] });
  const r = await gw.fetch("http://api.example.com/x", {
    headers: {
      "cf-connecting-ip": "203.0.113.9",
      "x-forwarded-for": "10.0.0.1, 127.0.0.1",
      "X-Forwarded-Host": "evil.example",
      "x-forwarded-proto": "https",
      forwarded: "for=10.0.0.1;host=evil.example",
      "x-real-ip": "10.0.0.1",
      // The rest of the X-Forwarded family, and headers that would act behind the gateway's
      // routing, method and scheme (a route without a cache).
      "x-forwarded-prefix": "/evil",
      "x-forwarded-port": "1",
      "x-forwarded-scheme": "http",
      "x-forwarded-server": "evil",
      "x-forwarded-ssl": "on",
      "x-original-url": "/admin",
      "x-rewrite-url": "/admin",
      "x-http-method-override": "DELETE",
      proxy: "http://evil.example:1",
      "http2-settings": "AAA",
      "front-end-https": "on",
    },
  });
  const seen = (await r.json()).headers;
  for (const name of ["x-forwarded-prefix", "x-forwarded-port", "x-forwarded-scheme", "x-forwarded-server", "x-forwarded-ssl", "x-original-url", "x-rewrite-url", "x-http-method-override", "proxy", "http2-settings", "front-end-https"]) {
    assert.equal(seen[name], undefined, `${name} reached the upstream`);
  }
  assert.equal(seen["x-forwarded-for"], "203.0.113.9");
  assert.equal(seen["x-forwarded-host"], "api.example.com");
  assert.equal(seen["x-forwarded-proto"], "http");
  assert.equal(seen.forwarded, undefined);
  assert.equal(seen["x-real-ip"], undefined);
  assert.equal(seen.host, `127.0.0.1:${up.port}`, "Host comes from the upstream URL");
});

test("hop-by-hop headers and headers named in Connection never cross, in either direction", async () => {
  const up = await upstream((req, res) => {
    res.setHeader("connection", "x-upstream-secret, keep-alive");
    res.setHeader("x-upstream-secret", "internal");
    res.setHeader("keep-alive", "timeout=5");
    res.setHeader("proxy-authenticate", "Basic");
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(req.headers));
  });
  const gw = await setup({ targets: [{ url: up.url }] });
  const r = await gw.raw("/x", {
    headers: {
      host: "api.example.com",
      connection: "X-Client-Secret, x-forwarded-for, te",
      "x-client-secret": "1",
      "x-forwarded-for": "6.6.6.6",
      "proxy-authorization": "Basic Zm9vOmJhcg==",
      te: "trailers",
      "keep-alive": "300",
      upgrade: "h2c",
    },
  });
  const seen = JSON.parse(r.body);
  for (const h of ["x-client-secret", "proxy-authorization", "te", "keep-alive", "upgrade", "connection"]) {
    assert.equal(seen[h], undefined, `${h} reached the upstream`);
  }
  assert.equal(seen["x-forwarded-for"], "127.0.0.1", "the gateway's own X-Forwarded-For survives Connection: x-forwarded-for");
  assert.equal(r.headers["x-upstream-secret"], undefined);
  assert.equal(r.headers["proxy-authenticate"], undefined);
});

test("underscore spellings of headers the gateway sets or removes never reach the upstream", async () => {
  const up = await upstream((req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(req.headers));
  });
  const gw = await setup({ targets: [{ url: up.url }] }, { request_headers: { set: { "x-api-version": "2" }, remove: ["x-debug"] } });
  const r = await gw.raw("/x", {
    headers: {
      x_api_version: "1",
      x_forwarded_for: "10.9.9.9",
      x_request_id: "chosen",
      x_debug: "1",
      x_real_ip: "10.9.9.9",
      x_custom_header: "kept",
    },
  });
  const seen = JSON.parse(r.body);
  for (const name of ["x_api_version", "x_forwarded_for", "x_request_id", "x_debug", "x_real_ip"]) {
    assert.equal(seen[name], undefined, `${name} reached the upstream`);
  }
  assert.equal(seen["x-api-version"], "2");
  assert.equal(seen.x_custom_header, "kept", "an underscore header the gateway does not own passes");
});

test("a Connection entry that names no header does not turn the upstream's answer into an error", async () => {
  const up = await upstream((req, res) => {
    res.setHeader("connection", "x-a, x/b, ,x c");
    res.setHeader("x-a", "hop");
    res.end("fine");
  });
  const gw = await setup({ targets: [{ url: up.url }] });
  const r = await gw.raw("/x");
  assert.equal(r.status, 200);
  assert.equal(r.body, "fine");
  assert.equal(r.headers["x-a"], undefined, "the valid token is still honoured");
});

test("route header rules apply both ways; request id and traceparent are set", async () => {
  const up = await upstream((req, res) => {
    res.setHeader("server", "secret-upstream/1.2");
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(req.headers));
  });
  const gw = await setup(
    { targets: [{ url: up.url }] },
    {
      request_headers: { set: { "x-api-version": "2" }, remove: ["cookie"] },
      response_headers: { set: { "x-frame-options": "DENY" }, remove: ["server"] },
    },
  );
  let r = await gw.fetch("/x", { headers: { cookie: "session=abc", "x-api-version": "1" } });
  let seen = await r.json();
  assert.equal(seen.cookie, undefined);
  assert.equal(seen["x-api-version"], "2");
  assert.match(seen["x-request-id"], /^[0-9a-f]{32}$/);
  assert.equal(r.headers.get("x-request-id"), seen["x-request-id"]);
  // A trace the gateway starts: sampled, and its id random (flags 01 | 02).
  assert.match(seen.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-03$/);
  assert.equal(r.headers.get("server"), null);
  assert.equal(r.headers.get("x-frame-options"), "DENY");

  const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  r = await gw.fetch("/x", { headers: { "x-request-id": "client-chosen-1", traceparent: tp, tracestate: "a=1" } });
  seen = await r.json();
  assert.equal(seen["x-request-id"], "client-chosen-1");
  assert.equal(r.headers.get("x-request-id"), "client-chosen-1");
  // The gateway takes part in the client's trace: same trace id and sampled flag, but its own
  // span (whose parent is the client's), not the client's span id passed through.
  assert.match(seen.traceparent, /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
  assert.notEqual(seen.traceparent.slice(36, 52), "00f067aa0ba902b7");
  assert.equal(seen.tracestate, "a=1");

  r = await gw.raw("/x", { headers: { "x-request-id": "bad id <script>", traceparent: "00-nonsense", tracestate: "a=1" } });
  seen = JSON.parse(r.body);
  assert.match(seen["x-request-id"], /^[0-9a-f]{32}$/, "a malformed client id is replaced");
  assert.notEqual(seen.traceparent, "00-nonsense");
  assert.equal(seen.tracestate, undefined, "tracestate of an invalid traceparent is dropped");
});

test("request and response bodies stream through without buffering", async () => {
  let releaseSecondChunk;
  const secondChunkGate = new Promise((r) => (releaseSecondChunk = r));
  let firstRequestChunkSeen;
  const firstRequestChunk = new Promise((r) => (firstRequestChunkSeen = r));
  const up = await upstream(
    async (req, res) => {
      if (req.url === "/download") {
        // (A compressible type would let the local runtime buffer for compression.)
        res.writeHead(200, { "content-type": "application/octet-stream" });
        res.write("first-chunk;");
        await secondChunkGate;
        res.end("second-chunk");
        return;
      }
      let total = 0;
      for await (const c of req) {
        total += c.length;
        firstRequestChunkSeen();
      }
      res.end(String(total));
    },
    { readBody: false },
  );
  const gw = await setup({ targets: [{ url: up.url }] });

  // Download: the client reads the first chunk while the upstream still holds the second.
  const r = await gw.fetch("/download");
  const reader = r.body.getReader();
  const first = await Promise.race([reader.read(), sleep(5000).then(() => "timeout")]);
  assert.notEqual(first, "timeout", "first chunk arrived before the upstream finished");
  assert.match(new TextDecoder().decode(first.value), /first-chunk/);
  releaseSecondChunk();
  let rest = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    rest += new TextDecoder().decode(value);
  }
  assert.match(rest, /second-chunk/);

  // Upload: the upstream sees the first chunk while the client still holds the rest.
  const u = new URL(gw.url);
  const upload = new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method: "POST", path: "/upload", headers: { "transfer-encoding": "chunked" } }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("error", reject);
    req.write("a".repeat(1000));
    firstRequestChunk.then(() => req.end("b".repeat(500)));
  });
  const seenFirst = await Promise.race([firstRequestChunk.then(() => true), sleep(5000).then(() => false)]);
  assert.ok(seenFirst, "the upstream received the first request chunk before the client finished");
  const res = await upload;
  assert.equal(res.status, 200);
  assert.equal(res.body, "1500");
});

test("large bodies pass through intact", async () => {
  const up = await upstream(async (req, res, record) => {
    res.setHeader("content-type", "application/octet-stream");
    res.end(record.body);
  });
  const gw = await setup({ targets: [{ url: up.url }] });
  const payload = "0123456789abcdef".repeat(256 * 1024); // 4 MiB
  const r = await gw.fetch("/echo", { method: "POST", body: payload });
  assert.equal(r.status, 200);
  assert.equal(await r.text(), payload);
});

test("bodies over max_body_bytes are refused with 413, declared or streamed", async () => {
  const up = await upstream();
  const gw = await setup({ targets: [{ url: up.url }] }, {}, { max_body_bytes: 1000 });
  const before = up.requests.length;
  const declared = await gw.raw("/x", { method: "POST", headers: { "content-length": "1001" }, body: "a".repeat(1001) });
  assert.equal(declared.status, 413);
  assert.equal(JSON.parse(declared.body).code, "payload_too_large");
  assert.equal(up.requests.length, before, "a declared oversize body never reaches the upstream");
  const chunked = await gw.raw("/x", { method: "POST", headers: { "transfer-encoding": "chunked" }, body: "a".repeat(5000) });
  assert.equal(chunked.status, 413);
  await sleep(200);
  for (const seen of up.requests.slice(before)) {
    assert.ok(seen.aborted || seen.body.length === 5000, "the upstream never takes a truncated body for a whole one");
  }
  const fits = await gw.raw("/x", { method: "POST", headers: { "transfer-encoding": "chunked" }, body: "a".repeat(1000) });
  assert.equal(fits.status, 200);
  assert.equal(JSON.parse(fits.body).body.length, 1000);
});

test("a slow upstream is a 504 after timeout_ms; a refused connection is a 502; neither leaks the host", async () => {
  const slow = await upstream(async (req, res) => {
    await sleep(3000);
    res.end("late");
  });
  const gw = await setup({ targets: [{ url: slow.url }], timeout_ms: 300 });
  const started = Date.now();
  const r = await gw.fetch("/x");
  assert.equal(r.status, 504);
  assert.ok(Date.now() - started < 2500, "answered at the timeout, not when the upstream finished");
  const body = await r.text();
  assert.equal(JSON.parse(body).code, "upstream_timeout");
  assert.ok(!body.includes("127.0.0.1"), "no internal address in the body");

  const port = await closedPort();
  const gw2 = await setup({ targets: [{ url: `http://127.0.0.1:${port}` }] });
  const refused = await gw2.fetch("/x");
  assert.equal(refused.status, 502);
  const text = await refused.text();
  assert.equal(JSON.parse(text).code, "upstream_unreachable");
  assert.ok(!text.includes(String(port)));
});

test("idempotent requests are retried on another target after a connection failure or 503; others are not", async () => {
  const port = await closedPort();
  const good = await upstream();
  let flaky = 0;
  const unavailable = await upstream((req, res) => {
    flaky++;
    res.statusCode = 503;
    res.end("busy");
  });
  const gw = await setup({ targets: [{ url: `http://127.0.0.1:${port}` }, { url: good.url }], retries: 1 });
  for (let i = 0; i < 10; i++) {
    const r = await gw.fetch("/x");
    assert.equal(r.status, 200, "every GET succeeds through the retry");
  }
  const gw2 = await setup({ targets: [{ url: unavailable.url }, { url: good.url }], retries: 1 });
  const goodBefore = good.requests.length;
  // Targets are chosen at random: with 6 GETs, one run in 64 never met the 503 target.
  for (let i = 0; i < 30; i++) assert.equal((await gw2.fetch("/y")).status, 200);
  assert.ok(flaky > 0, "some GETs met the 503 target and were retried");
  assert.equal(good.requests.length - goodBefore, 30, "each GET reached the good target exactly once");
  const flakyBefore = flaky;
  let posts503 = 0;
  // Targets are chosen at random: with 6 POSTs, one run in 64 would never meet the 503 target.
  for (let i = 0; i < 30; i++) {
    const r = await gw2.fetch("/z", { method: "POST", body: "payload" });
    if (r.status === 503) posts503++;
  }
  assert.ok(posts503 > 0, "a POST that hits the 503 target is not retried");
  assert.equal(flaky - flakyBefore, posts503);
});

test("the circuit breaker stops sending to a failing target and probes it after the cooldown", async () => {
  let calls = 0;
  let healthy = false;
  const up = await upstream((req, res) => {
    calls++;
    res.statusCode = healthy ? 200 : 503;
    res.end(healthy ? "ok" : "down");
  });
  const gw = await setup({ targets: [{ url: up.url }], circuit_breaker: { failures: 3, cooldown_s: 1 } });
  for (let i = 0; i < 3; i++) assert.equal((await gw.fetch("/x")).status, 503);
  assert.equal(calls, 3);
  const open = await gw.fetch("/x");
  assert.equal(open.status, 503);
  assert.equal((await open.json()).code, "upstream_circuit_open");
  assert.equal(calls, 3, "no request reached the upstream while open");
  healthy = true;
  await sleep(1100);
  assert.equal((await gw.fetch("/x")).status, 200, "the probe after the cooldown goes through");
  assert.equal((await gw.fetch("/x")).status, 200, "and closes the breaker");
  assert.equal(calls, 5);
});

test("weighted targets share the traffic by weight", async () => {
  const a = await upstream();
  const b = await upstream();
  const gw = await setup({ targets: [{ url: a.url, weight: 3 }, { url: b.url, weight: 1 }] });
  for (let i = 0; i < 400; i++) await (await gw.fetch("/x")).arrayBuffer();
  // a's share is 0.75 ± 0.022 (one standard deviation at 400 requests): the bounds are more
  // than four away, where 200 requests and a ratio of 2–4.5 failed about one run in sixty; an
  // equal split (0.5) is six below.
  const share = a.requests.length / (a.requests.length + b.requests.length);
  assert.ok(share > 0.65 && share < 0.85, `a:b = ${a.requests.length}:${b.requests.length}`);
});

test("service-binding targets are called through the binding", async () => {
  const gw = await startGateway({
    routes: config({
      upstreams: { svc: { targets: [{ url: "service:ORDERS" }] } },
      routes: [{ id: "orders", path: "/orders/{id}", upstream: "svc", rewrite: "/internal/orders/{id}", auth: "none" }],
    }),
    serviceBindings: {
      ORDERS: async (req) => new Response(JSON.stringify({ url: new URL(req.url).pathname, fwd: req.headers.get("x-forwarded-host") })),
    },
  });
  cleanup.push(() => gw.close());
  const r = await gw.fetch("http://api.example.com/orders/7");
  assert.deepEqual(await r.json(), { url: "/internal/orders/7", fwd: "api.example.com" });
});

test("redirects from the upstream are passed to the client, not followed", async () => {
  const up = await upstream((req, res) => {
    res.writeHead(302, { location: "http://127.0.0.1:1/elsewhere" });
    res.end();
  });
  const gw = await setup({ targets: [{ url: up.url }] });
  const r = await gw.fetch("/x", { redirect: "manual" });
  assert.equal(r.status, 302);
  assert.equal(r.headers.get("location"), "http://127.0.0.1:1/elsewhere");
});

test("a Connection token cannot remove headers the route or the gateway sets", async () => {
  const up = await upstream();
  const gw = await setup({ targets: [{ url: up.url }] }, { request_headers: { set: { "x-gateway-secret": "s3cret", "x-tenant": "acme" } } });
  const r = await gw.raw("/x", { headers: { connection: "x-gateway-secret, x-tenant, x-request-id, x-forwarded-for", "x-tenant": "evil" } });
  const seen = JSON.parse(r.body).headers;
  assert.equal(seen["x-gateway-secret"], "s3cret");
  assert.equal(seen["x-tenant"], "acme");
  assert.match(seen["x-request-id"], /^[0-9a-f]{32}$/);
  assert.equal(seen["x-forwarded-for"], "127.0.0.1");
});

test("a service-binding target whose binding is missing fails as unreachable, never as a public fetch", async () => {
  const gw = await startGateway({
    routes: config({
      upstreams: { svc: { targets: [{ url: "service:MISSING" }] } },
      routes: [{ id: "r", path: "/r", upstream: "svc", auth: "none" }],
    }),
  });
  cleanup.push(() => gw.close());
  const r = await gw.fetch("/r");
  assert.equal(r.status, 502);
  assert.equal((await r.json()).code, "upstream_unreachable");
});
