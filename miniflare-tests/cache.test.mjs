// Response caching through the built worker with the real Cache API and an upstream that counts
// its hits: what is stored and what never is, keys, conditional requests, revalidation,
// stale-if-error, invalidation, purge, generations, and poisoning attempts.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startUpstream, config, hs256Token, sleep, eventually, countingUpstream } from "./harness.mjs";
import http from "node:http";
import zlib from "node:zlib";
import * as jose from "jose";

const SECRET = "cache-test-secret-0123456789abcdef0123";
const ADMIN = { authorization: "Bearer test-admin-token-of-thirty-two-bytes" };
const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** A `countingUpstream` (see harness.mjs), closed after the file's tests. */
async function origin(behaviour) {
  const up = await countingUpstream(behaviour);
  cleanup.push(() => up.close());
  return up;
}

async function gateway(up, routes, extra = {}) {
  const gw = await startGateway({
    bindings: { ADMIN_TOKEN: "test-admin-token-of-thirty-two-bytes", JWT_SECRET: SECRET },
    routes: config({
      settings: extra.settings ?? { admin: { path: "/__gateway", token_secret: "ADMIN_TOKEN" } },
      upstreams: { u: { targets: [{ url: up.url }], timeout_ms: 2000 } },
      auth: { users: { type: "jwt", issuer: "https://id.test/", audiences: ["api"], secret: "JWT_SECRET", algorithms: ["HS256"] } },
      routes,
    }),
  });
  cleanup.push(() => gw.close());
  return gw;
}

const cached = (id, cache, extra = {}) => ({ id, path: `/${id}/{*rest}`, upstream: "u", auth: "none", cache, ...extra });

/** GET and read; then give the cache write (waitUntil) a moment. */
async function get(gw, path, init = {}) {
  const r = await gw.fetch(path, init);
  const body = await r.text();
  await sleep(60);
  return { status: r.status, headers: r.headers, body };
}

const token = (sub) => hs256Token(SECRET, sub);

