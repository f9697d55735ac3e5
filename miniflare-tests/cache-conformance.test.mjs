// Cache conformance through the built worker, against a real origin on 127.0.0.1 that emits
// each case: Age, header updates on 304, CDN-Cache-Control, default_ttl_s, statuses,
// stale-while-revalidate, conditionals after revalidation, ranges, qualified private/no-cache,
// request directives and body integrity. Each test asserts what the client got and what the
// origin saw.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startUpstream, config, sleep, eventually, countingUpstream, rawUpstream } from "./harness.mjs";

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

async function gateway(up, cache, extraRoutes = []) {
  const gw = await startGateway({
    routes: config({
      upstreams: { u: { targets: [{ url: up.url }], timeout_ms: 2000 } },
      routes: [{ id: "c", path: "/c/{*rest}", upstream: "u", auth: "none", cache }, ...extraRoutes],
    }),
  });
  cleanup.push(() => gw.close());
  return gw;
}

/** GET and read the whole answer; then give the cache write (waitUntil) a moment. */
async function get(gw, path, headers = {}) {
  const r = await gw.fetch(path, { headers, redirect: "manual" });
  const body = await r.text();
  await sleep(60);
  return { status: r.status, headers: r.headers, body, cs: r.headers.get("cache-status") ?? "" };
}

test("Age: the first member counts; an invalid first member is ignored", async () => {
  const ages = { "/c/list": "100, 5", "/c/bad": "x, 100", "/c/two": "7" };
  const up = await origin((req) => {
    const path = new URL(req.url, "http://x").pathname;
    return { headers: { "cache-control": "max-age=300", age: ages[path] }, body: path };
  });
  const gw = await gateway(up, { ttl_s: 600 });
  for (const path of Object.keys(ages)) await get(gw, path);
  const age = async (p) => Number((await get(gw, p)).headers.get("age"));
  const list = await age("/c/list");
  assert.ok(list >= 100 && list < 110, `aged by the first of "100, 5": ${list}`);
  const bad = await age("/c/bad");
  assert.ok(bad < 10, `an invalid first member is ignored: ${bad}`);
  const two = await age("/c/two");
  assert.ok(two >= 7 && two < 17, `${two}`);
  // A list in the first response is what the client of a hit sees, aged by the gateway.
  assert.equal(up.count("/c/list"), 1);
});

test("a 304 replaces the stored headers (Cache-Control, ETag, end-to-end) but not the framing", async () => {
  let version = 1;
  const up = await origin((req) => {
    if (req.headers["if-none-match"] === `"v${version}"`) {
      return {
        status: 304,
        headers: { etag: `"v${version}"`, "cache-control": "max-age=60", "x-revision": "from-304", "content-length": "999" },
      };
    }
    return { headers: { "cache-control": "max-age=1", etag: `"v${version}"`, "x-revision": "original", "content-type": "text/plain", "content-length": "11" }, body: "stored body" };
  });
  const gw = await gateway(up, { ttl_s: 600 });
  const first = await get(gw, "/c/doc");
  assert.equal(first.headers.get("x-revision"), "original");
  await sleep(1100);
  const revalidated = await get(gw, "/c/doc");
  assert.equal(up.seen("/c/doc").at(-1).headers["if-none-match"], '"v1"', "the gateway revalidated with the stored ETag");
  assert.match(revalidated.cs, /fwd=stale; fwd-status=304; ttl=\d+; stored/);
  assert.equal(revalidated.body, "stored body");
  assert.equal(revalidated.headers.get("x-revision"), "from-304", "an end-to-end header of the 304 replaced the stored one");
  assert.equal(revalidated.headers.get("cache-control"), "max-age=60", "the 304's Cache-Control is what clients see now");
  assert.notEqual(revalidated.headers.get("content-length"), "999", "framing is the stored body's, not the 304's");
  assert.equal(revalidated.headers.get("content-type"), "text/plain");
  // The 304's max-age=60 made the entry fresh for a minute: the next request is a hit with the
  // updated headers, and the origin is not asked.
  await sleep(1100);
  const hit = await get(gw, "/c/doc");
  assert.match(hit.cs, /hit/, hit.cs);
  assert.equal(hit.headers.get("x-revision"), "from-304");
  assert.equal(up.count("/c/doc"), 2);
});

