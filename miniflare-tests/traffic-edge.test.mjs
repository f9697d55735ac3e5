// Traffic policy at the edge through the built worker: CORS preflights and actual requests
// across allowed, refused, `null`, suffix-trick and scheme-mismatched origins; CORS headers on
// gateway errors (401, 429, 502), cache hits and upstream answers; IP rules with Cloudflare's
// `cf` facts injected (no network lookup), refusing before authentication; the consumer header.

import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startUpstream, config, hs256Token, closedPort } from "./harness.mjs";

const SECRET = "traffic-edge-test-secret-0123456789abcdef";
const APP = "https://app.example.com";
const OFFICE_IP = "203.0.113.9";
const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

let up;
let gw;
before(async () => {
  // Echoes the request; on /vary paths answers with its own Vary and a permissive CORS header.
  up = await startUpstream((req, res, record) => {
    res.setHeader("content-type", "application/json");
    if (req.url.includes("vary")) {
      res.setHeader("vary", "Accept-Encoding");
      res.setHeader("access-control-allow-origin", "*");
    }
    if (req.url.startsWith("/cached")) res.setHeader("cache-control", "max-age=60");
    res.end(JSON.stringify(record));
  });
  cleanup.push(() => up.close());
  const dead = `http://127.0.0.1:${await closedPort()}`;
  const web = "web";
  gw = await startGateway({
    bindings: { JWT_SECRET: SECRET },
    routes: config({
      upstreams: { u: { targets: [{ url: up.url }], timeout_ms: 2000 }, dead: { targets: [{ url: dead }], timeout_ms: 2000 } },
      auth: { users: { type: "jwt", issuer: "https://id.test/", audiences: ["api"], secret: "JWT_SECRET", algorithms: ["HS256"] } },
      rate_limits: { one: { key: "ip", limit: 1, window_s: 3600 }, many: { key: "route", limit: 1000, window_s: 60 } },
      cors: {
        web: {
          origins: [APP, "https://*.example.com"],
          methods: ["GET", "POST"],
          headers: ["authorization", "content-type"],
          expose_headers: ["x-request-id", "ratelimit", "retry-after"],
          credentials: true,
          max_age_s: 600,
        },
        wide: { origins: [APP], methods: ["GET", "DELETE"] },
      },
      ip_rules: {
        office: { allow: ["203.0.113.0/24", "2001:db8:1::/48"] },
        abusive: { deny: ["203.0.113.66"], deny_countries: ["T1"], deny_asns: [64496] },
      },
      routes: [
        { id: "api", methods: ["GET", "POST"], path: "/api/{*rest}", upstream: "u", auth: ["users"], cors: web, ip_rules: ["office", "abusive"] },
        { id: "public", methods: ["GET"], path: "/public/{*rest}", upstream: "u", auth: "none", cors: web },
        { id: "limited", methods: ["GET"], path: "/limited/{*rest}", upstream: "u", auth: "none", cors: web, rate_limits: ["one"] },
        { id: "cached", methods: ["GET"], path: "/cached/{*rest}", upstream: "u", auth: "none", cors: web, cache: { ttl_s: 60 } },
        { id: "down", methods: ["GET"], path: "/down", upstream: "dead", auth: "none", cors: web, rate_limits: ["many"] },
        { id: "plain", methods: ["GET"], path: "/plain", upstream: "u", auth: "none" },
        { id: "scoped", methods: ["GET"], path: "/scoped", upstream: "u", auth: ["users"], scopes: ["orders:write"], cors: web },
        // Two routes on one path: only the reading one has a policy (whose methods name DELETE).
        { id: "doc-read", methods: ["GET", "OPTIONS"], path: "/doc", upstream: "u", auth: "none", cors: "wide" },
        { id: "doc-delete", methods: ["DELETE"], path: "/doc", upstream: "u", auth: "none" },
      ],
    }),
  });
  cleanup.push(() => gw.close());
});

const token = (sub = "alice") => hs256Token(SECRET, sub);

/** A preflight for `method` from `origin`, from the office. */
function preflight(path, origin, method = "POST", headers = "authorization, content-type", extra = {}) {
  return gw.fetch(path, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": method,
      ...(headers ? { "access-control-request-headers": headers } : {}),
      "cf-connecting-ip": OFFICE_IP,
      ...extra,
    },
  });
}

const varyTokens = (r) => (r.headers.get("vary") ?? "").split(",").map((t) => t.trim().toLowerCase()).filter(Boolean);

/** Origins that must never be allowed by the policy above, and why. */
const REFUSED_ORIGINS = [
  ["https://evil.test", "another site"],
  ["null", "the null origin"],
  ["https://evil-example.com", "a suffix trick without the dot"],
  ["https://example.com.evil.com", "the allowed domain as a prefix"],
  ["https://example.com", "the wildcard's apex"],
  ["http://app.example.com", "a scheme mismatch"],
  ["https://app.example.com:8443", "a port mismatch"],
  ["https://APP.example.com", "another spelling"],
];