test("a miss is stored and the next request is a hit: the upstream is called once", async () => {
  const up = await origin((req, n) => ({ headers: { "content-type": "application/json", "cache-control": "max-age=60", etag: '"v1"' }, body: JSON.stringify({ n }) }));
  const gw = await gateway(up, [cached("c", { ttl_s: 60 })]);
  const first = await get(gw, "/c/item");
  assert.equal(first.status, 200);
  // The upstream's Date has whole seconds, so the answer may already be up to a second old
  // (its apparent age, RFC 9111 §4.2.3) when it arrives.
  assert.match(first.headers.get("cache-status"), /^edge-gateway; fwd=miss; ttl=(59|60); stored$/);
  const second = await get(gw, "/c/item");
  assert.equal(second.body, first.body);
  assert.match(second.headers.get("cache-status"), /^edge-gateway; hit; ttl=\d+$/);
  assert.match(second.headers.get("age"), /^\d+$/);
  assert.equal(second.headers.get("cache-control"), "max-age=60", "the upstream's Cache-Control is what clients see");
  for (const [name] of second.headers) assert.ok(!name.startsWith("x-edge-gateway"), `${name} leaked`);
  assert.match(second.headers.get("x-request-id"), /^[0-9a-f]{32}$/);
  assert.notEqual(second.headers.get("x-request-id"), first.headers.get("x-request-id"), "request ids are per request, not cached");
  assert.equal(up.count("/c/item"), 1);
  // HEAD is answered from the GET entry, without a body and without the upstream.
  const head = await gw.fetch("/c/item", { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
  assert.match(head.headers.get("cache-status"), /hit/);
  assert.equal(up.count("/c/item"), 1);
  // Query parameter order does not make a new entry.
  await get(gw, "/c/q?b=2&a=1");
  await get(gw, "/c/q?a=1&b=2");
  assert.equal(up.count("/c/q"), 1);
});

test("what is never stored: no-store, private, Set-Cookie, 5xx without freshness, 206, Vary: *, too large", async () => {
  const answers = {
    "/c/no-store": { headers: { "cache-control": "no-store" }, body: "x" },
    "/c/private": { headers: { "cache-control": "private, max-age=60" }, body: "x" },
    "/c/cookie": { headers: { "cache-control": "max-age=60", "set-cookie": "session=1" }, body: "x" },
    // A 5xx without explicit freshness (with max-age it is stored: issue 11).
    "/c/error": { status: 500, headers: { etag: '"e"' }, body: "x" },
    "/c/partial": { status: 206, headers: { "cache-control": "max-age=60", "content-range": "bytes 0-0/2" }, body: "x" },
    "/c/vary-star": { headers: { "cache-control": "max-age=60", vary: "*" }, body: "x" },
    "/c/vary-unkeyed": { headers: { "cache-control": "max-age=60", vary: "x-secret-header" }, body: "x" },
    "/c/big": { headers: { "cache-control": "max-age=60", "content-length": "5000" }, body: "a".repeat(5000) },
  };
  const up = await origin((req) => answers[new URL(req.url, "http://x").pathname]);
  const gw = await gateway(up, [cached("c", { ttl_s: 60, max_body_bytes: 1000 })]);
  const details = {};
  for (const path of Object.keys(answers)) {
    const a = await get(gw, path);
    const b = await get(gw, path);
    assert.equal(up.count(path), 2, `${path} was served from the cache`);
    assert.equal(b.body, answers[path].body, path);
    details[path] = a.headers.get("cache-status");
  }
  assert.match(details["/c/no-store"], /fwd=miss; detail="no-store"/);
  assert.match(details["/c/private"], /detail="private"/);
  assert.match(details["/c/cookie"], /detail="set-cookie"/);
  assert.match(details["/c/big"], /detail="too-large"/);
  // The Set-Cookie of the upstream still reaches the client: it is never stripped.
  const c = await gw.fetch("/c/cookie");
  assert.equal(c.headers.get("set-cookie"), "session=1");
});

test("a body over max_body_bytes without Content-Length streams through and is not stored", async () => {
  const up = await startUpstream((req, res) => {
    res.writeHead(200, { "cache-control": "max-age=60", "content-type": "application/octet-stream" });
    res.write("a".repeat(3000));
    res.end("b".repeat(3000));
  });
  cleanup.push(() => up.close());
  const gw = await gateway(up, [cached("c", { ttl_s: 60, max_body_bytes: 1000 })]);
  const first = await get(gw, "/c/stream");
  assert.equal(first.body.length, 6000);
  await sleep(200);
  const second = await get(gw, "/c/stream");
  assert.equal(second.body.length, 6000);
  assert.doesNotMatch(second.headers.get("cache-status"), /hit/);
  assert.equal(up.requests.length, 2);
});

test("concurrent large misses are stored only within the isolate's budget for copies in memory", async () => {
  // Three 12 MiB answers, each held half sent until the gateway has answered all three (and so
  // begun storing each): their copies are being assembled at once, and the third would take the
  // isolate past 32 MiB of them.
  const size = 12 * 1024 * 1024;
  const half = Buffer.alloc(size / 2, "a");
  let release;
  const held = new Promise((resolve) => (release = resolve));
  const up = await startUpstream(async (req, res) => {
    res.writeHead(200, { "cache-control": "max-age=60", "content-type": "application/octet-stream", "content-length": String(size) });
    res.write(half);
    await held;
    res.end(half);
  });
  cleanup.push(() => up.close());
  const gw = await gateway(up, [cached("c", { ttl_s: 60, max_body_bytes: 16 * 1024 * 1024 })]);
  const paths = ["/c/big-1", "/c/big-2", "/c/big-3"];
  const answers = await Promise.all(paths.map((p) => gw.fetch(p)));
  release();
  const lengths = await Promise.all(answers.map(async (r) => (await r.arrayBuffer()).byteLength));
  assert.deepEqual(lengths, [size, size, size], "every client gets its whole answer");
  await sleep(500);
  const statuses = [];
  for (const p of paths) {
    const r = await gw.fetch(p);
    await r.arrayBuffer();
    statuses.push(/^edge-gateway; hit/.test(r.headers.get("cache-status")) ? "hit" : "miss");
  }
  assert.deepEqual(statuses.filter((s) => s === "hit").length, 2, `two stored, one abandoned: ${statuses}`);
});

test("responses to authenticated requests are not shared between users unless marked public", async () => {
  const up = await origin((req) => ({
    headers: { "cache-control": req.url.includes("public") ? "public, max-age=60" : "max-age=60" },
    body: `for ${req.headers["x-user"] || "?"}:${req.headers.authorization?.slice(-8)}`,
  }));
  const gw = await gateway(up, [
    cached("shared", { ttl_s: 60 }, { auth: ["users"] }),
    cached("mine", { ttl_s: 60, per_consumer: true }, { auth: ["users"] }),
  ]);
  const alice = { headers: { authorization: `Bearer ${await token("alice")}` } };
  const bob = { headers: { authorization: `Bearer ${await token("bob")}` } };
  const a = await get(gw, "/shared/profile", alice);
  const b = await get(gw, "/shared/profile", bob);
  assert.notEqual(b.body, a.body, "bob must not see alice's response");
  assert.match(a.headers.get("cache-status"), /detail="authorization"/);
  assert.equal(up.count("/shared/profile"), 2);
  // Marked public by the upstream: shared.
  await get(gw, "/shared/public", alice);
  await get(gw, "/shared/public", bob);
  assert.equal(up.count("/shared/public"), 1);
  // Per-consumer routes cache each user's own copy.
  const a1 = await get(gw, "/mine/profile", alice);
  const a2 = await get(gw, "/mine/profile", alice);
  const b1 = await get(gw, "/mine/profile", bob);
  assert.equal(a2.body, a1.body);
  assert.notEqual(b1.body, a1.body);
  assert.equal(up.count("/mine/profile"), 2);
});

test("vary headers are part of the key", async () => {
  const up = await origin((req) => ({
    headers: { "cache-control": "max-age=60", vary: "Accept-Language", "content-language": req.headers["accept-language"] || "none" },
    body: `hello in ${req.headers["accept-language"] || "none"}`,
  }));
  const gw = await gateway(up, [cached("c", { ttl_s: 60, vary: ["accept-language"] })]);
  const en = await get(gw, "/c/greeting", { headers: { "accept-language": "en" } });
  const fr = await get(gw, "/c/greeting", { headers: { "accept-language": "fr" } });
  const en2 = await get(gw, "/c/greeting", { headers: { "accept-language": "en" } });
  const other = await get(gw, "/c/greeting", { headers: { "accept-language": "de" } });
  assert.equal(en.body, "hello in en");
  assert.equal(fr.body, "hello in fr");
  assert.equal(en2.body, "hello in en");
  assert.match(en2.headers.get("cache-status"), /hit/);
  assert.equal(other.body, "hello in de");
  assert.equal(up.count("/c/greeting"), 3);
});

test("conditional requests are answered 304 from stored validators", async () => {
  const up = await origin(() => ({
    headers: { "cache-control": "max-age=60", etag: '"abc"', "last-modified": "Wed, 21 Oct 2026 07:28:00 GMT", "content-type": "text/plain" },
    body: "the representation",
  }));
  const gw = await gateway(up, [cached("c", { ttl_s: 60 })]);
  const miss = await get(gw, "/c/doc", { headers: { "if-none-match": '"abc"' } });
  assert.equal(miss.status, 304, "a miss whose fresh response matches answers 304 too");
  assert.equal(up.requests.at(-1).headers["if-none-match"], undefined, "the upstream is asked for the whole response");
  let r = await get(gw, "/c/doc", { headers: { "if-none-match": 'W/"abc", "other"' } });
  assert.equal(r.status, 304);
  assert.equal(r.body, "");
  assert.equal(r.headers.get("etag"), '"abc"');
  r = await get(gw, "/c/doc", { headers: { "if-none-match": '"zzz"' } });
  assert.equal(r.status, 200);
  assert.equal(r.body, "the representation");
  r = await get(gw, "/c/doc", { headers: { "if-modified-since": "Thu, 22 Oct 2026 07:28:00 GMT" } });
  assert.equal(r.status, 304);
  r = await get(gw, "/c/doc", { headers: { "if-modified-since": "Tue, 20 Oct 2026 07:28:00 GMT" } });
  assert.equal(r.status, 200);
  assert.equal(up.count("/c/doc"), 1);
});

test("a stale entry is revalidated with its ETag; a 304 refreshes it", async () => {
  let version = "v1";
  const up = await origin((req) => {
    if (req.headers["if-none-match"] === `"${version}"`) return { status: 304, headers: { etag: `"${version}"`, "cache-control": "max-age=2" } };
    return { headers: { "cache-control": "max-age=2", etag: `"${version}"` }, body: `body ${version}` };
  });
  // The route keeps entries for a minute; the upstream says they are fresh for two seconds
  // (ages count whole seconds, so one second could be stale a moment after it arrived).
  const gw = await gateway(up, [cached("c", { ttl_s: 60 })]);
  await get(gw, "/c/r");
  await sleep(2100);
  let r = await get(gw, "/c/r");
  assert.equal(r.status, 200);
  assert.equal(r.body, "body v1");
  assert.match(r.headers.get("cache-status"), /fwd=stale; fwd-status=304/);
  assert.equal(up.requests.at(-1).headers["if-none-match"], '"v1"');
  r = await get(gw, "/c/r");
  assert.match(r.headers.get("cache-status"), /hit/, "the 304 made the entry fresh again");
  // A changed representation replaces the entry.
  version = "v2";
  await sleep(2100);
  r = await get(gw, "/c/r");
  assert.equal(r.body, "body v2");
  r = await get(gw, "/c/r");
  assert.equal(r.body, "body v2");
  assert.match(r.headers.get("cache-status"), /hit/);
});

test("an entry a 304 refreshed keeps its length: later ranges are still answered 206", async () => {
  const body = "0123456789".repeat(10);
  const up = await origin((req) => {
    // Ages count whole seconds from the origin's Date (itself whole seconds), so max-age=1 can
    // be stale a moment after it arrived; max-age=2 is fresh for at least one second.
    if (req.headers["if-none-match"] === '"r1"') return { status: 304, headers: { etag: '"r1"', "cache-control": "max-age=2" } };
    return { headers: { "cache-control": "max-age=2", etag: '"r1"', "content-type": "text/plain" }, body };
  });
  const gw = await gateway(up, [cached("c", { ttl_s: 60 })]);
  assert.equal((await get(gw, "/c/ranged", { headers: { range: "bytes=0-3" } })).status, 200, "a miss is whole");
  let r = await get(gw, "/c/ranged", { headers: { range: "bytes=0-3" } });
  assert.equal(r.status, 206, "the stored entry serves ranges");
  assert.match(r.headers.get("cache-status"), /^edge-gateway; hit/);
  await sleep(2100);
  r = await get(gw, "/c/ranged", { headers: { range: "bytes=10-13" } });
  assert.match(r.headers.get("cache-status"), /fwd=stale; fwd-status=304; ttl=\d+; stored/);
  assert.equal(r.status, 206, "the refreshed copy serves the range");
  assert.equal(r.body, "0123");
  for (const range of ["bytes=4-7", "bytes=-2"]) {
    r = await get(gw, "/c/ranged", { headers: { range } });
    assert.match(r.headers.get("cache-status"), /^edge-gateway; hit/, range);
    assert.equal(r.status, 206, `${range} from the entry written back after the 304`);
    assert.equal(r.headers.get("content-range"), range === "bytes=4-7" ? "bytes 4-7/100" : "bytes 98-99/100");
  }
  assert.equal(up.count("/c/ranged"), 2);
});

test("stale-if-error: a failing upstream is answered with the stale entry inside the window only", async () => {
  let failing = false;
  const up = await origin(() => (failing ? { status: 503, body: "down" } : { headers: { "cache-control": "max-age=1" }, body: "good" }));
  const gw = await gateway(up, [cached("c", { ttl_s: 1, stale_if_error_s: 2 })]);
  assert.equal((await get(gw, "/c/x")).body, "good");
  failing = true;
  await sleep(1100);
  let r = await get(gw, "/c/x");
  assert.equal(r.status, 200);
  assert.equal(r.body, "good");
  assert.match(r.headers.get("cache-status"), /fwd=stale; .*detail="upstream-error"/);
  await sleep(2200);
  r = await get(gw, "/c/x");
  assert.equal(r.status, 503, "past the window the failure is passed on");

  // A stopped upstream (connection refused) counts as a failure too.
  failing = false;
  const other = await origin(() => ({ headers: { "cache-control": "max-age=1" }, body: "kept" }));
  const gw2 = await gateway(other, [cached("c", { ttl_s: 1, stale_if_error_s: 30 })]);
  assert.equal((await get(gw2, "/c/y")).body, "kept");
  await other.close();
  await sleep(1100);
  r = await get(gw2, "/c/y");
  assert.equal(r.status, 200);
  assert.equal(r.body, "kept");
});

test("a successful unsafe request invalidates the URL's entries (vary variants included)", async () => {
  const up = await origin((req, n) => (req.method === "GET" ? { headers: { "cache-control": "max-age=60" }, body: `v${n}` } : { status: 204 }));
  const gw = await gateway(up, [cached("c", { ttl_s: 60 }), cached("v", { ttl_s: 60, vary: ["accept-language"] })]);
  const before = await get(gw, "/c/item");
  assert.equal((await get(gw, "/c/item")).body, before.body);
  const post = await gw.fetch("/c/item", { method: "POST", body: "change" });
  assert.equal(post.status, 204);
  assert.match(post.headers.get("cache-status"), /bypass; detail="invalidated"/);
  await sleep(100);
  const after = await get(gw, "/c/item");
  assert.notEqual(after.body, before.body, "the entry was invalidated");

  await get(gw, "/v/item", { headers: { "accept-language": "en" } });
  await get(gw, "/v/item", { headers: { "accept-language": "fr" } });
  const fr = await get(gw, "/v/item", { headers: { "accept-language": "fr" } });
  assert.match(fr.headers.get("cache-status"), /hit/);
  await gw.fetch("/v/item", { method: "DELETE", headers: { "accept-language": "en" } });
  await sleep(100);
  const fr2 = await get(gw, "/v/item", { headers: { "accept-language": "fr" } });
  assert.doesNotMatch(fr2.headers.get("cache-status"), /hit/, "other variants of the URL are invalidated too");
});

test("an invalidation while a GET's copy is still being stored keeps the old answer out", async () => {
  // The first GET's body is held half sent until the DELETE has been answered: its copy for the
  // cache is still being read when the URL is invalidated, and must not be written after.
  let release;
  const held = new Promise((resolve) => (release = resolve));
  let gets = 0;
  const up = await startUpstream(async (req, res) => {
    if (req.method !== "GET") {
      res.writeHead(204);
      return res.end();
    }
    gets++;
    res.writeHead(200, { "cache-control": "max-age=60", "content-type": "text/plain", "content-length": "10" });
    if (gets > 1) return res.end("new answer");
    res.write("old ");
    await held;
    res.end("answer");
  });
  cleanup.push(() => up.close());
  const gw = await gateway(up, [cached("c", { ttl_s: 60 })]);
  const first = await gw.fetch("/c/race");
  assert.match(first.headers.get("cache-status"), /fwd=miss/);
  const del = await gw.fetch("/c/race", { method: "DELETE" });
  assert.equal(del.status, 204);
  assert.match(del.headers.get("cache-status"), /detail="invalidated"/);
  release();
  assert.equal(await first.text(), "old answer", "the client's copy is whole");
  await sleep(200);
  const after = await get(gw, "/c/race");
  assert.equal(after.body, "new answer", "the answer from before the invalidation was not stored");
  assert.match(after.headers.get("cache-status"), /fwd=miss/);
  assert.equal(gets, 2);
});

test("a write routed to another route than the cached GET invalidates the GET route's entries", async () => {
  const up = await origin((req, n) => (req.method === "GET" ? { headers: { "cache-control": "max-age=60" }, body: `v${n}` } : { status: 200, body: "saved" }));
  const gw = await gateway(up, [
    cached("items", { ttl_s: 60 }, { methods: ["GET", "HEAD"] }),
    { id: "items-write", path: "/items/{*rest}", upstream: "u", auth: "none", methods: ["PUT", "DELETE"] },
  ]);
  const before = await get(gw, "/items/1");
  assert.match((await get(gw, "/items/1")).headers.get("cache-status"), /hit/);
  const put = await gw.fetch("/items/1", { method: "PUT", body: "change" });
  assert.equal(put.status, 200);
  assert.equal(await put.text(), "saved");
  assert.equal(put.headers.get("cache-status"), null, "the write route has no cache of its own");
  const after = await get(gw, "/items/1");
  assert.notEqual(after.body, before.body, "the GET route's entry was invalidated (hot tier and Cache API)");
  assert.doesNotMatch(after.headers.get("cache-status"), /hit/);
});

test("a write's answer naming a URL of its origin in Location or Content-Location invalidates it", async () => {
  // GET /orders/<id> is cached (a 404 too: heuristically cacheable with max-age); POST /orders
  // answers 201 with the header the query asks for.
  const up = await origin((req, n) => {
    const url = new URL(req.url, "http://x");
    if (req.method === "GET") {
      const exists = up.count("/orders") > 0 && url.pathname === "/orders/42";
      return { status: exists ? 200 : 404, headers: { "cache-control": "max-age=60" }, body: exists ? "order 42" : "no such order" };
    }
    return { status: Number(url.searchParams.get("status")), headers: { [url.searchParams.get("h")]: url.searchParams.get("v") }, body: "created" };
  });
  const gw = await gateway(up, [
    { id: "order", path: "/orders/{id}", upstream: "u", auth: "none", methods: ["GET", "HEAD"], cache: { ttl_s: 60 } },
    { id: "create", path: "/orders", upstream: "u", auth: "none", methods: ["POST"] },
  ]);
  const post = async (h, v, status = 201) => {
    const r = await gw.fetch(`/orders?h=${h}&v=${encodeURIComponent(v)}&status=${status}`, { method: "POST", body: "{}" });
    await r.text();
    return r.status;
  };
  const base = "http://gateway.test";
  assert.equal((await get(gw, `${base}/orders/42`)).status, 404);
  assert.match((await get(gw, `${base}/orders/42`)).headers.get("cache-status"), /hit/);
  // Another origin, or a failed answer: the 404 stays.
  for (const [v, status] of [["http://elsewhere.test/orders/42", 201], ["//elsewhere.test/orders/42", 201], ["/orders/42", 400]]) {
    assert.equal(await post("location", v, status), status);
    const again = await get(gw, `${base}/orders/42`);
    assert.equal(again.status, 404, v);
    assert.match(again.headers.get("cache-status"), /hit/, `${v} (${status}) invalidated nothing`);
  }
  assert.equal(await post("location", "/orders/42"), 201);
  const now = await get(gw, `${base}/orders/42`);
  assert.equal(now.status, 200, "the stale 404 is gone: hot tier and Cache API");
  assert.equal(now.body, "order 42");
  assert.match((await get(gw, `${base}/orders/42`)).headers.get("cache-status"), /hit/);
  // Content-Location, relative to the request's URL, empties it again.
  assert.equal(await post("content-location", "orders/42", 200), 200);
  assert.doesNotMatch((await get(gw, `${base}/orders/42`)).headers.get("cache-status"), /hit/);
});

test("the admin API purges one URL and bumps the generation", async () => {
  const up = await origin((req, n) => ({ headers: { "cache-control": "max-age=600" }, body: `n=${n}` }));
  const gw = await gateway(up, [cached("c", { ttl_s: 600 })]);
  await get(gw, "http://api.example.test/c/a?x=1");
  assert.match((await get(gw, "http://api.example.test/c/a?x=1")).headers.get("cache-status"), /hit/);
  let r = await gw.fetch("/__gateway/cache/purge", { method: "POST", body: JSON.stringify({ url: "http://api.example.test/c/a?x=1" }) });
  assert.equal(r.status, 401, "purging needs the admin token");
  r = await gw.fetch("/__gateway/cache/purge", { method: "POST", headers: ADMIN, body: JSON.stringify({ url: "http://api.example.test/c/a?x=1" }) });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).route, "c");
  await sleep(50);
  assert.doesNotMatch((await get(gw, "http://api.example.test/c/a?x=1")).headers.get("cache-status"), /hit/);

  await get(gw, "/c/b");
  assert.match((await get(gw, "/c/b")).headers.get("cache-status"), /hit/);
  r = await gw.fetch("/__gateway/cache/generation", { method: "POST", headers: ADMIN });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).cache_generation, 2);
  const stored = JSON.parse(await gw.kv.get("routes"));
  assert.equal(stored.settings.cache_generation, 2);
  assert.deepEqual(Object.keys(stored), ["version", "settings", "upstreams", "routes", "auth"], "the document keeps its member order");
  // A push through the lock like any other: in the history, and the last good document.
  assert.equal(await gw.kv.get("routes:last-good"), await gw.kv.get("routes"));
  const history = await (await gw.fetch("/__gateway/config/history", { headers: ADMIN })).json();
  assert.equal(history[0].note, "cache_generation 2");
  const missed = await eventually(async () => !/hit/.test((await get(gw, "/c/b")).headers.get("cache-status")), { timeoutMs: 5000, intervalMs: 300 });
  assert.ok(missed, "after the reload every entry is gone");
});

