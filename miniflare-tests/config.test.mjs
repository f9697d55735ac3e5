// Configuration from KV: hot reload, refusal of invalid documents, the embedded default, and
// the admin health endpoint that reports all of it.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startGateway, startUpstream, config, sleep, eventually } from "./harness.mjs";

const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

const ADMIN = { authorization: "Bearer test-admin-token-of-thirty-two-bytes" };

function doc(upstreamUrl, routes, settings = {}) {
  return config({
    settings: { admin: { path: "/__gateway", token_secret: "ADMIN_TOKEN" }, ...settings },
    upstreams: { u: { targets: [{ url: upstreamUrl }] } },
    routes,
  });
}

async function started(routes) {
  const gw = await startGateway({ routes, bindings: { ADMIN_TOKEN: "test-admin-token-of-thirty-two-bytes" } });
  cleanup.push(() => gw.close());
  return gw;
}

async function health(gw, headers = ADMIN) {
  const r = await gw.fetch("/__gateway/health", { headers });
  assert.equal(r.status, 200);
  return r.json();
}

test("a KV update is served after reload_s, without a restart", async () => {
  const up = await startUpstream();
  cleanup.push(() => up.close());
  const gw = await started(doc(up.url, [{ id: "v1", path: "/v1/{*p}", upstream: "u", auth: "none" }]));
  assert.equal((await gw.fetch("/v1/a")).status, 200);
  assert.equal((await gw.fetch("/v2/a")).status, 404);
  const before = await health(gw);
  assert.equal(before.config.source, "kv");

  await gw.setRoutes(doc(up.url, [{ id: "v2", path: "/v2/{*p}", upstream: "u", auth: "none" }]));
  const switched = await eventually(async () => (await gw.fetch("/v2/a")).status === 200, { timeoutMs: 5000 });
  assert.ok(switched, "the new document is served within reload_s");
  assert.equal((await gw.fetch("/v1/a")).status, 404, "the old routes are gone: versions are never mixed");
  const after = await health(gw);
  assert.notEqual(after.config.digest, before.config.digest);
});

test("a due reload never holds up the request that finds it due: that one is served by the table in force", async () => {
  const up = await startUpstream();
  cleanup.push(() => up.close());
  const gw = await started(doc(up.url, [{ id: "old", path: "/old", upstream: "u", auth: "none" }]));
  assert.equal((await gw.fetch("/old")).status, 200);
  await gw.setRoutes(doc(up.url, [{ id: "new", path: "/new", upstream: "u", auth: "none" }]));
  await sleep(1100);
  // reload_s (1 s) has passed: this request starts the reload and is answered by the old table.
  assert.equal((await gw.fetch("/old")).status, 200);
  assert.ok(await eventually(async () => (await gw.fetch("/new")).status === 200), "the reload then applies");
  assert.equal((await gw.fetch("/old")).status, 404);
});

test("an invalid KV document is refused and reported; the last good one keeps serving", async () => {
  const up = await startUpstream();
  cleanup.push(() => up.close());
  const good = doc(up.url, [{ id: "good", path: "/good", upstream: "u", auth: "none" }]);
  const gw = await started(good);
  assert.equal((await gw.fetch("/good")).status, 200);
  const goodDigest = (await health(gw)).config.digest;

  // Valid JSON, invalid document: a route without auth, and a typo.
  const bad = doc(up.url, [{ id: "bad", path: "/bad", upstream: "u", timeout: 5 }]);
  await gw.setRoutes(bad);
  const reported = await eventually(async () => {
    const h = await health(gw);
    return h.last_reload_error ? h : null;
  });
  assert.ok(reported, "the refusal is reported");
  assert.equal(reported.status, "degraded");
  assert.equal(reported.config.digest, goodDigest, "the good document is still in force");
  const errors = reported.last_reload_error.errors.join("\n");
  assert.match(errors, /routes\[0\]: missing required field "auth"/);
  assert.match(errors, /routes\[0\]\.timeout: unknown field "timeout"/);
  assert.equal((await gw.fetch("/good")).status, 200);
  assert.equal((await gw.fetch("/bad")).status, 404);

  // Not even JSON.
  // The request that finds a reload due is served by the document in force; the reload runs
  // beside it.
  await gw.setRoutes("{ this is not json");
  await sleep(1100);
  assert.equal((await gw.fetch("/good")).status, 200);
  const refused = await eventually(async () => /invalid JSON/.test((await health(gw)).last_reload_error?.errors[0] ?? ""));
  assert.ok(refused, "the unreadable document is reported");
  assert.equal((await gw.fetch("/good")).status, 200, "and the good document still serves");

  // A fixed document clears the error.
  await gw.setRoutes(doc(up.url, [{ id: "fixed", path: "/fixed", upstream: "u", auth: "none" }]));
  const fixed = await eventually(async () => (await gw.fetch("/fixed")).status === 200);
  assert.ok(fixed);
  assert.equal((await health(gw)).last_reload_error, null);

  // So does a refused document deleted: nothing in `routes` is nothing refused.
  await gw.setRoutes("{ refused again");
  assert.ok(await eventually(async () => Boolean((await health(gw)).last_reload_error)));
  await gw.kv.delete("routes");
  const cleared = await eventually(async () => {
    const h = await health(gw);
    return h.last_reload_error === null && h.status === "ok";
  });
  assert.ok(cleared, "the refusal is over once the document is gone");
});