test("a preflight is answered 204 by the gateway on a route without OPTIONS, before auth, never upstream", async () => {
  const seen = up.requests.length;
  const r = await preflight("/api/orders", APP);
  assert.equal(r.status, 204);
  assert.equal(await r.text(), "");
  assert.equal(r.headers.get("access-control-allow-origin"), APP);
  assert.equal(r.headers.get("access-control-allow-credentials"), "true");
  assert.equal(r.headers.get("access-control-allow-methods"), "GET, POST");
  assert.equal(r.headers.get("access-control-allow-headers"), "authorization, content-type");
  assert.equal(r.headers.get("access-control-max-age"), "600");
  assert.ok(varyTokens(r).includes("origin"));
  assert.ok(r.headers.get("x-request-id"));
  // A wildcard subdomain, and a preflight that asks for no headers.
  const sub = await preflight("/public/x", "https://shop.example.com", "GET", null);
  assert.equal(sub.status, 204);
  assert.equal(sub.headers.get("access-control-allow-origin"), "https://shop.example.com");
  assert.equal(sub.headers.get("access-control-allow-headers"), null);
  assert.equal(up.requests.length, seen, "no preflight reached the upstream");
});

test("preflights from refused origins, or asking for what the policy lacks, are 403 cors_forbidden", async () => {
  const seen = up.requests.length;
  for (const [origin, why] of REFUSED_ORIGINS) {
    const r = await preflight("/api/orders", origin);
    assert.equal(r.status, 403, why);
    assert.equal(r.headers.get("content-type"), "application/problem+json");
    assert.equal((await r.json()).code, "cors_forbidden", why);
    assert.equal(r.headers.get("access-control-allow-origin"), null, why);
    assert.equal(r.headers.get("access-control-allow-credentials"), null, why);
  }
  const header = await preflight("/api/orders", APP, "POST", "x-secret-header");
  assert.equal(header.status, 403);
  assert.match((await header.json()).detail, /x-secret-header/);
  // DELETE: no route accepts it, so the OPTIONS request is routed as itself (405), not answered.
  const method = await preflight("/api/orders", APP, "DELETE", null);
  assert.equal(method.status, 405);
  await method.arrayBuffer();
  assert.equal(up.requests.length, seen);
});

test("a policy never answers a preflight for another route's method on the same path", async () => {
  const seen = up.requests.length;
  // DELETE /doc is a route without a policy: its preflight is routed as OPTIONS to the reading
  // route, whose policy once allowed it (and the page then sent the DELETE).
  const del = await preflight("/doc", APP, "DELETE", null);
  assert.equal(del.status, 403);
  const problem = await del.json();
  assert.equal(problem.code, "cors_forbidden");
  assert.doesNotMatch(problem.detail, /DELETE/);
  const get = await preflight("/doc", APP, "GET", null);
  assert.equal(get.status, 204);
  assert.equal(get.headers.get("access-control-allow-methods"), "GET");
  assert.equal(up.requests.length, seen, "preflights never reach the upstream");
});

test("actual requests: allowed origins get the CORS headers, every other origin none, all vary on Origin", async () => {
  for (const origin of [APP, "https://a.b.example.com"]) {
    const r = await gw.fetch("/public/x", { headers: { origin } });
    assert.equal(r.status, 200);
    await r.arrayBuffer();
    assert.equal(r.headers.get("access-control-allow-origin"), origin);
    assert.equal(r.headers.get("access-control-allow-credentials"), "true");
    assert.equal(r.headers.get("access-control-expose-headers"), "x-request-id, ratelimit, retry-after");
    assert.ok(varyTokens(r).includes("origin"));
  }
  for (const [origin, why] of REFUSED_ORIGINS) {
    const r = await gw.fetch("/public/x", { headers: { origin } });
    assert.equal(r.status, 200, why);
    await r.arrayBuffer();
    assert.equal(r.headers.get("access-control-allow-origin"), null, why);
    assert.equal(r.headers.get("access-control-allow-credentials"), null, why);
    assert.ok(varyTokens(r).includes("origin"), why);
  }
  const none = await gw.fetch("/public/x");
  await none.arrayBuffer();
  assert.equal(none.headers.get("access-control-allow-origin"), null);
  assert.ok(varyTokens(none).includes("origin"), "a non-CORS answer still varies on Origin");
  // A route without a policy is untouched.
  const plain = await gw.fetch("/plain", { headers: { origin: APP } });
  await plain.arrayBuffer();
  assert.equal(plain.headers.get("access-control-allow-origin"), null);
  assert.ok(!varyTokens(plain).includes("origin"));
});