test("unkeyed headers cannot poison the cache", async () => {
  const up = await origin((req) => ({
    headers: { "cache-control": "max-age=60", "content-type": "application/json" },
    body: JSON.stringify({
      host: req.headers["x-forwarded-host"],
      original: req.headers["x-original-url"] ?? null,
      override: req.headers["x-http-method-override"] ?? null,
      scheme: req.headers["x-forwarded-scheme"] ?? null,
      path: req.url,
    }),
  }));
  const gw = await gateway(up, [cached("c", { ttl_s: 60 })]);
  const poisoned = await get(gw, "http://api.example.test/c/home", {
    headers: { "x-forwarded-host": "evil.example", "x-original-url": "/admin", "x-http-method-override": "DELETE", "x-forwarded-scheme": "nothttps", "x-host": "evil.example" },
  });
  const seen = JSON.parse(poisoned.body);
  assert.deepEqual(seen, { host: "api.example.test", original: null, override: null, scheme: null, path: "/c/home" });
  const clean = await get(gw, "http://api.example.test/c/home");
  assert.deepEqual(JSON.parse(clean.body), seen);
  // A different host is a different key: nothing of one host is served for another.
  const other = await get(gw, "http://other.example.test/c/home");
  assert.equal(JSON.parse(other.body).host, "other.example.test");
});

