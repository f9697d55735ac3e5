// Authentication through the built worker: JWTs minted by an independent library (jose), a
// JWKS served by a real local server, API keys through the admin API, and the usual forgeries.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as jose from "jose";
import { startGateway, startUpstream, config, sleep } from "./harness.mjs";

const ISSUER = "https://id.example.test/";
const AUDIENCE = "orders-api";
const ADMIN = { authorization: "Bearer test-admin-token-of-thirty-two-bytes" };
const HMAC_SECRET = "a-long-test-secret-for-hmac-signing-0123456789-and-more-for-hs512-ok";

let up, idp, gw, hugeIdp;
let hugeSent = 0; // bytes of the endless JWKS the gateway let the identity provider send
const keys = {}; // alg -> { kid, privateKey, publicJwk }
const jwks = { keys: [] };
let jwksFetches = 0;
let idpDown = false;

const ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "EdDSA"];

async function addKey(alg, kid) {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true, crv: alg === "EdDSA" ? "Ed25519" : undefined });
  const publicJwk = { ...(await jose.exportJWK(publicKey)), kid, alg, use: "sig" };
  jwks.keys.push(publicJwk);
  keys[kid] = { alg, kid, privateKey, publicKey, publicJwk };
  return keys[kid];
}

function claims(extra = {}) {
  return { sub: "user-1", scope: "orders:read profile", email: "ada@example.test", ...extra };
}

/** A token from key `kid`; pass `null` for iss, aud or exp to leave the claim out. */
async function mint(kid, extra = {}, { alg, header = {}, exp = "5m", iss = ISSUER, aud = AUDIENCE, iat = true, signingKey, signOptions } = {}) {
  const k = keys[kid];
  let jwt = new jose.SignJWT(claims(extra)).setProtectedHeader({ alg: alg || k.alg, kid, ...header });
  if (iss !== null) jwt = jwt.setIssuer(iss);
  if (aud !== null) jwt = jwt.setAudience(aud);
  if (iat) jwt = jwt.setIssuedAt();
  if (exp !== null) jwt = jwt.setExpirationTime(exp);
  return jwt.sign(signingKey || k.privateKey, signOptions);
}

async function mintHmac(alg = "HS256", extra = {}) {
  return new jose.SignJWT(claims(extra))
    .setProtectedHeader({ alg })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime("5m")
    .sign(new TextEncoder().encode(HMAC_SECRET));
}

const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");

before(async () => {
  for (const alg of ASYMMETRIC) await addKey(alg, `k-${alg}`);
  idp = await startUpstream((req, res) => {
    jwksFetches++;
    if (idpDown) {
      res.statusCode = 503;
      return res.end("down");
    }
    res.setHeader("content-type", "application/json");
    res.setHeader("cache-control", "max-age=3600");
    res.end(JSON.stringify(jwks));
  });
  // A JWKS far over the gateway's 1 MiB limit, streamed as fast as the gateway reads it.
  hugeIdp = await startUpstream((req, res) => {
    res.setHeader("content-type", "application/json");
    const chunk = Buffer.alloc(1 << 20, 0x20);
    res.write('{"keys": [');
    const pump = () => {
      while (hugeSent < 64 << 20) {
        hugeSent += chunk.length;
        if (!res.write(chunk)) return res.once("drain", pump);
      }
      res.end("]}");
    };
    pump();
  });
  up = await startUpstream();
  gw = await startGateway({
    bindings: { ADMIN_TOKEN: "test-admin-token-of-thirty-two-bytes", JWT_SECRET: HMAC_SECRET },
    routes: config({
      settings: { admin: { path: "/__gateway", token_secret: "ADMIN_TOKEN" } },
      upstreams: { u: { targets: [{ url: up.url }] } },
      auth: {
        idp: {
          type: "jwt",
          issuer: ISSUER,
          audiences: [AUDIENCE, "other-api"],
          jwks_url: `${idp.url}/.well-known/jwks.json`,
          algorithms: ASYMMETRIC,
          forward_claims: { sub: "x-user-id", email: "x-user-email" },
          token_cookie: "session",
          token_query: "access_token",
        },
        hmac: { type: "jwt", issuer: ISSUER, audiences: [AUDIENCE], secret: "JWT_SECRET", algorithms: ["HS256", "HS384", "HS512"] },
        huge: { type: "jwt", issuer: ISSUER, audiences: [AUDIENCE], jwks_url: `${hugeIdp.url}/jwks`, algorithms: ["ES256"] },
        nocache: { type: "jwt", issuer: ISSUER, audiences: [AUDIENCE], jwks_url: `${idp.url}/.well-known/jwks.json`, algorithms: ["ES256"], verified_cache_s: 0 },
        partners: { type: "api_key", header: "x-api-key" },
      },
      routes: [
        { id: "jwt", path: "/jwt/{*p}", upstream: "u", auth: ["idp"] },
        { id: "scoped", path: "/scoped", upstream: "u", auth: ["idp"], scopes: ["orders:read"] },
        { id: "admin-scope", path: "/needs-admin", upstream: "u", auth: ["idp"], scopes: ["orders:admin"] },
        { id: "hmac", path: "/hmac", upstream: "u", auth: ["hmac"] },
        { id: "nocache", path: "/nocache", upstream: "u", auth: ["nocache"] },
        { id: "huge", path: "/huge", upstream: "u", auth: ["huge"] },
        { id: "partner", path: "/partner", upstream: "u", auth: ["partners"] },
        { id: "either", path: "/either", upstream: "u", auth: ["idp", "partners"] },
        { id: "public", path: "/public", upstream: "u", auth: "none" },
      ],
    }),
  });
});

