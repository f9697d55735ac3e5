// Rate limiting through the built worker with the real RateLimiter Durable Object: exactness
// under concurrency, refill, Retry-After, keys that cannot be escaped, headers, store failure.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startGateway, startUpstream, config, hs256Token, sleep } from "./harness.mjs";

const SECRET = "rate-limit-test-secret-0123456789abcdef";
const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

let upstreamPromise;
function upstream() {
  upstreamPromise ??= startUpstream().then((up) => {
    cleanup.push(() => up.close());
    return up;
  });
  return upstreamPromise;
}

async function gateway(rate_limits, routes, options = {}) {
  const up = await upstream();
  const gw = await startGateway({
    bindings: { JWT_SECRET: SECRET, ADMIN_TOKEN: "test-admin-token-of-thirty-two-bytes" },
    routes: config({
      settings: { admin: { path: "/__gateway", token_secret: "ADMIN_TOKEN" } },
      upstreams: { u: { targets: [{ url: up.url }] } },
      auth: { users: { type: "jwt", issuer: "https://id.test/", audiences: ["api"], secret: "JWT_SECRET", algorithms: ["HS256"] } },
      rate_limits,
      routes,
    }),
    ...options,
  });
  cleanup.push(() => gw.close());
  return gw;
}

const ip = (addr, extra = {}) => ({ headers: { "cf-connecting-ip": addr, ...extra } });

const token = (sub) => hs256Token(SECRET, sub);

test("exact under concurrency: 50 simultaneous requests against a limit of 10 let exactly 10 through", async () => {
  const gw = await gateway({ ten: { key: "route", limit: 10, window_s: 60 } }, [
    { id: "limited", path: "/limited", upstream: "u", auth: "none", rate_limits: ["ten"] },
  ]);
  const statuses = await Promise.all(Array.from({ length: 50 }, () => gw.fetch("/limited").then(async (r) => (await r.arrayBuffer(), r.status))));
  assert.equal(statuses.filter((s) => s === 200).length, 10);
  assert.equal(statuses.filter((s) => s === 429).length, 40);
});