test("credentials on a public cached route keep its responses private", async () => {
  const up = await origin((req) => ({ body: `for ${req.headers.authorization ?? ""}${req.headers.cookie ?? ""}` }));
  const gw = await gateway(up, [cached("c", { ttl_s: 60 })]);
  const withAuth = await get(gw, "/c/me", { headers: { authorization: "Bearer alice-session" } });
  assert.match(withAuth.headers.get("cache-status"), /detail="authorization"/);
  const withCookie = await get(gw, "/c/me", { headers: { cookie: "session=alice" } });
  assert.match(withCookie.headers.get("cache-status"), /detail="authorization"/);
  const anonymous = await get(gw, "/c/me");
  assert.equal(anonymous.body, "for ", "an anonymous request never gets a credentialed response");
});

test("per-consumer entries are keyed by scheme and subject; no subject, no caching", async () => {
  const up = await origin((req) => ({ headers: { "cache-control": "max-age=60" }, body: `data of ${req.headers["x-sub"] ?? "?"} ${Math.random()}` }));
  const mint = (sub, secret) => hs256Token(secret, sub);
  const gw = await startGateway({
    bindings: { JWT_SECRET: SECRET, OTHER_SECRET: SECRET + "-other" },
    routes: config({
      upstreams: { u: { targets: [{ url: up.url }] } },
      auth: {
        users: { type: "jwt", issuer: "https://id.test/", audiences: ["api"], secret: "JWT_SECRET", algorithms: ["HS256"], forward_claims: { sub: "x-sub" } },
        other: { type: "jwt", issuer: "https://id.test/", audiences: ["api"], secret: "OTHER_SECRET", algorithms: ["HS256"], forward_claims: { sub: "x-sub" } },
      },
      routes: [cached("mine", { ttl_s: 60, per_consumer: true }, { auth: ["users", "other"] })],
    }),
  });
  cleanup.push(() => gw.close());
  const victim = { headers: { authorization: `Bearer ${await mint("victim", SECRET)}` } };
  const impostor = { headers: { authorization: `Bearer ${await mint("victim", SECRET + "-other")}` } };
  const a = await get(gw, "/mine/profile", victim);
  const b = await get(gw, "/mine/profile", impostor);
  assert.notEqual(b.body, a.body, "the same sub from another scheme is another consumer");
  const noSub1 = await get(gw, "/mine/profile", { headers: { authorization: `Bearer ${await mint(null, SECRET)}` } });
  const noSub2 = await get(gw, "/mine/profile", { headers: { authorization: `Bearer ${await mint(null, SECRET)}` } });
  assert.match(noSub1.headers.get("cache-status"), /bypass; detail="no-consumer"/);
  assert.notEqual(noSub2.body, noSub1.body);
});

