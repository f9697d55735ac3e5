// Trace context in workerd: the gateway's own span in the forwarded traceparent, parent-based
// and rate sampling (observability.tracing), and a route's `tracing: false`.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startUpstream, config } from "./harness.mjs";

const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN = "00f067aa0ba902b7";
const tp = (flags, version = "00") => `${version}-${TRACE}-${CLIENT_SPAN}-${flags}`;

/** A gateway whose routes /t (tracing on) and /quiet (tracing off) echo the request headers. */
async function gateway(tracing) {
  const up = await startUpstream();
  cleanup.push(() => up.close());
  const gw = await startGateway({
    routes: config({
      upstreams: { u: { targets: [{ url: up.url }] } },
      routes: [
        { id: "t", path: "/t", upstream: "u", auth: "none" },
        { id: "quiet", path: "/quiet", upstream: "u", auth: "none", observability: { tracing: false } },
      ],
      ...(tracing ? { observability: { tracing } } : {}),
    }),
  });
  cleanup.push(() => gw.close());
  return async (path, headers = {}) => {
    const r = await gw.raw(path, { headers });
    assert.equal(r.status, 200, r.body);
    return JSON.parse(r.body).headers;
  };
}

const parse = (value) => {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(value ?? "");
  assert.ok(m, `a version-00 traceparent: ${value}`);
  return { trace: m[1], span: m[2], flags: m[3] };
};

test("an inbound trace is continued with the gateway's own span, its flag kept", async () => {
  const get = await gateway();
  for (const flags of ["01", "00"]) {
    const seen = await get("/t", { traceparent: tp(flags), tracestate: "vendor=1" });
    const f = parse(seen.traceparent);
    assert.equal(f.trace, TRACE, "same trace");
    assert.notEqual(f.span, CLIENT_SPAN, "a new span for the gateway's hop");
    assert.notEqual(f.span, "0".repeat(16));
    assert.equal(f.flags, flags, "parent-based: the client's sampling decision is kept");
    assert.equal(seen.tracestate, "vendor=1");
  }
  // Every request is a new span.
  const a = parse((await get("/t", { traceparent: tp("01") })).traceparent);
  const b = parse((await get("/t", { traceparent: tp("01") })).traceparent);
  assert.notEqual(a.span, b.span);
});

test("a future version is continued and forwarded as version 00; version ff restarts the trace", async () => {
  const get = await gateway();
  const future = await get("/t", { traceparent: tp("01", "01") + "-future-data" });
  assert.equal(parse(future.traceparent).trace, TRACE);
  const ff = await get("/t", { traceparent: tp("01", "ff"), tracestate: "vendor=1" });
  assert.notEqual(parse(ff.traceparent).trace, TRACE);
  assert.equal(ff.tracestate, undefined, "the tracestate of a refused traceparent is dropped");
  const alone = await get("/t", { tracestate: "vendor=1" });
  assert.equal(alone.tracestate, undefined, "a tracestate without a traceparent is dropped");
  const zero = await get("/t", { traceparent: `00-${"0".repeat(32)}-${CLIENT_SPAN}-01` });
  assert.notEqual(parse(zero.traceparent).trace, "0".repeat(32));
});

test("new traces are sampled by tracing.sample_rate", async () => {
  const none = await gateway({ sample_rate: 0 });
  // A trace the gateway starts has a random id, which its random flag (0x02) says.
  for (let i = 0; i < 5; i++) assert.equal(parse((await none("/t")).traceparent).flags, "02");
  // Parent-based: an inbound sampled trace stays sampled even at rate 0.
  assert.equal(parse((await none("/t", { traceparent: tp("01") })).traceparent).flags, "01");
  const all = await gateway({ sample_rate: 1 });
  for (let i = 0; i < 5; i++) assert.equal(parse((await all("/t")).traceparent).flags, "03");
});

test("without parent_based, inbound traces are sampled by the rate too", async () => {
  const get = await gateway({ sample_rate: 1, parent_based: false });
  const seen = parse((await get("/t", { traceparent: tp("00") })).traceparent);
  assert.equal(seen.trace, TRACE);
  assert.equal(seen.flags, "01");
  const off = await gateway({ sample_rate: 0, parent_based: false });
  assert.equal(parse((await off("/t", { traceparent: tp("01") })).traceparent).flags, "00");
});

test("a route with tracing: false forwards the gateway's span unsampled", async () => {
  const get = await gateway();
  const seen = parse((await get("/quiet", { traceparent: tp("01") })).traceparent);
  assert.equal(seen.trace, TRACE, "still the same trace, for correlation");
  assert.equal(seen.flags, "00");
  assert.equal(parse((await get("/quiet")).traceparent).flags, "02");
  assert.equal(parse((await get("/t", { traceparent: tp("01") })).traceparent).flags, "01");
});

test("response_traceparent returns the gateway's span to the client; it is off by default", async () => {
  const up = await startUpstream();
  cleanup.push(() => up.close());
  const routes = (tracing) =>
    config({
      upstreams: { u: { targets: [{ url: up.url }] } },
      routes: [{ id: "t", path: "/t", upstream: "u", auth: "none" }],
      ...(tracing ? { observability: { tracing } } : {}),
    });
  const on = await startGateway({ routes: routes({ response_traceparent: true }) });
  cleanup.push(() => on.close());
  const r = await on.raw("/t", { headers: { traceparent: tp("01") } });
  assert.equal(r.status, 200);
  const forwarded = JSON.parse(r.body).headers.traceparent;
  assert.equal(r.headers.traceparent, forwarded, "the client gets the span the upstream got");
  assert.equal(parse(r.headers.traceparent).trace, TRACE);
  const off = await startGateway({ routes: routes() });
  cleanup.push(() => off.close());
  const plain = await off.raw("/t", { headers: { traceparent: tp("01") } });
  assert.equal(plain.headers.traceparent, undefined);
});