test("429 names the policy, Retry-After matches the next allowed moment, headers follow the draft", async () => {
  const gw = await gateway({ "per-ip": { key: "ip", limit: 2, window_s: 2 } }, [
    { id: "r", path: "/r", upstream: "u", auth: "none", rate_limits: ["per-ip"] },
  ]);
  let r = await gw.fetch("/r", ip("198.51.100.1"));
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("ratelimit-policy"), '"per-ip";q=2;w=2');
  assert.match(r.headers.get("ratelimit"), /^"per-ip";r=1;t=\d+$/);
  r = await gw.fetch("/r", ip("198.51.100.1"));
  assert.match(r.headers.get("ratelimit"), /^"per-ip";r=0;t=\d+$/);
  r = await gw.fetch("/r", ip("198.51.100.1"));
  assert.equal(r.status, 429);
  assert.equal(r.headers.get("content-type"), "application/problem+json");
  const body = await r.json();
  assert.equal(body.code, "rate_limited");
  assert.equal(body.policy, "per-ip");
  const retryAfter = Number(r.headers.get("retry-after"));
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After ${retryAfter}`);
  assert.match(r.headers.get("ratelimit"), /r=0/);
  assert.doesNotMatch(r.headers.get("ratelimit"), /r=-/);
  // Waiting exactly Retry-After is enough.
  await sleep(retryAfter * 1000 + 50);
  assert.equal((await gw.fetch("/r", ip("198.51.100.1"))).status, 200);
});

test("the bucket refills after the window", async () => {
  const gw = await gateway({ two: { key: "ip", limit: 2, window_s: 1 } }, [
    { id: "r", path: "/r", upstream: "u", auth: "none", rate_limits: ["two"] },
  ]);
  const burst = [];
  for (let i = 0; i < 3; i++) burst.push((await gw.fetch("/r", ip("198.51.100.2"))).status);
  assert.deepEqual(burst, [200, 200, 429]);
  await sleep(1050);
  assert.equal((await gw.fetch("/r", ip("198.51.100.2"))).status, 200);
  assert.equal((await gw.fetch("/r", ip("198.51.100.2"))).status, 200);
  assert.equal((await gw.fetch("/r", ip("198.51.100.2"))).status, 429);
});

test("an ip limit cannot be escaped by rotating X-Forwarded-For; other clients are separate", async () => {
  const gw = await gateway({ one: { key: "ip", limit: 1, window_s: 60 } }, [
    { id: "r", path: "/r", upstream: "u", auth: "none", rate_limits: ["one"] },
  ]);
  assert.equal((await gw.fetch("/r", ip("203.0.113.5", { "x-forwarded-for": "1.1.1.1" }))).status, 200);
  for (const spoof of ["2.2.2.2", "3.3.3.3, 4.4.4.4", "::1"]) {
    assert.equal((await gw.fetch("/r", ip("203.0.113.5", { "x-forwarded-for": spoof, "x-real-ip": spoof }))).status, 429, spoof);
  }
  assert.equal((await gw.fetch("/r", ip("203.0.113.6"))).status, 200);
});

test("per-consumer limits isolate users", async () => {
  const gw = await gateway({ "per-user": { key: "consumer", limit: 2, window_s: 60 } }, [
    { id: "r", path: "/r", upstream: "u", auth: ["users"], rate_limits: ["per-user"] },
  ]);
  const alice = { headers: { authorization: `Bearer ${await token("alice")}` } };
  const bob = { headers: { authorization: `Bearer ${await token("bob")}` } };
  assert.equal((await gw.fetch("/r", alice)).status, 200);
  assert.equal((await gw.fetch("/r", alice)).status, 200);
  assert.equal((await gw.fetch("/r", alice)).status, 429);
  assert.equal((await gw.fetch("/r", bob)).status, 200, "bob has his own bucket");
  // A fresh token for alice is still alice.
  assert.equal((await gw.fetch("/r", { headers: { authorization: `Bearer ${await token("alice")}` } })).status, 429);
  // Unauthenticated requests are refused before they can touch a bucket.
  assert.equal((await gw.fetch("/r")).status, 401);
});

test("all spellings of a path share the route's bucket", async () => {
  const gw = await gateway({ three: { key: "route", limit: 3, window_s: 60 } }, [
    { id: "ab", path: "/a/b", upstream: "u", auth: "none", rate_limits: ["three"] },
  ]);
  const statuses = [];
  for (const spelling of ["/a/b", "/a/./b", "/a/%62", "//a//b"]) statuses.push((await gw.raw(spelling)).status);
  assert.deepEqual(statuses, [200, 200, 200, 429]);
});

test("a header key without the header falls back to the client address, never to no limit", async () => {
  const gw = await gateway({ tenant: { key: "header:x-tenant", limit: 1, window_s: 60 } }, [
    { id: "r", path: "/r", upstream: "u", auth: "none", rate_limits: ["tenant"] },
  ]);
  assert.equal((await gw.fetch("/r", ip("192.0.2.10"))).status, 200);
  assert.equal((await gw.fetch("/r", ip("192.0.2.10"))).status, 429, "no header: the address's bucket");
  assert.equal((await gw.fetch("/r", ip("192.0.2.10", { "x-tenant": "acme" }))).status, 200);
  assert.equal((await gw.fetch("/r", ip("192.0.2.11", { "x-tenant": "acme" }))).status, 429, "same tenant, other address");
  assert.equal((await gw.fetch("/r", ip("192.0.2.11", { "x-tenant": "globex" }))).status, 200);
});

test("several policies: every one is checked, the violated one is named", async () => {
  const gw = await gateway(
    {
      "per-ip": { key: "ip", limit: 3, window_s: 60 },
      global: { key: "global", limit: 4, window_s: 60 },
    },
    [{ id: "r", path: "/r", upstream: "u", auth: "none", rate_limits: ["per-ip", "global"] }],
  );
  const ok = await gw.fetch("/r", ip("192.0.2.20"));
  assert.equal(ok.headers.get("ratelimit-policy"), '"per-ip";q=3;w=60, "global";q=4;w=60');
  assert.match(ok.headers.get("ratelimit"), /^"per-ip";r=2;t=\d+, "global";r=3;t=\d+$/);
  await gw.fetch("/r", ip("192.0.2.20"));
  await gw.fetch("/r", ip("192.0.2.20"));
  let r = await gw.fetch("/r", ip("192.0.2.20"));
  assert.equal(r.status, 429);
  assert.equal((await r.json()).policy, "per-ip");
  // The refused request still spent from the global budget (documented): one left is gone.
  r = await gw.fetch("/r", ip("192.0.2.21"));
  assert.equal(r.status, 429);
  assert.equal((await r.json()).policy, "global");
});

test("when the counter store fails, on_store_error decides: allow (default) or deny", async () => {
  const gw = await gateway(
    {
      lenient: { key: "ip", limit: 1, window_s: 60 },
      strict: { key: "ip", limit: 1, window_s: 60, on_store_error: "deny" },
    },
    [
      { id: "lenient", path: "/lenient", upstream: "u", auth: "none", rate_limits: ["lenient"] },
      { id: "strict", path: "/strict", upstream: "u", auth: "none", rate_limits: ["strict"] },
    ],
    { limiter: false },
  );
  for (let i = 0; i < 3; i++) assert.equal((await gw.fetch("/lenient")).status, 200);
  const r = await gw.fetch("/strict");
  assert.equal(r.status, 503);
  const body = await r.json();
  assert.equal(body.code, "rate_limit_unavailable");
  assert.equal(body.policy, "strict");
  // Every failure is counted (and logged): the four requests', and the health call's own admin
  // attempt, which could not be counted either (and so went on).
  const answer = await gw.fetch("/__gateway/health", { headers: { authorization: "Bearer test-admin-token-of-thirty-two-bytes" } });
  assert.equal(answer.status, 200);
  const health = await answer.json();
  assert.equal(health.isolate_counters.rate_limit_store_errors, 5);
});

test("a bucket's state survives a restart of the runtime", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gateway-persist-"));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const limits = { once: { key: "global", limit: 1, window_s: 3600 } };
  const routes = [{ id: "r", path: "/r", upstream: "u", auth: "none", rate_limits: ["once"] }];
  const first = await gateway(limits, routes, { persist: dir });
  assert.equal((await first.fetch("/r")).status, 200);
  assert.equal((await first.fetch("/r")).status, 429);
  await sleep(200); // storage held the state before the answer went out
  await first.close();
  const second = await gateway(limits, routes, { persist: dir });
  assert.equal((await second.fetch("/r")).status, 429, "a restart does not hand out a fresh quota");
});

test("a runtime ended right after an answer restarts from a state that answer was decided in", async () => {
  // The object writes ahead of its answers: ended with no moment for a background write (as a
  // crash or a deploy's restart would), the next runtime still finds every admission granted.
  const dir = mkdtempSync(join(tmpdir(), "gateway-persist-"));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const limits = { three: { key: "global", limit: 3, window_s: 3600 } };
  const routes = [{ id: "r", path: "/r", upstream: "u", auth: "none", rate_limits: ["three"] }];
  let admitted = 0;
  for (let run = 0; run < 3; run++) {
    const gw = await gateway(limits, routes, { persist: dir });
    const statuses = await Promise.all([gw.fetch("/r"), gw.fetch("/r")].map(async (r) => (await r).status));
    admitted += statuses.filter((s) => s === 200).length;
    await gw.close();
  }
  assert.equal(admitted, 3, "three runtimes of two requests each admitted the limit, no more");
});