test("per-consumer entries are keyed by the claims forwarded upstream, not the subject alone", async () => {
  const up = await origin((req) => ({ headers: { "cache-control": "max-age=60" }, body: `tenant ${req.headers["x-tenant"]}` }));
  const gw = await startGateway({
    bindings: { JWT_SECRET: SECRET },
    routes: config({
      upstreams: { u: { targets: [{ url: up.url }], timeout_ms: 2000 } },
      auth: {
        users: { type: "jwt", issuer: "https://id.test/", audiences: ["api"], secret: "JWT_SECRET", algorithms: ["HS256"], forward_claims: { tenant: "x-tenant" } },
      },
      routes: [{ id: "me", path: "/me", upstream: "u", auth: ["users"], cache: { ttl_s: 60, per_consumer: true } }],
    }),
  });
  cleanup.push(() => gw.close());
  const tokenOf = (tenant) =>
    new jose.SignJWT({ sub: "alice", tenant })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("https://id.test/")
      .setAudience("api")
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(SECRET));
  const as = async (tenant) => get(gw, "/me", { headers: { authorization: `Bearer ${await tokenOf(tenant)}` } });
  assert.equal((await as("a")).body, "tenant a");
  const b = await as("b");
  assert.equal(b.body, "tenant b", "one subject's token with another tenant never gets tenant a's answer");
  assert.match(b.headers.get("cache-status"), /fwd=miss/);
  for (const tenant of ["a", "b"]) {
    const again = await as(tenant);
    assert.equal(again.body, `tenant ${tenant}`);
    assert.match(again.headers.get("cache-status"), /^edge-gateway; hit/);
  }
  assert.equal(up.count("/me"), 2);
});