test("the upstream's Vary is kept and its own CORS headers never widen the policy", async () => {
  const allowed = await gw.fetch("/public/vary", { headers: { origin: APP } });
  await allowed.arrayBuffer();
  assert.deepEqual(varyTokens(allowed), ["accept-encoding", "origin"]);
  assert.equal(allowed.headers.get("access-control-allow-origin"), APP);
  const refused = await gw.fetch("/public/vary", { headers: { origin: "https://evil.test" } });
  await refused.arrayBuffer();
  assert.equal(refused.headers.get("access-control-allow-origin"), null, "the upstream's * is removed");
  assert.deepEqual(varyTokens(refused), ["accept-encoding", "origin"]);
});

test("gateway errors carry the CORS headers: 401, 403, 429 and 502", async () => {
  const origin = { origin: APP };
  const unauthorized = await gw.fetch("/api/orders", { headers: { ...origin, "cf-connecting-ip": OFFICE_IP } });
  assert.equal(unauthorized.status, 401);
  assert.equal((await unauthorized.json()).code, "missing_credentials");
  assert.equal(unauthorized.headers.get("access-control-allow-origin"), APP);
  assert.equal(unauthorized.headers.get("access-control-allow-credentials"), "true");
  assert.ok(varyTokens(unauthorized).includes("origin"));

  const scope = await gw.fetch("/scoped", { headers: { ...origin, authorization: `Bearer ${await token()}` } });
  assert.equal(scope.status, 403);
  assert.equal((await scope.json()).code, "insufficient_scope");
  assert.equal(scope.headers.get("access-control-allow-origin"), APP);
  assert.match(scope.headers.get("access-control-expose-headers"), /x-request-id/);

  const from = { ...origin, "cf-connecting-ip": "198.51.100.77" };
  const first = await gw.fetch("/limited/x", { headers: from });
  assert.equal(first.status, 200);
  await first.arrayBuffer();
  const limited = await gw.fetch("/limited/x", { headers: from });
  assert.equal(limited.status, 429);
  assert.equal((await limited.json()).code, "rate_limited");
  assert.equal(limited.headers.get("access-control-allow-origin"), APP);
  assert.ok(limited.headers.get("retry-after"));
  assert.ok(varyTokens(limited).includes("origin"));

  const down = await gw.fetch("/down", { headers: origin });
  assert.equal(down.status, 502);
  assert.equal((await down.json()).code, "upstream_unreachable");
  assert.equal(down.headers.get("access-control-allow-origin"), APP);
  assert.ok(varyTokens(down).includes("origin"));
  // The other stages' answer headers reach a failed exchange's error too.
  assert.match(down.headers.get("ratelimit") ?? "", /^"many";r=\d+;t=\d+$/);
});

test("cache hits carry the CORS headers of their own request's origin, never a stored one", async () => {
  const path = `/cached/${Date.now()}`;
  const miss = await gw.fetch(path, { headers: { origin: APP } });
  await miss.arrayBuffer();
  assert.match(miss.headers.get("cache-status"), /fwd=miss.*stored/);
  assert.equal(miss.headers.get("access-control-allow-origin"), APP);
  await new Promise((r) => setTimeout(r, 100));
  const hit = await gw.fetch(path, { headers: { origin: "https://shop.example.com" } });
  await hit.arrayBuffer();
  assert.match(hit.headers.get("cache-status"), /hit/);
  assert.equal(hit.headers.get("access-control-allow-origin"), "https://shop.example.com");
  assert.deepEqual(varyTokens(hit), ["origin"]);
  const refused = await gw.fetch(path, { headers: { origin: "https://evil.test" } });
  await refused.arrayBuffer();
  assert.match(refused.headers.get("cache-status"), /hit/);
  assert.equal(refused.headers.get("access-control-allow-origin"), null);
  assert.ok(varyTokens(refused).includes("origin"));
  const plainHit = await gw.fetch(path);
  await plainHit.arrayBuffer();
  assert.match(plainHit.headers.get("cache-status"), /hit/);
  assert.equal(plainHit.headers.get("access-control-allow-origin"), null);
});

