// Weak keys are never trusted: inline keys are refused at load with their JSON path and reason,
// a JWKS's weak keys are skipped and counted, and an HMAC secret shorter than its hash is not
// used (503 auth_unavailable when nothing else can verify).

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import * as jose from "jose";
import { startGateway, startUpstream, config, eventually } from "./harness.mjs";

const ISSUER = "https://id.test/";
const ADMIN = { authorization: "Bearer test-admin-token-of-thirty-two-bytes" };
const SETTINGS = { admin: { path: "/__gateway", token_secret: "ADMIN_TOKEN" } };

/** A published ROCA-vulnerable 2048-bit modulus (the roca-detect project's mod03.txt). */
const ROCA_N =
  "nc10IOQgwnCmgGDri1qnRXqfZkj4b6_tJ3XMH3muli8eY_G55RxV-epv3HMy6bAFjJ_y6x_ImFUCnPaq_iHmif6zisn_sS8c43G7XQ6armQWGrznS0JEv2jx7bRBH3VqCXyJKcFHQCReo1X4My0ao2u1DH3LRQXajeAuTlPTj43wYJfadSTfDfk9tI6sjMSvLToWJX6ysq3Ka6Rk5ZdPqSVQ0xsbq_Fh52ktALhuPdiG7KtKv74aj4zCY_9K9VzbRfQkmlGTkl9emD12LwtoAJQ-sCZ7CPQu0xHOH1yG6svIzk08t6L-4e9WQUI6HPQRTl7PUANKYKQSUjr55vSqEQ";

const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** An RSA key pair (node:crypto generates it; jose signs with it). */
function rsaPair(publicExponent = 65537, modulusLength = 2048) {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength, publicExponent });
  return { privateKey, jwk: publicKey.export({ format: "jwk" }) };
}

function mint(alg, key, kid, sub = "u1") {
  const header = kid ? { alg, kid } : { alg };
  return new jose.SignJWT({ sub }).setProtectedHeader(header).setIssuer(ISSUER).setAudience("api").setExpirationTime("5m").sign(key);
}

const bearer = (t) => ({ headers: { authorization: `Bearer ${t}` } });

async function health(gw) {
  const r = await gw.fetch("/__gateway/health", { headers: ADMIN });
  assert.equal(r.status, 200);
  return r.json();
}

async function started(routes, bindings = {}) {
  const gw = await startGateway({ routes, bindings: { ADMIN_TOKEN: "test-admin-token-of-thirty-two-bytes", ...bindings } });
  cleanup.push(() => gw.close());
  return gw;
}

test("weak inline keys are refused at load, each with its JSON path and reason", async () => {
  const up = await startUpstream();
  cleanup.push(() => up.close());
  const good = rsaPair();
  const doc = (keys) =>
    config({
      settings: SETTINGS,
      upstreams: { u: { targets: [{ url: up.url }] } },
      auth: { inline: { type: "jwt", issuer: ISSUER, audiences: ["api"], algorithms: ["RS256"], keys } },
      routes: [{ id: "r", path: "/r", upstream: "u", auth: ["inline"] }],
    });
  const gw = await started(doc([{ ...good.jwk, kid: "good" }]));
  assert.equal((await gw.fetch("/r", bearer(await mint("RS256", good.privateKey, "good")))).status, 200);
  const applied = (await health(gw)).config.digest;

  const small = rsaPair(65537, 1024);
  const three = rsaPair(3);
  await gw.setRoutes(
    doc([
      { ...good.jwk, kid: "good" },
      { ...small.jwk, kid: "small" },
      { ...three.jwk, kid: "three" },
      { kty: "RSA", kid: "roca", n: ROCA_N, e: "AQAB" },
    ]),
  );
  const h = await eventually(async () => {
    const h = await health(gw);
    return h.last_reload_error ? h : null;
  });
  assert.ok(h, "the document with weak keys is refused");
  const errors = h.last_reload_error.errors;
  const has = (path, fragment) => errors.some((e) => e.startsWith(path) && e.includes(fragment));
  assert.ok(has("auth.inline.keys[1]", "RSA modulus of 1024 bits: at least 2048 are required"), errors.join("\n"));
  assert.ok(has("auth.inline.keys[2]", "RSA public exponent 3 is below 65537"), errors.join("\n"));
  assert.ok(has("auth.inline.keys[3]", "ROCA fingerprint (CVE-2017-15361)"), errors.join("\n"));
  assert.equal(errors.length, 3, errors.join("\n"));
  assert.equal(h.config.digest, applied, "the last good document keeps serving");
});