test("the scheme and the authority the upstream sees are part of the key", async () => {
  const up = await origin((req) => ({
    headers: { "cache-control": "max-age=60" },
    body: `${req.headers["x-forwarded-proto"]}://${req.headers["x-forwarded-host"]}`,
  }));
  const gw = await gateway(up, [cached("c", { ttl_s: 60 })]);
  assert.equal((await get(gw, "http://api.example.test/c/link")).body, "http://api.example.test");
  assert.equal((await get(gw, "https://api.example.test/c/link")).body, "https://api.example.test");
  assert.equal((await get(gw, "https://API.example.test:4443/c/link")).body, "https://api.example.test:4443");
  assert.equal((await get(gw, "https://api.example.test/c/link")).body, "https://api.example.test");
});

test("a Connection token cannot strip a keyed header, and OPTIONS does not invalidate", async () => {
  const up = await origin((req, n) => ({
    headers: { "cache-control": "max-age=60", vary: "accept-language" },
    body: `lang=${req.headers["accept-language"] ?? "none"} n=${n}`,
  }));
  const gw = await gateway(up, [cached("c", { ttl_s: 60, vary: ["accept-language"] })]);
  const fr = await gw.raw("/c/page", { headers: { host: "gateway.test", "accept-language": "fr", connection: "accept-language" } });
  assert.match(fr.body, /^lang=fr/);
  await sleep(60);
  const frAgain = await get(gw, "/c/page", { headers: { "accept-language": "fr" } });
  assert.match(frAgain.body, /^lang=fr/);
  assert.match(frAgain.headers.get("cache-status"), /hit/);
  const options = await gw.fetch("/c/page", { method: "OPTIONS" });
  assert.match(options.headers.get("cache-status"), /bypass; detail="method"/);
  await sleep(60);
  assert.match((await get(gw, "/c/page", { headers: { "accept-language": "fr" } })).headers.get("cache-status"), /hit/);
});