test("a client's conditional is answered 304 after the gateway revalidated a stale entry", async () => {
  const up = await origin((req) =>
    req.headers["if-none-match"] === '"e1"'
      ? { status: 304, headers: { etag: '"e1"', "cache-control": "max-age=1" } }
      : { headers: { "cache-control": "max-age=1", etag: '"e1"', "last-modified": "Wed, 21 Oct 2026 07:28:00 GMT" }, body: "representation" },
  );
  const gw = await gateway(up, { ttl_s: 600 });
  await get(gw, "/c/r");
  await sleep(1100);
  const r = await get(gw, "/c/r", { "if-none-match": '"e1"' });
  assert.equal(r.status, 304, "not 200: the client's tag matches the revalidated entry");
  assert.equal(r.body, "");
  assert.match(r.cs, /fwd-status=304/);
  const seen = up.seen("/c/r").at(-1).headers;
  assert.equal(seen["if-none-match"], '"e1"', "the origin saw the gateway's own validator");
  await sleep(1100);
  const ims = await get(gw, "/c/r", { "if-modified-since": "Thu, 22 Oct 2026 07:28:00 GMT" });
  assert.equal(ims.status, 304);
  await sleep(1100);
  const other = await get(gw, "/c/r", { "if-none-match": '"other"' });
  assert.equal(other.status, 200);
  assert.equal(other.body, "representation");
});

test("CDN-Cache-Control and Cloudflare-CDN-Cache-Control decide for the gateway and are not forwarded", async () => {
  const answers = {
    // Cache-Control says no-store to browsers; the CDN field lets the gateway keep it.
    "/c/cdn": { "cache-control": "no-store", "cdn-cache-control": "max-age=60" },
    // The more specific field wins over CDN-Cache-Control.
    "/c/cf": { "cache-control": "max-age=600", "cdn-cache-control": "max-age=600", "cloudflare-cdn-cache-control": "no-store" },
    // An invalid targeted field is ignored: Cache-Control decides.
    "/c/invalid": { "cache-control": "max-age=60", "cdn-cache-control": "max-age=60, Max-Age=1" },
  };
  const up = await origin((req) => ({ headers: answers[new URL(req.url, "http://x").pathname], body: "x" }));
  const gw = await gateway(up, { ttl_s: 600 });
  for (const path of Object.keys(answers)) {
    const a = await get(gw, path);
    const b = await get(gw, path);
    for (const r of [a, b]) {
      assert.equal(r.headers.get("cdn-cache-control"), null, `${path}: targeted fields are for the gateway`);
      assert.equal(r.headers.get("cloudflare-cdn-cache-control"), null, path);
      assert.equal(r.headers.get("cache-control"), answers[path]["cache-control"], `${path}: Cache-Control travels on`);
    }
    answers[path].second = b.cs;
  }
  assert.match(answers["/c/cdn"].second, /hit/);
  assert.equal(up.count("/c/cdn"), 1);
  assert.doesNotMatch(answers["/c/cf"].second, /hit/);
  assert.equal(up.count("/c/cf"), 2);
  assert.match(answers["/c/invalid"].second, /hit/);
});

test("default_ttl_s: without it a response that states no freshness is not reused; with it, it is", async () => {
  const up = await origin((req, n) => ({ headers: { "content-type": "text/plain" }, body: `n=${n}` }));
  const gwNone = await gateway(up, { ttl_s: 60 });
  await get(gwNone, "/c/silent");
  const again = await get(gwNone, "/c/silent");
  assert.match(again.cs, /fwd=miss; detail="zero-lifetime"/);
  assert.equal(up.count("/c/silent"), 2);
  const gwDefault = await gateway(up, { ttl_s: 60, default_ttl_s: 30 });
  await get(gwDefault, "/c/heuristic");
  const hit = await get(gwDefault, "/c/heuristic");
  assert.match(hit.cs, /^edge-gateway; hit; ttl=(29|30)$/);
  assert.equal(up.count("/c/heuristic"), 1);
});