test("IP rules refuse before authentication, by address, country and ASN from Cloudflare's facts", async () => {
  const seen = up.requests.length;
  const cases = [
    ["outside the allow list", { "cf-connecting-ip": "198.51.100.1" }, undefined],
    ["an allowed network's denied address", { "cf-connecting-ip": "203.0.113.66" }, undefined],
    ["Tor, from inside the allowed network", { "cf-connecting-ip": OFFICE_IP }, { country: "T1" }],
    ["a denied ASN", { "cf-connecting-ip": OFFICE_IP }, { asn: 64496, country: "DE" }],
    ["a spoofed X-Forwarded-For does not count", { "cf-connecting-ip": "198.51.100.1", "x-forwarded-for": OFFICE_IP }, undefined],
    ["an unusable address fails closed", { "cf-connecting-ip": "not-an-address" }, undefined],
  ];
  for (const [why, headers, cf] of cases) {
    // Even with an origin the policy allows, and without a token: the refusal says nothing else.
    const r = await gw.fetch("/api/orders", { headers: { ...headers, origin: APP }, cf });
    assert.equal(r.status, 403, why);
    assert.equal(r.headers.get("content-type"), "application/problem+json");
    const body = await r.json();
    assert.equal(body.code, "ip_forbidden", why);
    assert.equal(r.headers.get("www-authenticate"), null, why);
    assert.equal(r.headers.get("access-control-allow-origin"), null, why);
    // And with a valid token.
    const authed = await gw.fetch("/api/orders", { headers: { ...headers, authorization: `Bearer ${await token()}` }, cf });
    assert.equal(authed.status, 403, why);
    await authed.arrayBuffer();
  }
  // A denied client's preflight is refused too, before the CORS policy answers.
  const pre = await preflight("/api/orders", APP, "POST", null, { "cf-connecting-ip": "198.51.100.1" });
  assert.equal(pre.status, 403);
  assert.equal((await pre.json()).code, "ip_forbidden");
  assert.equal(up.requests.length, seen, "no refused request reached the upstream");

  // Allowed: the office, its IPv4-mapped IPv6 spelling, the allowed IPv6 network. Without a
  // token auth answers (so the IP rules let them through).
  for (const addr of [OFFICE_IP, "::ffff:203.0.113.9", "2001:db8:1::42"]) {
    const r = await gw.fetch("/api/orders", { headers: { "cf-connecting-ip": addr }, cf: { country: "DE", asn: 64500 } });
    assert.equal(r.status, 401, addr);
    await r.arrayBuffer();
  }
});

test("client copies of every header that claims the client's address stay behind the gateway", async () => {
  const spoofed = [
    "true-client-ip", "x-client-ip", "client-ip", "x-cluster-client-ip", "fastly-client-ip",
    "x-originating-ip", "x-remote-ip", "x-remote-addr", "forwarded-for", "x-forwarded", "x-real-ip",
    "cf-connecting-ipv6", "cf-pseudo-ipv4",
  ];
  const headers = { "cf-connecting-ip": OFFICE_IP, "x_client_ip": "192.0.2.1" };
  for (const name of spoofed) headers[name] = "192.0.2.1";
  const r = await gw.fetch("/public/x", { headers });
  assert.equal(r.status, 200);
  const seen = await r.json();
  for (const name of [...spoofed, "x_client_ip"]) assert.equal(seen.headers[name], undefined, name);
  assert.equal(seen.headers["x-forwarded-for"], OFFICE_IP, "the address the gateway vouches for");
});

test("the authenticated consumer goes upstream in x-consumer; a client's copy never does", async () => {
  const r = await gw.fetch("/api/orders", {
    headers: { "cf-connecting-ip": OFFICE_IP, authorization: `Bearer ${await token("alice")}`, "x-consumer": "jwt/users/admin" },
  });
  assert.equal(r.status, 200);
  const seen = await r.json();
  assert.equal(seen.headers["x-consumer"], "jwt/users/alice");
  assert.equal(seen.rawHeaders.filter((h) => h.toLowerCase() === "x-consumer").length, 1);
  const pub = await gw.fetch("/public/x", { headers: { "x-consumer": "jwt/users/admin", "X-CONSUMER": "key/root" } });
  assert.equal(pub.status, 200);
  assert.equal((await pub.json()).headers["x-consumer"], undefined, "removed on public routes");
});

test("the routes.json demo answers the README's preflight and CORS examples", async () => {
  // Empty KV: the gateway serves the routes.json built into it (what `make dev` seeds).
  const demo = await startGateway({});
  cleanup.push(() => demo.close());
  const ask = (origin) =>
    demo.fetch("/v1/partner/orders", {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "GET", "access-control-request-headers": "x-api-key" },
    });
  const ok = await ask("http://localhost:3000");
  assert.equal(ok.status, 204);
  assert.equal(ok.headers.get("access-control-allow-origin"), "http://localhost:3000");
  assert.equal(ok.headers.get("access-control-allow-headers"), "x-api-key");
  const refused = await ask("https://evil.example");
  assert.equal(refused.status, 403);
  assert.equal((await refused.json()).code, "cors_forbidden");
  const unauthorized = await demo.fetch("/v1/partner/orders", { headers: { origin: "http://localhost:3000" } });
  assert.equal(unauthorized.status, 401);
  await unauthorized.arrayBuffer();
  assert.equal(unauthorized.headers.get("access-control-allow-origin"), "http://localhost:3000");
  assert.equal(unauthorized.headers.get("access-control-expose-headers"), "x-request-id");
});