after(async () => {
  await gw?.close();
  await up?.close();
  await idp?.close();
  await hugeIdp?.close();
});

const get = (path, headers = {}) => gw.fetch(path, { headers });
const bearer = (t) => ({ authorization: `Bearer ${t}` });

async function refused(res, status, code) {
  assert.equal(res.status, status);
  const body = await res.json();
  assert.equal(body.code, code, JSON.stringify(body));
  return body;
}

test("every supported algorithm verifies with keys from the JWKS", async () => {
  for (const alg of ASYMMETRIC) {
    const r = await get("/jwt/x", bearer(await mint(`k-${alg}`)));
    assert.equal(r.status, 200, alg);
  }
  for (const alg of ["HS256", "HS384", "HS512"]) {
    const r = await get("/hmac", bearer(await mintHmac(alg)));
    assert.equal(r.status, 200, alg);
  }
});

test("verified identity reaches the upstream; client copies of identity headers never do", async () => {
  const token = await mint("k-ES256");
  const r = await gw.raw("/jwt/x", {
    headers: { ...bearer(token), "X-User-Id": "admin", "x-user-email": "spoof@evil.test" },
  });
  const seen = JSON.parse(r.body).headers;
  assert.equal(seen["x-user-id"], "user-1");
  assert.equal(seen["x-user-email"], "ada@example.test");
  // On a public route the spoofed headers are removed too, in any case.
  const pub = await gw.raw("/public", { headers: { "X-USER-ID": "admin", "x-user-email": "spoof@evil.test" } });
  const pubSeen = JSON.parse(pub.body).headers;
  assert.equal(pubSeen["x-user-id"], undefined);
  assert.equal(pubSeen["x-user-email"], undefined);
});

test("missing and malformed credentials are 401 with RFC 6750 challenges", async () => {
  let r = await get("/jwt/x");
  await refused(r, 401, "missing_credentials");
  assert.equal(r.headers.get("www-authenticate"), "Bearer");
  r = await get("/jwt/x", bearer("not-a-jwt"));
  await refused(r, 401, "invalid_token");
  assert.match(r.headers.get("www-authenticate"), /^Bearer error="invalid_token"/);
  r = await get("/jwt/x", { authorization: "Basic dXNlcjpwYXNz" });
  await refused(r, 401, "missing_credentials");
});