test("statuses: heuristically cacheable ones and any with explicit freshness; never a 5xx without it", async () => {
  const cases = {
    "/c/s204": { status: 204, headers: { "cache-control": "max-age=60" }, stored: true },
    "/c/s405": { status: 405, headers: { "cache-control": "max-age=60", allow: "GET" }, stored: true },
    "/c/s414": { status: 414, headers: { "cache-control": "max-age=60" }, stored: true },
    "/c/s302": { status: 302, headers: { "cache-control": "max-age=60", location: "/elsewhere" }, stored: true },
    "/c/s400": { status: 400, headers: { "cache-control": "max-age=60" }, stored: true },
    "/c/s500x": { status: 500, headers: { "cache-control": "max-age=60" }, stored: true },
    "/c/s302bare": { status: 302, headers: { location: "/elsewhere", etag: '"t"' }, stored: false },
    "/c/s500": { status: 500, headers: { etag: '"t"' }, stored: false },
    "/c/s501": { status: 501, headers: { etag: '"t"' }, stored: false },
  };
  const up = await origin((req) => {
    const c = cases[new URL(req.url, "http://x").pathname];
    return { status: c.status, headers: c.headers, body: c.status === 204 ? "" : `status ${c.status}` };
  });
  const gw = await gateway(up, { ttl_s: 600, default_ttl_s: 60 });
  for (const [path, c] of Object.entries(cases)) {
    const a = await get(gw, path);
    const b = await get(gw, path);
    assert.equal(a.status, c.status, path);
    assert.equal(b.status, c.status, `${path} is served with its own status`);
    assert.equal(b.body, a.body, path);
    assert.equal(up.count(path), c.stored ? 1 : 2, `${path}: ${b.cs}`);
    if (c.stored) assert.match(b.cs, /hit/, path);
  }
  assert.equal((await get(gw, "/c/s302")).headers.get("location"), "/elsewhere");
  assert.equal((await get(gw, "/c/s405")).headers.get("allow"), "GET");
});

test("stale-while-revalidate: the stale entry is served at once and refreshed in the background, once", async () => {
  let version = 1;
  let release;
  let slow = false;
  const up = await startUpstream(async (req, res) => {
    if (slow) await new Promise((r) => (release = r));
    res.writeHead(200, { "cache-control": "max-age=1, stale-while-revalidate=30", "content-type": "text/plain" });
    res.end(`v${version}`);
  });
  cleanup.push(() => up.close());
  const gw = await gateway(up, { ttl_s: 600 });
  assert.equal((await get(gw, "/c/swr")).body, "v1");
  await sleep(1100);
  version = 2;
  slow = true;
  // Stale now: three clients get the stale body at once while the origin is still working,
  // and only one refresh is sent.
  const answers = [];
  for (let i = 0; i < 3; i++) answers.push(await get(gw, "/c/swr"));
  for (const a of answers) {
    assert.equal(a.body, "v1");
    assert.match(a.cs, /^edge-gateway; hit; ttl=(0|-\d+); detail="stale-while-revalidate"$/);
  }
  assert.ok(await eventually(() => up.requests.length === 2), "one background refresh reached the origin");
  await sleep(200);
  assert.equal(up.requests.length, 2, "one refresh per key at a time");
  slow = false;
  release();
  const refreshed = await eventually(async () => {
    const r = await get(gw, "/c/swr");
    return r.body === "v2" && /hit/.test(r.cs) && r;
  });
  assert.ok(refreshed, "the refresh replaced the entry");

  // A route's stale_while_revalidate_s applies when the upstream does not say.
  let n = 0;
  const other = await origin(() => ({ headers: { "cache-control": "max-age=1", etag: `"r${++n}"` }, body: `r${n}` }));
  const gw2 = await gateway(other, { ttl_s: 600, stale_while_revalidate_s: 30 });
  await get(gw2, "/c/route");
  await sleep(1100);
  const stale = await get(gw2, "/c/route");
  assert.equal(stale.body, "r1");
  assert.match(stale.cs, /stale-while-revalidate/);
  assert.ok(await eventually(() => other.count("/c/route") === 2));
  assert.equal(other.seen("/c/route").at(-1).headers["if-none-match"], '"r1"', "the refresh is conditional");
});

