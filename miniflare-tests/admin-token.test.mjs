// An admin token under 32 bytes opens nothing: every admin endpoint answers 503
// admin_token_weak (even to that very token), the public health summary still answers, and
// a token of 32 bytes works.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startUpstream, config } from "./harness.mjs";

const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function gatewayWith(token) {
  const up = await startUpstream();
  cleanup.push(() => up.close());
  const routes = config({
    settings: { admin: { path: "/__gateway", token_secret: "ADMIN_TOKEN" } },
    upstreams: { u: { targets: [{ url: up.url }] } },
    routes: [{ id: "r", path: "/r", upstream: "u", auth: "none" }],
  });
  const gw = await startGateway({ routes, bindings: { ADMIN_TOKEN: token } });
  cleanup.push(() => gw.close());
  return gw;
}

test("an admin token shorter than 32 bytes closes the admin API with a reason, even to itself", async () => {
  const weak = "x".repeat(31);
  const gw = await gatewayWith(weak);
  for (const [method, path, token] of [
    ["GET", "/__gateway/keys", weak],
    ["POST", "/__gateway/cache/generation", weak],
    ["GET", "/__gateway/config", weak],
    ["GET", "/__gateway/config", "y".repeat(40)],
    ["GET", "/__gateway/keys", undefined],
  ]) {
    const headers = token ? { authorization: `Bearer ${token}` } : {};
    const r = await gw.fetch(path, { method, headers });
    assert.equal(r.status, 503, `${method} ${path}`);
    assert.equal(r.headers.get("content-type"), "application/problem+json");
    const body = await r.json();
    assert.equal(body.code, "admin_token_weak");
    assert.equal(body.min_bytes, 32);
    assert.ok(!JSON.stringify(body).includes(weak), "the token is never echoed");
  }
  // The public summary answers, and shows no admin detail to the short token.
  const h = await gw.fetch("/__gateway/health", { headers: { authorization: `Bearer ${weak}` } });
  assert.equal(h.status, 200);
  const health = await h.json();
  assert.equal(health.config, undefined, JSON.stringify(health));
  // The gateway's routes are untouched.
  assert.equal((await gw.fetch("/r")).status, 200);
});

test("an admin token of 32 bytes opens the admin API", async () => {
  const token = "x".repeat(32);
  const gw = await gatewayWith(token);
  const r = await gw.fetch("/__gateway/keys", { headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200);
  const wrong = await gw.fetch("/__gateway/keys", { headers: { authorization: `Bearer ${"y".repeat(32)}` } });
  assert.equal(wrong.status, 401);
  const h = await (await gw.fetch("/__gateway/health", { headers: { authorization: `Bearer ${token}` } })).json();
  assert.ok(h.config, "admin detail for the token");
});