test("claim rules: expiry, not-before, issuer, audience", async () => {
  const kid = "k-RS256";
  await refused(await get("/jwt/x", bearer(await mint(kid, {}, { exp: Math.floor(Date.now() / 1000) - 120 }))), 401, "invalid_token");
  await refused(await get("/jwt/x", bearer(await mint(kid, { nbf: Math.floor(Date.now() / 1000) + 600 }))), 401, "invalid_token");
  await refused(await get("/jwt/x", bearer(await mint(kid, {}, { iss: "https://evil.example.test/" }))), 401, "invalid_token");
  await refused(await get("/jwt/x", bearer(await mint(kid, {}, { aud: "someone-else" }))), 401, "invalid_token");
  await refused(await get("/jwt/x", bearer(await mint(kid, {}, { aud: null }))), 401, "invalid_token");
  await refused(await get("/jwt/x", bearer(await mint(kid, {}, { exp: null }))), 401, "invalid_token");
  await refused(await get("/jwt/x", bearer(await mint(kid, {}, { iss: null }))), 401, "invalid_token");
  assert.equal((await get("/jwt/x", bearer(await mint(kid, {}, { aud: ["x", "other-api"] })))).status, 200);
  // Within the default 60 s leeway.
  assert.equal((await get("/jwt/x", bearer(await mint(kid, {}, { exp: Math.floor(Date.now() / 1000) - 30 })))).status, 200);
});

test("forgeries: alg none, HS256 signed with the RSA public key, tampering, crit, wrong kid", async () => {
  const payload = { ...claims(), iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300 };
  for (const alg of ["none", "None", "NONE", "nOnE"]) {
    const token = `${b64({ alg, typ: "JWT" })}.${b64(payload)}.`;
    await refused(await get("/jwt/x", bearer(token)), 401, "invalid_token");
  }
  // The classic key-confusion attack: HMAC keyed with the RSA public key's PEM (and its JWK n).
  const rsa = keys["k-RS256"];
  const pem = await jose.exportSPKI(rsa.publicKey);
  for (const secret of [pem, rsa.publicJwk.n]) {
    const forged = await new jose.SignJWT(claims())
      .setProtectedHeader({ alg: "HS256", kid: "k-RS256" })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(secret));
    await refused(await get("/jwt/x", bearer(forged)), 401, "invalid_token");
    await refused(await get("/hmac", bearer(forged)), 401, "invalid_token");
  }
  // Tampered payload, tampered signature.
  const good = await mint("k-RS256");
  const [h, p, s] = good.split(".");
  const elevated = b64({ ...JSON.parse(Buffer.from(p, "base64url")), sub: "admin" });
  await refused(await get("/jwt/x", bearer(`${h}.${elevated}.${s}`)), 401, "invalid_token");
  const flipped = s.slice(0, -4) + (s.slice(-4) === "AAAA" ? "BBBB" : "AAAA");
  await refused(await get("/jwt/x", bearer(`${h}.${p}.${flipped}`)), 401, "invalid_token");
  // A token signed by one key but naming another key's kid.
  await refused(await get("/jwt/x", bearer(await mint("k-ES256", {}, { header: { kid: "k-PS256" } }))), 401, "invalid_token");
  // An RS256 key used for PS256: the key's algorithm is fixed, the header cannot change it.
  const rsaAsPss = await jose.importJWK(await jose.exportJWK(keys["k-RS256"].privateKey), "PS256");
  await refused(await get("/jwt/x", bearer(await mint("k-RS256", {}, { alg: "PS256", signingKey: rsaAsPss }))), 401, "invalid_token");
  // crit names an extension the gateway does not understand.
  const crit = { header: { crit: ["urn:example:x"], "urn:example:x": 1 }, signOptions: { crit: { "urn:example:x": true } } };
  await refused(await get("/jwt/x", bearer(await mint("k-ES256", {}, crit))), 401, "invalid_token");
  // Header fields that would point at attacker keys are ignored, not followed.
  const attacker = await jose.generateKeyPair("RS256", { extractable: true });
  const injected = await new jose.SignJWT(claims())
    .setProtectedHeader({ alg: "RS256", jwk: await jose.exportJWK(attacker.publicKey), jku: "http://127.0.0.1:1/evil.json" })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setExpirationTime("5m")
    .sign(attacker.privateKey);
  await refused(await get("/jwt/x", bearer(injected)), 401, "invalid_token");
});