test("a credential pasted as a member name is not shown by the health endpoint", async () => {
  const up = await startUpstream();
  cleanup.push(() => up.close());
  const gw = await started(doc(up.url, [{ id: "good", path: "/good", upstream: "u", auth: "none" }]));
  assert.equal((await gw.fetch("/good")).status, 200);
  const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTRUNSRVQxIn0.U0VDUkVUMXNpZw";
  // A header line pasted as the header's name, and a duplicated pasted name (refused as JSON).
  const pasted = doc(up.url, [
    { id: "p", path: "/p", upstream: "u", auth: "none", request_headers: { set: { [`Authorization: Bearer ${jwt}`]: "x" } } },
  ]);
  const duplicated = `{"version": 1, "X-Api-Key: SECRET1": 1, "X-Api-Key: SECRET1": 2}`;
  for (const [text, shown] of [[pasted, 'routes[0].request_headers.set["Authorization…"]'], [duplicated, 'duplicate key "X-Api-Key…"']]) {
    await gw.setRoutes(text);
    const reported = await eventually(async () => {
      const h = await health(gw);
      const errors = (h.last_reload_error?.errors ?? []).join("\n");
      return errors.includes(shown) ? errors : null;
    });
    assert.ok(reported, `the refusal is reported with ${shown}`);
    assert.doesNotMatch(reported, /SECRET1|eyJ|U0VDUkVUMX/);
  }
});

test("with KV empty the embedded routes.json serves; deleting the KV document returns to it", async () => {
  const embedded = JSON.parse(readFileSync(new URL("../routes.json", import.meta.url), "utf8"));
  const demoPort = Number(new URL(embedded.upstreams.demo.targets[0].url).port);
  const demo = await startUpstream(undefined, { port: demoPort });
  cleanup.push(() => demo.close());

  const gw = await startGateway({ bindings: { ADMIN_TOKEN: "dev-admin-token-of-thirty-two-bytes" } });
  cleanup.push(() => gw.close());
  const r = await gw.fetch("/v1/users/42");
  assert.equal(r.status, 200);
  assert.equal((await r.json()).url, "/users/42");
  let h = await (await gw.fetch("/__gateway/health", { headers: { authorization: "Bearer dev-admin-token-of-thirty-two-bytes" } })).json();
  assert.equal(h.config.source, "embedded");

  await gw.setRoutes(doc(demo.url, [{ id: "kv-only", path: "/kv-only", upstream: "u", auth: "none" }], { admin: { path: "/__gateway", token_secret: "ADMIN_TOKEN" } }));
  // The embedded document reloads every settings.reload_s = 10 s.
  assert.equal(embedded.settings.reload_s, 10);
  assert.ok(await eventually(async () => (await gw.fetch("/kv-only")).status === 200, { timeoutMs: 12000, intervalMs: 250 }));
  await gw.kv.delete("routes");
  assert.ok(await eventually(async () => (await gw.fetch("/v1/users/42")).status === 200));
  assert.equal((await gw.fetch("/kv-only")).status, 404);
});

test("health shows details only to the admin token", async () => {
  const up = await startUpstream();
  cleanup.push(() => up.close());
  const gw = await started(doc(up.url, [{ id: "a", path: "/a", upstream: "u", auth: "none" }]));
  assert.deepEqual(await health(gw, {}), { status: "ok" });
  assert.deepEqual(await health(gw, { authorization: "Bearer wrong" }), { status: "ok" });
  assert.deepEqual(await health(gw, { authorization: "test-admin-token-of-thirty-two-bytes" }), { status: "ok" });
  assert.deepEqual(await health(gw, { authorization: "Bearer test-admin-token-of-thirty-two-bytes, Bearer other" }), { status: "ok" });
  // The scheme in any case (RFC 9110).
  assert.equal((await health(gw, { authorization: "bearer test-admin-token-of-thirty-two-bytes" })).config.source, "kv");
  const full = await health(gw);
  assert.equal(full.status, "ok");
  assert.equal(full.config.source, "kv");
  assert.match(full.config.digest, /^sha256:[0-9a-f]{16}$/);
  assert.equal(full.config.routes, 1);
  assert.equal(full.last_reload_error, null);
  const post = await gw.fetch("/__gateway/health", { method: "POST" });
  assert.equal(post.status, 405);
  assert.equal((await gw.fetch("/__gateway/nothing")).status, 404);
});
