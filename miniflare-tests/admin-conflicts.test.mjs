// Admin changes against a document the gateway refuses: a 409 naming that document, and
// nothing changes.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startGateway, startUpstream, config, eventually } from "./harness.mjs";

const ADMIN = { authorization: "Bearer test-admin-token-of-thirty-two-bytes" };
const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** The digest the gateway names documents by: sha256 of the text, first 8 bytes in hex. */
const digest = (text) => "sha256:" + createHash("sha256").update(text).digest("hex").slice(0, 16);

test("POST /cache/generation while KV holds a refused document is 409 config_invalid, and changes nothing", async () => {
  const up = await startUpstream();
  cleanup.push(() => up.close());
  const good = config({
    settings: { admin: { path: "/__gateway", token_secret: "ADMIN_TOKEN" } },
    upstreams: { u: { targets: [{ url: up.url }] } },
    routes: [{ id: "r", path: "/r", upstream: "u", auth: "none" }],
  });
  const gw = await startGateway({ routes: good, bindings: { ADMIN_TOKEN: "test-admin-token-of-thirty-two-bytes" } });
  cleanup.push(() => gw.close());
  const health = async () => (await gw.fetch("/__gateway/health", { headers: ADMIN })).json();
  const applied = (await health()).config.digest;

  const refused = [
    JSON.stringify({ ...good, version: 2 }), // valid JSON, invalid document
    '{"version": 1, "routes": [', // not even JSON
  ];
  for (const text of refused) {
    await gw.setRoutes(text);
    const seen = await eventually(async () => (await health()).last_reload_error?.digest === digest(text));
    assert.ok(seen, "the gateway has refused the document");
    const r = await gw.fetch("/__gateway/cache/generation", { method: "POST", headers: ADMIN });
    assert.equal(r.status, 409);
    assert.equal(r.headers.get("content-type"), "application/problem+json");
    const body = await r.json();
    assert.equal(body.code, "config_invalid");
    assert.equal(body.digest, digest(text), "names the refused document");
    assert.ok(body.detail.includes(digest(text)));
    assert.ok(body.errors.length >= 1, JSON.stringify(body));
    assert.equal(await gw.kv.get("routes"), text, "KV is unchanged");
    assert.equal((await health()).config.digest, applied, "the applied document is unchanged");
  }

  // With a valid document back, the bump works.
  await gw.setRoutes(good);
  assert.ok(await eventually(async () => !(await health()).last_reload_error));
  const ok = await gw.fetch("/__gateway/cache/generation", { method: "POST", headers: ADMIN });
  assert.equal(ok.status, 200);
  assert.equal((await ok.json()).cache_generation, 2);
});