test("tokens over 8 KiB are refused before parsing", async () => {
  const r = await get("/jwt/x", bearer(await mint("k-ES256", { pad: "x".repeat(9000) })));
  await refused(r, 401, "invalid_token");
});

test("a claim value with CR, LF or NUL rejects the token instead of reaching a header", async () => {
  for (const bad of ["a\r\nx-admin: 1", "a\nb", "a\u0000b"]) {
    const r = await get("/jwt/x", bearer(await mint("k-ES256", { email: bad })));
    await refused(r, 401, "invalid_token");
  }
  // Non-ASCII claims are forwarded percent-encoded, never broken.
  const r = await get("/jwt/x", bearer(await mint("k-ES256", { email: "zoë@例え.test" })));
  assert.equal(r.status, 200);
  assert.equal((await r.json()).headers["x-user-email"], "zo%C3%AB@%E4%BE%8B%E3%81%88.test");
});

test("a claim with a space at an end reaches the upstream whole, never as another subject's value", async () => {
  // The runtime strips a header value's leading and trailing whitespace: sent as they are,
  // sub "user-1 " would arrive as user-1's x-user-id and x-consumer.
  const r = await get("/jwt/x", bearer(await mint("k-ES256", { sub: "user-1 ", email: "\tada@example.test" })));
  assert.equal(r.status, 200);
  const seen = (await r.json()).headers;
  assert.equal(seen["x-user-id"], "user-1%20");
  assert.equal(seen["x-consumer"], "jwt/idp/user-1%20");
  assert.equal(seen["x-user-email"], "%09ada@example.test");
});

test("scopes: all required scopes must be granted (scope string or scp array)", async () => {
  assert.equal((await get("/scoped", bearer(await mint("k-ES256")))).status, 200);
  assert.equal((await get("/scoped", bearer(await mint("k-ES256", { scope: undefined, scp: ["orders:read"] })))).status, 200);
  const r = await get("/scoped", bearer(await mint("k-ES256", { scope: "profile" })));
  await refused(r, 403, "insufficient_scope");
  assert.match(r.headers.get("www-authenticate"), /error="insufficient_scope"/);
  await refused(await get("/needs-admin", bearer(await mint("k-ES256"))), 403, "insufficient_scope");
});

test("token sources: exactly one Authorization header, or the cookie, or the query parameter", async () => {
  const token = await mint("k-ES256");
  // Two Authorization headers (sent as two header lines) are refused.
  const two = await gw.raw("/jwt/x", { headers: { authorization: [`Bearer ${token}`, `Bearer ${token}`] } });
  assert.equal(two.status, 400);
  const cookie = await get("/jwt/x", { cookie: `theme=dark; session=${token}` });
  assert.equal(cookie.status, 200);
  const query = await get(`/jwt/x?a=1&access_token=${token}&b=2`);
  assert.equal(query.status, 200);
  assert.equal((await query.json()).url, "/jwt/x?a=1&b=2", "the consumed credential is not forwarded");
  const both = await get(`/jwt/x?access_token=${token}`, bearer(token));
  assert.equal(both.status, 400);
  // After a `;` (which some upstream frameworks split on) the parameter is read and removed too.
  const semi = await get(`/jwt/x?a=1;access_token=${token}&b=2`);
  assert.equal(semi.status, 200);
  assert.equal((await semi.json()).url, "/jwt/x?a=1&b=2", "no credential behind a ; reaches the upstream");
  const hidden = await get(`/jwt/x?a=1;access_token=forged`, bearer(token));
  assert.equal(hidden.status, 400, "a second credential behind a ; is not passed along unread");
});

test("key rotation: a new kid in the JWKS is accepted without a restart", async () => {
  await sleep(5200); // earlier tests sent unknown kids: let the re-fetch interval pass
  const before = jwksFetches;
  const rotated = await addKey("ES256", "rotated-1");
  const r = await get("/jwt/x", bearer(await mint(rotated.kid)));
  assert.equal(r.status, 200);
  assert.ok(jwksFetches > before, "the unknown kid made the gateway look at the JWKS again");
});

