// The RateLimiter object's wire format in workerd, asked directly (as an isolate of any build
// asks it): version 1 is the format without a `v`, another version is refused as such, and a
// give-back changes the bucket once at most — not when delivered again, not after the object
// restarted. With GATEWAY_DEPLOYED_BUILD set to the folder of another build (the one deployed),
// whole gateways of both builds share one bucket's object, either way round, as during a
// gradual deploy.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { gatewayOptions, startUpstream, config, sleep } from "./harness.mjs";

const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

// A worker that hands /<bucket>/<path>?<query> to that bucket's object, as stores.js does.
const PROBE = `export default {
  fetch(request, env) {
    const url = new URL(request.url);
    const [, bucket, path] = url.pathname.split("/");
    return env.RL.get(env.RL.idFromName(bucket)).fetch("https://rate-limiter/" + path + url.search);
  },
};`;

/** The built gateway owning the objects, and a probe asking them; `persist` keeps their state. */
async function objects(persist) {
  const mf = new Miniflare({
    durableObjectsPersist: persist,
    workers: [
      { ...gatewayOptions({}), name: "gateway-0" },
      {
        name: "probe",
        modules: true,
        script: PROBE,
        compatibilityDate: "2026-07-01",
        durableObjects: { RL: { className: "RateLimiter", scriptName: "gateway-0", useSQLite: true } },
      },
    ],
  });
  await mf.ready;
  const probe = await mf.getWorker("probe");
  const ask = async (bucket, path, query) => {
    const r = await probe.fetch(`http://probe/${bucket}/${path}?${query}`);
    return { status: r.status, text: await r.text() };
  };
  return { ask, close: () => mf.dispose() };
}

// 10 per 100 s, burst 10: one interval is 10 s, so the few milliseconds a test takes never
// refill a unit and `remaining` is exact.
const LIMITS = "l=10&w=100&b=10";
const fields = (line) => line.split(",").map(Number);
/** A lease of up to `want` (hold 1 s): { remaining, extra, tag } of its grant line. */
async function take(o, bucket, want) {
  const r = await o.ask(bucket, "take", `${LIMITS}&n=${want}&h=1000`);
  assert.equal(r.status, 200, r.text);
  const f = fields(r.text);
  assert.equal(f.length, 8, r.text);
  return { allowed: f[0] === 1, remaining: f[2], extra: f[6], tag: r.text.split(",")[7] };
}
async function giveBack(o, bucket, tag, unused) {
  const r = await o.ask(bucket, "back", `${LIMITS}&t=${tag}&u=${unused}`);
  assert.equal(r.status, 204, r.text);
}

test("version 1, named or not, is answered in the line every build reads; another version, a malformed query or path is refused", async () => {
  const o = await objects();
  cleanup.push(() => o.close());
  const plain = await o.ask("wire", "take", `${LIMITS}&n=1&h=250`);
  assert.equal(plain.status, 200);
  assert.match(plain.text, /^1,10,9,10,0,0,0,0$/, "a single admission, no lease, no tag");
  const named = await o.ask("wire", "take", `v=1&${LIMITS}&n=5&h=250`);
  assert.equal(named.status, 200);
  assert.match(named.text, /^1,10,4,60,0,0,4,\d+$/, "four extras and a tag");
  const tag = BigInt(named.text.split(",")[7]);
  assert.ok(tag > 0n && tag < 1n << 60n, `a tag below 2^60 is never a tat in ns: ${tag}`);
  for (const path of ["take", "back"]) {
    const v2 = await o.ask("wire", path, `v=2&${LIMITS}&n=5&h=250&s=1`);
    assert.equal(v2.status, 501, v2.text);
    assert.match(v2.text, /unsupported version: speaks v=1/);
  }
  assert.equal((await o.ask("wire", "take", `${LIMITS}&n=5&h=250&s=1`)).status, 400);
  assert.equal((await o.ask("wire", "take", `${LIMITS}&n=5`)).status, 400);
  assert.equal((await o.ask("wire", "peek", `${LIMITS}&n=5&h=250`)).status, 404);
  // None of the refusals took anything.
  assert.equal((await take(o, "wire", 1)).remaining, 3);
});

