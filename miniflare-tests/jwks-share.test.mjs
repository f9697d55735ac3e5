// The JWKS copy isolates share through the location's Cache API. That cache belongs to the
// zone: any other Worker on it can put any URL there. Keys planted in it must never verify a
// token; only a copy the gateway sealed (with a key derived from its admin token) is used.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { Miniflare, Response as MfResponse } from "miniflare";
import * as jose from "jose";
import { gatewayOptions, startUpstream, config } from "./harness.mjs";

const ISSUER = "https://id.example.test/";
const AUDIENCE = "orders-api";
let idp, up;
let fetches = 0;
let real, attacker;

async function keyPair(kid) {
  const { privateKey, publicKey } = await jose.generateKeyPair("ES256", { extractable: true });
  return { kid, privateKey, jwks: { keys: [{ ...(await jose.exportJWK(publicKey)), kid, alg: "ES256", use: "sig" }] } };
}

const mint = (k) =>
  new jose.SignJWT({ sub: "user-1" })
    .setProtectedHeader({ alg: "ES256", kid: k.kid })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime("5m")
    .sign(k.privateKey);

before(async () => {
  real = await keyPair("k1");
  // The attacker publishes a key under the same kid.
  attacker = await keyPair("k1");
  idp = await startUpstream((req, res) => {
    fetches++;
    res.setHeader("content-type", "application/json");
    res.setHeader("cache-control", "max-age=3600");
    res.end(JSON.stringify(real.jwks));
  });
  up = await startUpstream();
});

after(async () => {
  await up?.close();
  await idp?.close();
});

const jwksUrl = () => `${idp.url}/.well-known/jwks.json`;
// Where the gateway keeps its sealed copy: named by an HMAC under the key it derives from the
// admin token (an outsider could not compute it; the tests know the token).
const shareKey = createHmac("sha256", "test-admin-token-of-thirty-two-bytes").update("edge-gateway jwks share key v1").digest();
const shareUrl = () => `https://jwks.edge-gateway.invalid/v1/${createHmac("sha256", shareKey).update("share url\n" + jwksUrl()).digest("hex")}`;

function routes(admin) {
  return config({
    settings: admin ? { admin: { token_secret: "ADMIN_TOKEN" } } : {},
    upstreams: { u: { targets: [{ url: up.url }] } },
    auth: { idp: { type: "jwt", issuer: ISSUER, audiences: [AUDIENCE], jwks_url: jwksUrl(), algorithms: ["ES256"] } },
    routes: [{ id: "jwt", path: "/jwt", upstream: "u", auth: ["idp"] }],
  });
}

/** `count` gateway workers (each its own isolate) in one runtime, so one location's cache. */
async function start({ admin, count = 1 }) {
  const workers = Array.from({ length: count }, (_, i) => ({
    ...gatewayOptions({ bindings: { ADMIN_TOKEN: "test-admin-token-of-thirty-two-bytes" } }),
    name: `gateway-${i}`,
    kvNamespaces: { CONFIG: "shared-config" },
  }));
  const mf = new Miniflare({ workers });
  await mf.ready;
  await (await mf.getKVNamespace("CONFIG", "gateway-0")).put("routes", JSON.stringify(routes(admin)));
  const gateways = await Promise.all(workers.map((w) => mf.getWorker(w.name)));
  const get = (i, token) => gateways[i].fetch("http://gateway.test/jwt", { headers: { authorization: `Bearer ${token}` } });
  return { mf, get, caches: await mf.getCaches() };
}

const planted = (body) =>
  new MfResponse(body, { headers: { "content-type": "application/json", "cache-control": "max-age=3600" } });

for (const admin of [true, false]) {
  test(`keys planted in the location's cache never verify a token (${admin ? "sealed sharing" : "no admin token: no sharing"})`, async () => {
    const { mf, get, caches } = await start({ admin });
    try {
      const attackerJwks = JSON.stringify(attacker.jwks);
      // Under the JWKS URL, and under the gateway's share URL: bare, and in the sealed format
      // with a seal the attacker cannot compute.
      await caches.default.put(jwksUrl(), planted(attackerJwks));
      await caches.default.put(shareUrl(), planted(`jwks-share-v1\n99999999999999\n${"0".repeat(64)}\n${attackerJwks}`));
      const forged = await get(0, await mint(attacker));
      assert.equal(forged.status, 401);
      assert.equal((await forged.json()).code, "invalid_token");
      const before = fetches;
      assert.equal((await get(0, await mint(real))).status, 200, "the identity provider's keys serve");
      assert.equal(fetches, before, "fetched once, for the first request");
    } finally {
      await mf.dispose();
    }
  });
}

test("a huge entry planted under the share URL is refused unread, and the provider's keys serve", async () => {
  // Anyone on the zone can store a body of any size there; the gateway reads at most a JWKS's
  // limit of it (the rest of a huge one would fill the isolate's memory).
  const { mf, get, caches } = await start({ admin: true });
  try {
    await caches.default.put(shareUrl(), planted("jwks-share-v1\n" + " ".repeat(3 << 20)));
    const before = fetches;
    assert.equal((await get(0, await mint(real))).status, 200);
    assert.equal(fetches, before + 1, "the keys came from the identity provider");
    assert.equal((await get(0, await mint(attacker))).status, 401);
  } finally {
    await mf.dispose();
  }
});

test("a sealed copy spares another isolate of the location its fetch; without the admin token none is stored", async () => {
  let { mf, get, caches } = await start({ admin: true, count: 2 });
  try {
    const before = fetches;
    const token = await mint(real);
    assert.equal((await get(0, token)).status, 200);
    assert.equal(fetches, before + 1);
    const stored = await caches.default.match(shareUrl());
    assert.ok(stored, "the sealed copy is stored under the share URL");
    assert.match(await stored.text(), /^jwks-share-v1\n\d+\n[0-9a-f]{64}\n\{/);
    assert.equal(await caches.default.match(jwksUrl()), undefined, "nothing under the JWKS URL itself");
    assert.equal((await get(1, token)).status, 200);
    assert.equal(fetches, before + 1, "the second isolate used the sealed copy");
  } finally {
    await mf.dispose();
  }
  ({ mf, get, caches } = await start({ admin: false }));
  try {
    assert.equal((await get(0, await mint(real))).status, 200);
    assert.equal(await caches.default.match(shareUrl()), undefined);
    assert.equal(await caches.default.match(jwksUrl()), undefined);
  } finally {
    await mf.dispose();
  }
});