test("the generation bump edits the newest document in KV, not this isolate's copy", async () => {
  const up = await origin(() => ({ headers: { "cache-control": "max-age=60" }, body: "x" }));
  const gw = await gateway(up, [cached("c", { ttl_s: 60 })], { settings: { reload_s: 3600, admin: { path: "/__gateway", token_secret: "ADMIN_TOKEN" } } });
  assert.equal((await get(gw, "/c/a")).status, 200);
  const newer = JSON.parse(await gw.kv.get("routes"));
  newer.routes.push({ id: "added", path: "/added", upstream: "u", auth: "none" });
  await gw.setRoutes(newer);
  const r = await gw.fetch("/__gateway/cache/generation", { method: "POST", headers: ADMIN });
  assert.equal(r.status, 200);
  const stored = JSON.parse(await gw.kv.get("routes"));
  assert.equal(stored.settings.cache_generation, 2);
  assert.ok(stored.routes.some((route) => route.id === "added"), "the newer document was kept");
});

/**
 * How CGI, WSGI and Rack read request headers: `_` and `-` are one, and the later copy wins
 * (`HTTP_ACCEPT_LANGUAGE` from `Accept-Language` or `Accept_Language`).
 */
function cgiHeaders(req) {
  const out = {};
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) out[req.rawHeaders[i].toLowerCase().replaceAll("_", "-")] = req.rawHeaders[i + 1];
  return out;
}

test("an underscore spelling of a keyed header cannot answer for another key", async () => {
  const up = await origin((req) => {
    const h = cgiHeaders(req);
    return {
      headers: { "cache-control": "max-age=60", vary: "Accept-Language, X-Api-Version" },
      body: `lang=${h["accept-language"] ?? "none"} version=${h["x-api-version"] ?? "none"}`,
    };
  });
  const gw = await gateway(up, [
    cached("v2", { ttl_s: 60, vary: ["accept-language", "x-api-version"] }, { path: "/c/{*rest}", match: { headers: { "x-api-version": "2" } } }),
    cached("c", { ttl_s: 60, vary: ["accept-language", "x-api-version"] }),
  ]);
  // The gateway keys (and routes) by `Accept-Language: en` and no version; a CGI upstream
  // would read the later copies, `fr` and version 2.
  const attack = await get(gw, "/c/page", { headers: { "accept-language": "en", accept_language: "fr", x_api_version: "2" } });
  assert.equal(attack.body, "lang=en version=none", "the upstream answered for the key the gateway used");
  const victim = await get(gw, "/c/page", { headers: { "accept-language": "en" } });
  assert.equal(victim.body, "lang=en version=none");
  for (const r of up.seen("/c/page")) {
    for (const name of Object.keys(r.headers)) assert.ok(!name.includes("_"), `${name} reached the upstream`);
  }
});