test("a give-back delivered twice, or again once the bucket is back at the lease's state, returns nothing more", async () => {
  const o = await objects();
  cleanup.push(() => o.close());
  const lease = await take(o, "replay", 5);
  assert.deepEqual([lease.remaining, lease.extra], [5, 4]);
  await giveBack(o, "replay", lease.tag, 4);
  await giveBack(o, "replay", lease.tag, 4);
  // The four came back once: the lease's own request is all the bucket spent.
  assert.equal((await take(o, "replay", 1)).remaining, 8);
  // Three more singles: four since the give-back, so the bucket is where the lease left it.
  for (const left of [7, 6, 5]) assert.equal((await take(o, "replay", 1)).remaining, left);
  await giveBack(o, "replay", lease.tag, 4);
  const after = [];
  for (let i = 0; i < 6; i++) after.push(await take(o, "replay", 1));
  assert.deepEqual(
    after.map((g) => g.allowed),
    [true, true, true, true, true, false],
    "10 admitted in all: the late give-back returned nothing",
  );
});

test("a give-back for a lease from before the object restarted changes nothing", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gateway-wire-"));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const first = await objects(dir);
  const lease = await take(first, "restart", 5);
  assert.deepEqual([lease.remaining, lease.extra], [5, 4]);
  await sleep(300); // the state is stored before the answer; the lease lives in memory only
  await first.close();
  const second = await objects(dir);
  cleanup.push(() => second.close());
  await giveBack(second, "restart", lease.tag, 4);
  assert.equal((await take(second, "restart", 1)).remaining, 4, "the state survived, the lease did not");
});

// Whole gateways of two builds on one bucket, as during a gradual deploy: the first owns the
// objects. `deny` makes every store error a 503, so an answer one build cannot read shows.
async function mixed(owner, caller) {
  const up = await startUpstream();
  cleanup.push(() => up.close());
  const worker = (build, i) => ({
    ...gatewayOptions({ build }),
    name: `gateway-${i}`,
    kvNamespaces: { CONFIG: "shared-config" },
    durableObjects: {
      RATE_LIMITER: i === 0 ? { className: "RateLimiter", useSQLite: true } : { className: "RateLimiter", scriptName: "gateway-0", useSQLite: true },
    },
  });
  const mf = new Miniflare({ workers: [worker(owner, 0), worker(caller, 1)] });
  cleanup.push(() => mf.dispose());
  await mf.ready;
  const kv = await mf.getKVNamespace("CONFIG", "gateway-0");
  const routes = config({
    upstreams: { u: { targets: [{ url: up.url }] } },
    observability: { access_log: { sample_rate: 0, always_log_errors: false } },
    rate_limits: { tight: { key: "route", limit: 20, window_s: 100, on_store_error: "deny" } },
    routes: [{ id: "r", path: "/r", upstream: "u", auth: "none", rate_limits: ["tight"] }],
  });
  await kv.put("routes", JSON.stringify(routes));
  const gw = await mf.getWorker("gateway-1");
  const statuses = { 200: 0, 429: 0 };
  // Waves of concurrent requests: busy enough that the caller leases, and gives back.
  for (let wave = 0; wave < 6; wave++) {
    const rs = await Promise.all(Array.from({ length: 10 }, () => gw.fetch("http://gateway.test/r")));
    for (const r of rs) {
      await r.arrayBuffer();
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    }
    await sleep(300); // leases expire and are offered back
  }
  return statuses;
}

const DEPLOYED = process.env.GATEWAY_DEPLOYED_BUILD?.replace(/\/?$/, "/");
const THIS = gatewayOptions({}).modulesRoot;
for (const [name, owner, caller] of [
  ["this build's isolates, the deployed build's object", DEPLOYED, THIS],
  ["the deployed build's isolates, this build's object", THIS, DEPLOYED],
]) {
  test(`mixed builds: ${name}: the limit holds and every answer is read`, { skip: !DEPLOYED && "GATEWAY_DEPLOYED_BUILD not set" }, async () => {
    const statuses = await mixed(owner, caller);
    // 20 per 100 s: at most the burst and the refill of the few seconds the test takes.
    assert.deepEqual(Object.keys(statuses).sort(), ["200", "429"], JSON.stringify(statuses));
    assert.ok(statuses[200] >= 10 && statuses[200] <= 21, JSON.stringify(statuses));
  });
}
