// Rate-limit leases in workerd: several isolates (separate workers) in front of one bucket's
// Durable Object, each leasing admissions as it gets busy, never jointly pass the limit.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startGatewayIsolates, startUpstream, config } from "./harness.mjs";

const cleanup = [];
// No access lines: thousands of requests would flood the test's output.
const QUIET = { access_log: { sample_rate: 0, always_log_errors: false } };
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test("three isolates under load never jointly pass the limit, and admit close to it", async () => {
  const up = await startUpstream();
  cleanup.push(() => up.close());
  const LIMIT = 300;
  const WINDOW_S = 10;
  const gws = await startGatewayIsolates({
    count: 3,
    routes: config({
      upstreams: { u: { targets: [{ url: up.url }] } },
      observability: QUIET,
      rate_limits: { shared: { key: "route", limit: LIMIT, window_s: WINDOW_S } },
      routes: [{ id: "r", path: "/r", upstream: "u", auth: "none", rate_limits: ["shared"] }],
    }),
  });
  cleanup.push(() => gws.close());
  const admitted = [];
  let refused = 0;
  const started = Date.now();
  const RUN_MS = 3000;
  // Eight clients per isolate, each sending its next request as soon as the last is answered.
  const client = async (gw) => {
    while (Date.now() - started < RUN_MS) {
      const r = await gw.fetch("/r");
      await r.arrayBuffer();
      if (r.status === 200) admitted.push(Date.now());
      else if (r.status === 429) refused++;
      else assert.fail(`unexpected status ${r.status}`);
    }
  };
  await Promise.all(gws.workers.flatMap((gw) => Array.from({ length: 8 }, () => client(gw))));
  const elapsed = Date.now() - started;
  const intervalMs = (WINDOW_S * 1000) / LIMIT;
  // GCRA's bound over the whole run: the burst, plus one per interval that passed.
  const most = LIMIT + Math.floor(elapsed / intervalMs);
  assert.ok(refused > 0, "the load went past the limit");
  assert.ok(admitted.length <= most, `${admitted.length} admitted in ${elapsed} ms, at most ${most}`);
  // Leases cost at most what they hold unspent; under steady load they are spent, so the
  // admissions come close to the bound (a loose floor, so that a slow machine does not fail it).
  assert.ok(admitted.length >= LIMIT, `${admitted.length} admitted in ${elapsed} ms: fewer than the burst`);
  console.log(`# leases: ${admitted.length} admitted, ${refused} refused in ${elapsed} ms; GCRA allows at most ${most}`);
});

test("one busy isolate leases: far fewer Durable Object calls than requests, the bound kept", async () => {
  const up = await startUpstream();
  cleanup.push(() => up.close());
  const LIMIT = 100000;
  const gws = await startGatewayIsolates({
    count: 1,
    routes: config({
      upstreams: { u: { targets: [{ url: up.url }] } },
      observability: QUIET,
      rate_limits: { wide: { key: "route", limit: LIMIT, window_s: 1 } },
      routes: [{ id: "r", path: "/r", upstream: "u", auth: "none", rate_limits: ["wide"] }],
    }),
  });
  cleanup.push(() => gws.close());
  const [gw] = gws.workers;
  const remaining = [];
  const started = Date.now();
  const client = async () => {
    while (Date.now() - started < 1500) {
      const r = await gw.fetch("/r");
      await r.arrayBuffer();
      assert.equal(r.status, 200);
      remaining.push(Number(/r=(\d+)/.exec(r.headers.get("ratelimit"))[1]));
    }
  };
  await Promise.all(Array.from({ length: 8 }, client));
  // Requests spending a lease report what the lease was granted with: equal values in a row.
  let repeats = 0;
  for (let i = 1; i < remaining.length; i++) if (remaining[i] === remaining[i - 1]) repeats++;
  assert.ok(remaining.every((r) => r <= LIMIT));
  assert.ok(repeats > remaining.length / 2, `${repeats} of ${remaining.length} answers came from a lease`);
});