test("a flood of unknown kids causes at most one JWKS fetch per few seconds", async () => {
  await sleep(5200); // let the previous forced refresh window pass
  const before = jwksFetches;
  const k = keys["k-ES256"];
  const started = Date.now();
  for (let i = 0; i < 40; i++) {
    const token = await new jose.SignJWT(claims())
      .setProtectedHeader({ alg: "ES256", kid: `invented-${i}-${Math.random()}` })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime("5m")
      .sign(k.privateKey);
    await refused(await get("/jwt/x", bearer(token)), 401, "invalid_token");
  }
  const elapsedWindows = Math.ceil((Date.now() - started) / 5000);
  const fetched = jwksFetches - before;
  assert.ok(fetched >= 1 && fetched <= elapsedWindows + 1, `${fetched} JWKS fetches for 40 unknown kids in ${Date.now() - started} ms`);
});

test("without the verified-token cache every request is verified, with the same outcome", async () => {
  const token = await mint("k-ES256");
  for (let i = 0; i < 3; i++) assert.equal((await get("/nocache", bearer(token))).status, 200);
  await refused(await get("/nocache", bearer(token + "x")), 401, "invalid_token");
});

test("API keys: created through the admin API, used, listed without secrets, revoked", async () => {
  let r = await gw.fetch("/__gateway/keys", { method: "POST", body: JSON.stringify({ consumer: "acme" }) });
  assert.equal(r.status, 401, "creating keys needs the admin token");
  r = await gw.fetch("/__gateway/keys", {
    method: "POST",
    headers: { ...ADMIN, "content-type": "application/json" },
    body: JSON.stringify({ consumer: "acme", scopes: ["orders:read"] }),
  });
  assert.equal(r.status, 201);
  const created = await r.json();
  assert.match(created.key, /^gwk_[A-Za-z0-9_-]{43}$/);
  assert.match(created.id, /^[0-9a-f]{16}$/);

  r = await gw.raw("/partner", { headers: { "x-api-key": created.key } });
  assert.equal(r.status, 200);
  const seen = JSON.parse(r.body).headers;
  assert.equal(seen["x-api-key"], undefined, "the key itself is not forwarded");

  assert.equal((await get("/either", { "x-api-key": created.key })).status, 200);
  assert.equal((await get("/either", bearer(await mint("k-ES256")))).status, 200);
  // Both at once are two identities: the upstream could read the token's behind the key's consumer.
  const both = await refused(await get("/either", { "x-api-key": created.key, ...bearer(await mint("k-ES256")) }), 400, "bad_request");
  assert.match(both.detail, /more than one identity/);
  await refused(await get("/partner", { "x-api-key": created.key + "x" }), 401, "invalid_token");
  await refused(await get("/partner", { "x-api-key": "x".repeat(300) }), 401, "invalid_token");

  // Scopes that pass one by one but would not fit in the key's KV metadata: 400, nothing stored.
  const before = (await gw.kv.list({ prefix: "apikey:" })).keys.length;
  const wide = Array.from({ length: 8 }, (_, i) => `scope${i}:` + "x".repeat(120));
  r = await gw.fetch("/__gateway/keys", { method: "POST", headers: ADMIN, body: JSON.stringify({ consumer: "acme", scopes: wide }) });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).code, "bad_request");
  assert.equal((await gw.kv.list({ prefix: "apikey:" })).keys.length, before);

  const listed = await (await gw.fetch("/__gateway/keys", { headers: ADMIN })).json();
  const mine = listed.keys.find((k) => k.id === created.id);
  assert.deepEqual(mine, { id: created.id, consumer: "acme", scopes: ["orders:read"], enabled: true, created_at_ms: created.created_at_ms });
  assert.ok(!JSON.stringify(listed).includes(created.key), "the key is never listed");
  const stored = await gw.kv.list({ prefix: "apikey:" });
  for (const { name } of stored.keys) {
    assert.ok(!(await gw.kv.get(name)).includes(created.key), "the clear key is never stored");
  }

  r = await gw.fetch(`/__gateway/keys/${created.id}`, { method: "DELETE", headers: ADMIN });
  assert.equal(r.status, 200);
  await refused(await get("/partner", { "x-api-key": created.key }), 401, "invalid_token");
  assert.equal((await gw.fetch(`/__gateway/keys/${created.id}`, { method: "DELETE", headers: ADMIN })).status, 404);
});