test("weak keys in a JWKS are skipped and counted; a JWKS of only weak keys is auth_unavailable", async () => {
  const up = await startUpstream();
  cleanup.push(() => up.close());
  const good = rsaPair();
  const three = rsaPair(3);
  const jwks = { keys: [{ ...good.jwk, kid: "good", use: "sig" }, { ...three.jwk, kid: "three", use: "sig" }] };
  const idp = await startUpstream((req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(req.url === "/weak-only" ? { keys: [jwks.keys[1]] } : jwks));
  });
  cleanup.push(() => idp.close());
  const scheme = (path) => ({ type: "jwt", issuer: ISSUER, audiences: ["api"], algorithms: ["RS256"], jwks_url: idp.url + path });
  const gw = await started(
    config({
      settings: SETTINGS,
      upstreams: { u: { targets: [{ url: up.url }] } },
      auth: { idp: scheme("/jwks"), weak: scheme("/weak-only") },
      routes: [
        { id: "r", path: "/r", upstream: "u", auth: ["idp"] },
        { id: "w", path: "/w", upstream: "u", auth: ["weak"] },
      ],
    }),
  );
  const before = (await health(gw)).isolate_counters.weak_keys_refused;
  assert.equal((await gw.fetch("/r", bearer(await mint("RS256", good.privateKey, "good")))).status, 200);
  const forged = await gw.fetch("/r", bearer(await mint("RS256", three.privateKey, "three")));
  assert.equal(forged.status, 401, "a token signed with the weak key is not accepted");
  assert.equal((await forged.json()).code, "invalid_token");
  const none = await gw.fetch("/w", bearer(await mint("RS256", three.privateKey, "three")));
  assert.equal(none.status, 503);
  assert.equal((await none.json()).code, "auth_unavailable");
  const counted = (await health(gw)).isolate_counters.weak_keys_refused;
  assert.ok(counted >= before + 2, `counted ${counted}, before ${before}`);
});

test("an HMAC secret shorter than the hash is not used for that algorithm", async () => {
  const up = await startUpstream();
  cleanup.push(() => up.close());
  const SHORT = "only-twenty-bytes!!!"; // 20 bytes: too short for every HS algorithm
  const MID = "forty-bytes-of-secret-for-hs256-only-ok!"; // 40 bytes: HS256 yes, HS512 no
  const scheme = (secret, algorithms) => ({ type: "jwt", issuer: ISSUER, audiences: ["api"], secret, algorithms });
  const gw = await started(
    config({
      settings: SETTINGS,
      upstreams: { u: { targets: [{ url: up.url }] } },
      auth: { short: scheme("SHORT_SECRET", ["HS256"]), mid: scheme("MID_SECRET", ["HS256", "HS512"]) },
      routes: [
        { id: "s", path: "/s", upstream: "u", auth: ["short"] },
        { id: "m", path: "/m", upstream: "u", auth: ["mid"] },
      ],
    }),
    { SHORT_SECRET: SHORT, MID_SECRET: MID },
  );
  assert.equal(SHORT.length, 20);
  assert.equal(MID.length, 40);
  const key = (s) => new TextEncoder().encode(s);
  const before = (await health(gw)).isolate_counters.weak_keys_refused;
  const short = await gw.fetch("/s", bearer(await mint("HS256", key(SHORT))));
  assert.equal(short.status, 503);
  const body = await short.json();
  assert.equal(body.code, "auth_unavailable");
  assert.ok(!JSON.stringify(body).includes(SHORT), "the secret is never shown");
  assert.equal((await gw.fetch("/m", bearer(await mint("HS256", key(MID))))).status, 200);
  assert.equal((await gw.fetch("/m", bearer(await mint("HS512", key(MID))))).status, 401);
  const counted = (await health(gw)).isolate_counters.weak_keys_refused;
  assert.ok(counted >= before + 2, `counted ${counted}, before ${before}`);
});