test("the admin API purges a header-routed version's entry when told the request's headers", async () => {
  const up = await origin((req, n) => ({ headers: { "cache-control": "max-age=600" }, body: `${req.headers["x-api-version"] ?? "v1"} n=${n}` }));
  const gw = await gateway(up, [
    cached("v2", { ttl_s: 600 }, { path: "/c/{*rest}", match: { headers: { "x-api-version": "2" } } }),
    cached("c", { ttl_s: 600 }),
  ]);
  const v2 = { headers: { "x-api-version": "2" } };
  await get(gw, "http://api.example.test/c/a", v2);
  assert.match((await get(gw, "http://api.example.test/c/a", v2)).headers.get("cache-status"), /hit/);
  const purge = (body) => gw.fetch("/__gateway/cache/purge", { method: "POST", headers: ADMIN, body: JSON.stringify(body) });
  let r = await purge({ url: "http://api.example.test/c/a", headers: { "X-Api-Version": "2" } });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).route, "v2");
  await sleep(50);
  assert.doesNotMatch((await get(gw, "http://api.example.test/c/a", v2)).headers.get("cache-status"), /hit/);
  r = await purge({ url: "http://api.example.test/c/a", headers: { "x-api-version": 2 } });
  assert.equal(r.status, 400, "header values are strings");
  assert.equal(r.headers.get("content-type"), "application/problem+json");
});

test("entries stored before a route's response rules changed are served by the rules in force", async () => {
  const up = await origin(() => ({
    headers: { "cache-control": "max-age=600", "x-debug-user": "alice", "access-control-allow-origin": "*", "x-frame-options": "ALLOWALL" },
    body: "page",
  }));
  const doc = (route, extra = {}) =>
    config({
      settings: { admin: { path: "/__gateway", token_secret: "ADMIN_TOKEN" } },
      upstreams: { u: { targets: [{ url: up.url }], timeout_ms: 2000 } },
      routes: [route, { id: "probe", path: "/probe", upstream: "u", auth: "none" }],
      ...extra,
    });
  // The admin token in both documents: setting it would move every key (they are sealed with it).
  const first = config({
    settings: { admin: { path: "/__gateway", token_secret: "ADMIN_TOKEN" } },
    upstreams: { u: { targets: [{ url: up.url }] } },
    routes: [cached("c", { ttl_s: 600 })],
  });
  const gw = await startGateway({ bindings: { ADMIN_TOKEN: "test-admin-token-of-thirty-two-bytes" }, routes: first });
  cleanup.push(() => gw.close());
  await get(gw, "/c/page");
  assert.equal((await get(gw, "/c/page")).headers.get("x-debug-user"), "alice");
  // The operator stops the leak and restricts CORS to one origin.
  await gw.setRoutes(
    doc(
      cached("c", { ttl_s: 600 }, { cors: "app", response_headers: { remove: ["x-debug-user"], set: { "x-frame-options": "DENY" } } }),
      { cors: { app: { origins: ["https://app.example"] } } },
    ),
  );
  assert.ok(await eventually(async () => (await gw.fetch("/probe")).status !== 404, { timeoutMs: 5000, intervalMs: 200 }), "the new document is in force");
  for (let i = 0; i < 2; i++) {
    // twice: from the Cache API, then from the hot tier
    const hit = await get(gw, "/c/page", { headers: { origin: "https://evil.example" } });
    assert.match(hit.headers.get("cache-status"), /hit/);
    assert.equal(hit.headers.get("x-debug-user"), null, "a removed header is not replayed");
    assert.equal(hit.headers.get("access-control-allow-origin"), null, "only the policy answers for CORS");
    assert.equal(hit.headers.get("x-frame-options"), "DENY");
  }
  assert.equal(up.count("/c/page"), 1);
});

/** GET through a plain HTTP client, which never decodes: the status, headers and body bytes. */
function rawBytes(base, path, acceptEncoding) {
  const u = new URL(path, base);
  const headers = { host: "gateway.test" };
  if (acceptEncoding) headers["accept-encoding"] = acceptEncoding;
  return new Promise((resolve, reject) => {
    http
      .get({ hostname: u.hostname, port: u.port, path: u.pathname, headers }, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      })
      .on("error", reject);
  });
}

test("a compressed answer is served from the cache in the coding the client gets on a miss", async () => {
  const up = await origin((req) =>
    (req.headers["accept-encoding"] ?? "").includes("gzip")
      ? { headers: { "cache-control": "max-age=60", "content-encoding": "gzip", vary: "Accept-Encoding" }, body: zlib.gzipSync("hello, compressed") }
      : { headers: { "cache-control": "max-age=60", vary: "Accept-Encoding" }, body: "hello, compressed" },
  );
  const gw = await gateway(up, [cached("c", { ttl_s: 60 })]);
  const read = (r) => (r.headers["content-encoding"] === "gzip" ? zlib.gunzipSync(r.body) : r.body).toString();
  const miss = await rawBytes(gw.url, "/c/z", "gzip");
  assert.equal(miss.headers["content-encoding"], "gzip");
  assert.equal(read(miss), "hello, compressed");
  await sleep(100);
  // From the Cache API, then from the hot tier, for a client that takes gzip and one that does not.
  for (let i = 0; i < 2; i++) {
    const gzip = await rawBytes(gw.url, "/c/z", "gzip");
    assert.match(gzip.headers["cache-status"], /hit/);
    assert.equal(read(gzip), "hello, compressed", "decoded once, the body is the representation");
    const plain = await rawBytes(gw.url, "/c/z", "identity");
    assert.match(plain.headers["cache-status"], /hit/);
    assert.equal(read(plain), "hello, compressed");
  }
  assert.equal(up.count("/c/z"), 1);
});