test("a JWKS that turns into garbage does not throw away the keys already known", async () => {
  await sleep(5200); // let the unknown-kid re-fetch interval pass
  const good = await mint("k-ES256");
  assert.equal((await get("/jwt/x", bearer(good))).status, 200);
  const saved = jwks.keys;
  jwks.keys = "<html>maintenance</html>";
  try {
    // An unknown kid forces a re-fetch, which now yields nothing usable.
    await refused(await get("/jwt/x", bearer(await mint("k-ES256", {}, { header: { kid: "unknown-now" } }))), 401, "invalid_token");
    assert.equal((await get("/jwt/x", bearer(await mint("k-ES256", { n: 1 })))).status, 200, "the known keys still verify");
  } finally {
    jwks.keys = saved;
  }
});

test("a JWKS over 1 MiB is refused once 1 MiB has been read, not after reading all of it", async () => {
  // Reading a document whole before judging its size let an endless or huge JWKS fill the
  // isolate's memory (128 MB on Workers), taking every request in it down.
  await refused(await get("/huge", bearer(await mint("k-ES256"))), 503, "auth_unavailable");
  assert.ok(hugeSent < 32 << 20, `the gateway read ${hugeSent >> 20} MiB of a JWKS it refuses above 1 MiB`);
});

test("a JWKS redirected within loopback serves; one redirected to a plain-http address is refused", async () => {
  // The runtime follows redirects: the address the keys finally came from must be https (or
  // loopback), or they were read over plaintext from wherever the redirect pointed.
  const served = [];
  const moved = await startUpstream((req, res) => {
    served.push(req.url);
    if (req.url === "/old") {
      res.statusCode = 302;
      res.setHeader("location", `${idp.url}/.well-known/jwks.json`);
      return res.end();
    }
    // 0.0.0.0 reaches this machine, but is no loopback name: it stands for any plain-http host.
    res.statusCode = 302;
    res.setHeader("location", `http://0.0.0.0:${new URL(idp.url).port}/.well-known/jwks.json`);
    res.end();
  });
  const scheme = (path) => ({ type: "jwt", issuer: ISSUER, audiences: [AUDIENCE], jwks_url: `${moved.url}${path}`, algorithms: ["ES256"] });
  const other = await startGateway({
    routes: config({
      upstreams: { u: { targets: [{ url: up.url }] } },
      auth: { within: scheme("/old"), away: scheme("/away") },
      routes: [
        { id: "within", path: "/within", upstream: "u", auth: ["within"] },
        { id: "away", path: "/away", upstream: "u", auth: ["away"] },
      ],
    }),
  });
  try {
    const token = await mint("k-ES256");
    assert.equal((await other.fetch("/within", { headers: bearer(token) })).status, 200);
    const before = jwksFetches;
    await refused(await other.fetch("/away", { headers: bearer(token) }), 503, "auth_unavailable");
    assert.ok(served.includes("/away"));
    assert.ok(jwksFetches > before, "the redirect was followed, so only the check refused its keys");
  } finally {
    await other.close();
    await moved.close();
  }
});

test("an unreachable identity provider with no keys yet is 503, not 401", async () => {
  const down = await startUpstream((req, res) => {
    res.statusCode = 503;
    res.end();
  });
  const other = await startGateway({
    routes: config({
      upstreams: { u: { targets: [{ url: up.url }] } },
      auth: { idp: { type: "jwt", issuer: ISSUER, audiences: [AUDIENCE], jwks_url: `${down.url}/jwks`, algorithms: ["ES256"] } },
      routes: [{ id: "jwt", path: "/jwt", upstream: "u", auth: ["idp"] }],
    }),
  });
  try {
    await refused(await other.fetch("/jwt", { headers: bearer(await mint("k-ES256")) }), 503, "auth_unavailable");
  } finally {
    await other.close();
    await down.close();
  }
});

/** The ECDSA twin of an ES256 token: S replaced by n − S (a different string, equally valid). */
function malleate(token) {
  const n = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
  const [h, p, s] = token.split(".");
  const sig = Buffer.from(s, "base64url");
  const low = n - BigInt("0x" + sig.subarray(32).toString("hex"));
  Buffer.from(low.toString(16).padStart(64, "0"), "hex").copy(sig, 32);
  return `${h}.${p}.${sig.toString("base64url")}`;
}