test("Range: 206 from a stored full response, 416 when unsatisfiable, whole on a miss and for several ranges", async () => {
  const body = "0123456789abcdefghij";
  // The origin sends its body chunked (no Content-Length): the gateway learns its length.
  const up = await origin(() => ({ headers: { "cache-control": "max-age=60", etag: '"b"', "content-type": "text/plain" }, body }));
  const gw = await gateway(up, { ttl_s: 60 });
  const miss = await get(gw, "/c/file", { range: "bytes=0-3" });
  assert.equal(miss.status, 200, "a range on a miss fetches and stores the whole response");
  assert.equal(miss.body, body);
  assert.equal(up.seen("/c/file")[0].headers.range, undefined, "the origin is asked for the whole");
  const cases = [
    ["bytes=0-3", 206, "0123", "bytes 0-3/20"],
    ["bytes=10-", 206, "abcdefghij", "bytes 10-19/20"],
    ["bytes=-5", 206, "fghij", "bytes 15-19/20"],
    ["bytes=15-99", 206, "fghij", "bytes 15-19/20"],
    ["bytes=20-", 416, null, "bytes */20"],
    ["bytes=0-1,5-6", 200, body, null],
    ["bytes=5-2", 200, body, null],
    ["items=0-3", 200, body, null],
  ];
  for (const [range, status, want, contentRange] of cases) {
    const r = await get(gw, "/c/file", { range });
    assert.equal(r.status, status, range);
    if (want !== null) assert.equal(r.body, want, range);
    assert.equal(r.headers.get("content-range"), contentRange, range);
    if (status === 206) assert.equal(r.headers.get("content-length"), String(want.length), range);
    if (status === 416) {
      assert.equal(JSON.parse(r.body).code, "range_not_satisfiable");
      assert.match(r.cs, /^edge-gateway; hit/, "a 416 answered from the entry says so");
    }
  }
  // If-Range: a matching strong tag gives the range, another tag the whole response.
  assert.equal((await get(gw, "/c/file", { range: "bytes=0-1", "if-range": '"b"' })).status, 206);
  assert.equal((await get(gw, "/c/file", { range: "bytes=0-1", "if-range": '"old"' })).status, 200);
  assert.equal(up.count("/c/file"), 1, "every range came from the stored entry");
});

test("qualified private= and no-cache= are stored without the named fields", async () => {
  const up = await origin((req, n) => ({
    headers: {
      "cache-control": 'max-age=60, private="x-user-token", no-cache="set-cookie"',
      "set-cookie": `session=${n}`,
      "x-user-token": `secret-${n}`,
      "x-shared": "kept",
    },
    body: "shared body",
  }));
  const gw = await gateway(up, { ttl_s: 60 });
  const first = await get(gw, "/c/q");
  assert.equal(first.headers.get("set-cookie"), "session=1", "the client of the miss gets everything");
  assert.equal(first.headers.get("x-user-token"), "secret-1");
  assert.match(first.cs, /stored/);
  const second = await get(gw, "/c/q");
  assert.match(second.cs, /hit/);
  assert.equal(second.body, "shared body");
  assert.equal(second.headers.get("x-shared"), "kept");
  assert.equal(second.headers.get("x-user-token"), null, "private field stripped");
  assert.equal(second.headers.get("set-cookie"), null, "no-cache field stripped");
  assert.equal(up.count("/c/q"), 1);
});

test("request directives are ignored by default and honoured with honor_request_directives", async () => {
  const up = await origin((req, n) => ({ headers: { "cache-control": "max-age=60" }, body: `n=${n}` }));
  const gw = await gateway(up, { ttl_s: 60 }, [
    { id: "h", path: "/h/{*rest}", upstream: "u", auth: "none", cache: { ttl_s: 60, honor_request_directives: true } },
  ]);
  await get(gw, "/c/a");
  const ignored = await get(gw, "/c/a", { "cache-control": "no-cache, max-age=0" });
  assert.match(ignored.cs, /hit/, "a client cannot bypass the cache by default");
  assert.equal(up.count("/c/a"), 1);

  await get(gw, "/h/a");
  const noCache = await get(gw, "/h/a", { "cache-control": "no-cache" });
  assert.doesNotMatch(noCache.cs, /hit/);
  assert.equal(up.count("/h/a"), 2, "no-cache went to the origin");
  await sleep(1100);
  const maxAge = await get(gw, "/h/a", { "cache-control": "max-age=0" });
  assert.doesNotMatch(maxAge.cs, /hit/);
  assert.equal(up.count("/h/a"), 3);
  const fresh = await get(gw, "/h/a", { "cache-control": "min-fresh=5" });
  assert.match(fresh.cs, /hit/);
  const tooClose = await get(gw, "/h/a", { "cache-control": "min-fresh=3600" });
  assert.doesNotMatch(tooClose.cs, /hit/);
  const onlyCached = await get(gw, "/h/missing", { "cache-control": "only-if-cached" });
  assert.equal(onlyCached.status, 504);
  assert.equal(JSON.parse(onlyCached.body).code, "not_cached");
  assert.equal(onlyCached.cs, 'edge-gateway; fwd=miss; detail="only-if-cached"');
  assert.equal(up.count("/h/missing"), 0, "only-if-cached never reaches the origin");
  assert.match((await get(gw, "/h/a", { "cache-control": "only-if-cached" })).cs, /hit/);
});

test("max-stale serves a stale entry only when the upstream allows it", async () => {
  const up = await origin((req) => {
    const strict = req.url.includes("strict");
    // With an ETag the entry is kept past its freshness (to be revalidated), so a client's
    // max-stale can find it.
    const headers = { "cache-control": strict ? "max-age=1, must-revalidate" : "max-age=1", etag: `"${Date.now()}"` };
    return { headers, body: `body ${Date.now()}` };
  });
  const gw = await gateway(up, { ttl_s: 600, honor_request_directives: true });
  const a = await get(gw, "/c/lenient");
  const s = await get(gw, "/c/strict");
  await sleep(1100);
  const lenient = await get(gw, "/c/lenient", { "cache-control": "max-stale=60" });
  assert.equal(lenient.body, a.body);
  assert.match(lenient.cs, /^edge-gateway; hit; ttl=(0|-\d+)$/);
  const strict = await get(gw, "/c/strict", { "cache-control": "max-stale=60" });
  assert.notEqual(strict.body, s.body, "must-revalidate: max-stale cannot override it");
  assert.equal(up.count("/c/strict"), 2);
});

test("body integrity: a body shorter than Content-Length or broken off is never stored, refreshes included", async () => {
  // A raw origin: the first answer per path is whole, the next ones break off mid-body.
  const up = await rawUpstream((socket, path, n) => {
    const cc = "Cache-Control: max-age=1, stale-while-revalidate=30\r\n";
    if (n === 1) return socket.end(`HTTP/1.1 200 OK\r\n${cc}Content-Length: 5\r\nConnection: close\r\n\r\nwhole`);
    socket.write(`HTTP/1.1 200 OK\r\n${cc}Content-Length: 1000\r\n\r\ncut`);
    setTimeout(() => socket.destroy(), 50);
  });
  cleanup.push(() => up.close());
  const hits = up.hits;
  const gw = await gateway(up, { ttl_s: 600 });
  assert.equal((await get(gw, "/c/body")).body, "whole");
  await sleep(1100);
  // Stale within its window: served whole at once; the background refresh gets a cut body,
  // which must not replace the whole entry.
  const stale = await get(gw, "/c/body");
  assert.equal(stale.body, "whole");
  assert.ok(await eventually(() => hits["/c/body"] === 2), "the refresh reached the origin");
  await sleep(300);
  const after = await get(gw, "/c/body");
  assert.equal(after.body, "whole", "the truncated refresh was not stored");
});

test("targeted cache fields never reach the client, also when a request bypasses the cache", async () => {
  const up = await origin(() => ({
    headers: { "cache-control": "max-age=60", "cdn-cache-control": "max-age=30", "cloudflare-cdn-cache-control": "max-age=10" },
    body: "answer",
  }));
  const gw = await gateway(up, { ttl_s: 600 });
  for (const method of ["OPTIONS", "POST", "GET"]) {
    const r = await gw.fetch("/c/x", { method, body: method === "POST" ? "x" : undefined });
    await r.text();
    assert.equal(r.status, 200, method);
    assert.equal(r.headers.get("cdn-cache-control"), null, `${method}: CDN-Cache-Control forwarded`);
    assert.equal(r.headers.get("cloudflare-cdn-cache-control"), null, `${method}: Cloudflare-CDN-Cache-Control forwarded`);
    assert.equal(r.headers.get("cache-control"), "max-age=60", `${method}: Cache-Control travels on`);
  }
});