/**
 * An identity provider serving the JWKS `doc()` returns (read per request, so a test can rotate
 * it) for `maxAgeS`, and a gateway whose one route `/jwt` trusts it through the scheme `idp`
 * (`scheme` adds to its fields). `close()` stops both.
 */
async function jwksGateway(doc, maxAgeS, scheme) {
  const provider = await startUpstream((req, res) => {
    res.setHeader("content-type", "application/json");
    res.setHeader("cache-control", `max-age=${maxAgeS}`);
    res.end(JSON.stringify(doc()));
  });
  const gateway = await startGateway({
    routes: config({
      upstreams: { u: { targets: [{ url: up.url }] } },
      auth: { idp: { type: "jwt", issuer: ISSUER, audiences: [AUDIENCE], jwks_url: `${provider.url}/jwks`, ...scheme } },
      routes: [{ id: "jwt", path: "/jwt", upstream: "u", auth: ["idp"] }],
    }),
  });
  gateway.closeAll = async () => {
    await gateway.close();
    await provider.close();
  };
  return gateway;
}

test("an ES256 token's malleated twin is the same verified token, not a second verification", async () => {
  // S and n − S both verify, so anyone holding a token can make its twin. Keyed on the
  // string, the twin missed the verified-token cache and cost a full verification each time.
  // Observed here through a key the isolate no longer knows: only a cache hit still serves.
  const served = { keys: [keys["k-ES256"].publicJwk, keys["k-PS256"].publicJwk] };
  const other = await jwksGateway(() => served, 3600, { algorithms: ["ES256", "PS256"], verified_cache_s: 300 });
  try {
    const token = await mint("k-ES256");
    const twin = malleate(token);
    assert.notEqual(twin, token);
    await jose.jwtVerify(twin, keys["k-ES256"].publicKey); // jose accepts the twin too
    assert.equal((await other.fetch("/jwt", { headers: bearer(token) })).status, 200);
    // The key leaves the JWKS, and an unknown kid makes the isolate read it again.
    served.keys = [keys["k-PS256"].publicJwk];
    const unknown = await mint("k-ES256", {}, { header: { kid: "gone" } });
    await refused(await other.fetch("/jwt", { headers: bearer(unknown) }), 401, "invalid_token");
    assert.equal((await other.fetch("/jwt", { headers: bearer(token) })).status, 200, "the token is served from the cache");
    const r = await other.fetch("/jwt", { headers: bearer(twin) });
    assert.equal(r.status, 200, "its twin is the same cache entry");
    assert.equal((await r.json()).headers["x-consumer"], "jwt/idp/user-1");
  } finally {
    await other.closeAll();
  }
});

test("a key rotated under the same kid is picked up without waiting for the JWKS max-age", async () => {
  // Some providers rotate a key and keep its kid: the new key's tokens named a kid the
  // isolate knew, failed their signature, and were refused until the old copy expired.
  const before = await jose.generateKeyPair("ES256", { extractable: true });
  const after = await jose.generateKeyPair("ES256", { extractable: true });
  const published = async (key) => ({ keys: [{ ...(await jose.exportJWK(key.publicKey)), kid: "same", alg: "ES256" }] });
  let served = await published(before);
  const other = await jwksGateway(() => served, 86400, { algorithms: ["ES256"] });
  const signed = (key) =>
    new jose.SignJWT(claims())
      .setProtectedHeader({ alg: "ES256", kid: "same" })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime("5m")
      .sign(key.privateKey);
  try {
    assert.equal((await other.fetch("/jwt", { headers: bearer(await signed(before)) })).status, 200);
    served = await published(after);
    const r = await other.fetch("/jwt", { headers: bearer(await signed(after)) });
    assert.equal(r.status, 200, "the new key under the old kid verifies at once");
    await refused(await other.fetch("/jwt", { headers: bearer(await signed(before)) }), 401, "invalid_token");
  } finally {
    await other.closeAll();
  }
});
