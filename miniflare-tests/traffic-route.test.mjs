// Traffic routing in workerd: header- and query-routed versions, canary splits (proportions,
// stickiness, raising the percentage, the override header, cache separation, the variant in
// logs and metrics), WebSocket pass-through to a real `ws` server with auth and rate limits on
// the handshake, and server-sent events arriving one by one.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import WebSocket, { WebSocketServer } from "ws";
import { startGateway, startObservedGateway, startUpstream, config, hs256Token, eventually } from "./harness.mjs";

const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

const SECRET = "an HMAC secret for the traffic-route tests, 32+ bytes";

/** An upstream answering `{ "served_by": name, "url": … }`, counting what it received. */
async function named(name, extra = {}) {
  const up = await startUpstream((req, res, record) => {
    res.setHeader("content-type", "application/json");
    for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
    res.end(JSON.stringify({ served_by: name, url: record.url, headers: record.headers }));
  });
  cleanup.push(() => up.close());
  return up;
}

async function gateway(routes, options = {}) {
  const start = options.observed ? startObservedGateway : startGateway;
  const gw = await start({ routes, bindings: { JWT_SECRET: SECRET }, ...options });
  cleanup.push(() => gw.close());
  return gw;
}

const servedBy = async (response) => {
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()).served_by;
};

// ---- match ---------------------------------------------------------------------------------

test("versions routed by header and query on one path; the plain route takes the rest", async () => {
  const [v1, v2, v3] = [await named("v1"), await named("v2"), await named("v3")];
  const gw = await gateway(
    config({
      upstreams: { v1: { targets: [{ url: v1.url }] }, v2: { targets: [{ url: v2.url }] }, v3: { targets: [{ url: v3.url }] } },
      routes: [
        { id: "users-v2", path: "/users/{id}", upstream: "v2", auth: "none", match: { headers: { "X-Api-Version": "2" } } },
        { id: "users-v1", path: "/users/{id}", upstream: "v1", auth: "none" },
        { id: "users-v3", path: "/users/{uid}", upstream: "v3", auth: "none", match: { headers: { "x-api-version": "3" } } },
        { id: "items-v3", path: "/items/{id}", upstream: "v3", auth: "none", match: { query: { version: "3" } } },
        { id: "items", path: "/items/{id}", upstream: "v1", auth: "none" },
        { id: "beta-only", methods: ["GET"], path: "/beta", upstream: "v2", auth: "none", match: { headers: { "x-beta": "*" } } },
      ],
    }),
  );
  assert.equal(await servedBy(await gw.fetch("/users/7")), "v1");
  assert.equal(await servedBy(await gw.fetch("/users/7", { headers: { "x-api-version": "2" } })), "v2");
  assert.equal(await servedBy(await gw.fetch("/users/7", { headers: { "x-api-version": "3" } })), "v3");
  // Exact values only: anything else is the plain route's.
  for (const value of ["4", "02", "4, 5", "two"]) {
    assert.equal(await servedBy(await gw.fetch("/users/7", { headers: { "x-api-version": value } })), "v1", value);
  }
  // Repeated headers of which one has the value: a reader of the first or last takes it for v2
  // or v3, so neither route serves it.
  const twice = await gw.fetch("/users/7", { headers: { "x-api-version": "2, 3" } });
  assert.equal(twice.status, 400);
  assert.equal((await twice.json()).code, "bad_request");
  assert.equal(await servedBy(await gw.fetch("/items/7")), "v1");
  assert.equal(await servedBy(await gw.fetch("/items/7?version=3")), "v3");
  assert.equal(await servedBy(await gw.fetch("/items/7?a=1&version=%33")), "v3", "query values are compared decoded");
  // Repeated parameters must all agree: when only some have the value, an upstream may read
  // either, so neither route serves (400); when none has it, the plain route does.
  for (const query of ["version=3&version=1", "version=1&version=3", "a=1;version=3", "VERSION=3"]) {
    const r = await gw.fetch(`/items/7?${query}`);
    assert.equal(r.status, 400, query);
    assert.equal((await r.json()).code, "bad_request");
  }
  assert.equal(await servedBy(await gw.fetch("/items/7?version=1&version=2")), "v1");
  // The conditioned route's query and headers reach its upstream unchanged.
  const body = await (await gw.fetch("/items/7?version=3", { headers: { "x-api-version": "2" } })).json();
  assert.equal(body.url, "/items/7?version=3");
  assert.equal(body.headers["x-api-version"], "2");
  // A path whose only routes have conditions: unmet is 404, another method 405.
  assert.equal(await servedBy(await gw.fetch("/beta", { headers: { "x-beta": "yes" } })), "v2");
  const missing = await gw.fetch("/beta");
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).code, "route_not_found");
  const post = await gw.fetch("/beta", { method: "POST", headers: { "x-beta": "1" } });
  assert.equal(post.status, 405);
});

test("routes whose conditions can both hold are refused, naming both; exclusive ones are not", async () => {
  const v1 = await named("v1");
  const upstreams = { v1: { targets: [{ url: v1.url }] } };
  const gw = await gateway(
    config({
      settings: { admin: { path: "/__gateway", token_secret: "ADMIN_TOKEN" } },
      upstreams,
      routes: [{ id: "ok", path: "/ok", upstream: "v1", auth: "none" }],
    }),
    { bindings: { ADMIN_TOKEN: "admin-token-of-at-least-thirty-two-bytes" } },
  );
  assert.equal((await gw.fetch("/ok")).status, 200);
  // The running gateway keeps its valid table; the health endpoint shows why the new one was refused.
  await gw.setRoutes(
    config({
      settings: { admin: { path: "/__gateway", token_secret: "ADMIN_TOKEN" } },
      upstreams,
      routes: [
        { id: "a", path: "/x", upstream: "v1", auth: "none", match: { headers: { "x-api-version": "2" } } },
        { id: "b", path: "/x", upstream: "v1", auth: "none", match: { headers: { "x-api-version": "*" } } },
      ],
    }),
  );
  const health = await eventually(async () => {
    const h = await (await gw.fetch("/__gateway/health", { headers: { authorization: "Bearer admin-token-of-at-least-thirty-two-bytes" } })).json();
    return h.last_reload_error ? h : null;
  });
  assert.ok(health, "the refused document is reported");
  const text = JSON.stringify(health.last_reload_error);
  assert.match(text, /route \\"b\\" conflicts with route \\"a\\"/);
  assert.equal((await gw.fetch("/ok")).status, 200, "the last valid table still serves");
});

// ---- canary --------------------------------------------------------------------------------

const canaryRoutes = (primary, canary, canarySpec, extra = {}) =>
  config({
    upstreams: { primary: { targets: [{ url: primary.url }] }, next: { targets: [{ url: canary.url }] } },
    routes: [{ id: "split", path: "/split/{*rest}", upstream: "primary", auth: "none", canary: canarySpec, ...extra }],
  });

test("canary: proportions over many keys, stickiness, and raising the percentage only moves keys to the canary", async () => {
  const [primary, next] = [await named("primary"), await named("next")];
  const spec = { upstream: "next", percent: 30, sticky: "header:x-user" };
  const gw = await gateway(canaryRoutes(primary, next, spec));
  const users = Array.from({ length: 400 }, (_, i) => `user-${i}`);
  const variantOf = async (user) => servedBy(await gw.fetch("/split/a", { headers: { "x-user": user } }));
  const first = new Map();
  for (const u of users) first.set(u, await variantOf(u));
  const onCanary = users.filter((u) => first.get(u) === "next");
  // 30 % of 400 is 120; a binomial's standard deviation is about 9.
  assert.ok(onCanary.length >= 80 && onCanary.length <= 160, `${onCanary.length} of 400 on the canary`);
  // The same key keeps its variant.
  for (const u of users.slice(0, 60)) assert.equal(await variantOf(u), first.get(u), u);

  // Raise the percentage: every canary key stays, some primary keys move, none move back.
  await gw.setRoutes(canaryRoutes(primary, next, { ...spec, percent: 60 }));
  const movers = users.filter((u) => first.get(u) === "primary");
  const moved = await eventually(async () => {
    for (const u of movers.slice(0, 40)) if ((await variantOf(u)) === "next") return u;
    return null;
  });
  assert.ok(moved, "some primary keys move once the new percentage is served");
  let canaryNow = 0;
  for (const u of users) {
    const v = await variantOf(u);
    if (first.get(u) === "next") assert.equal(v, "next", `${u} went back to primary`);
    if (v === "next") canaryNow++;
  }
  assert.ok(canaryNow >= 200 && canaryNow <= 280, `${canaryNow} of 400 on the canary at 60 %`);

  // Rolling back is percent 0: everyone is on the primary.
  await gw.setRoutes(canaryRoutes(primary, next, { ...spec, percent: 0 }));
  const back = await eventually(async () => (await variantOf(onCanary[0])) === "primary");
  assert.ok(back);
  for (const u of onCanary.slice(0, 40)) assert.equal(await variantOf(u), "primary", u);
});

test("canary: sticky by client address by default on public routes; none draws per request", async () => {
  const [primary, next] = [await named("primary"), await named("next")];
  const gw = await gateway(
    config({
      upstreams: { primary: { targets: [{ url: primary.url }] }, next: { targets: [{ url: next.url }] } },
      routes: [
        { id: "by-ip", path: "/ip", upstream: "primary", auth: "none", canary: { upstream: "next", percent: 50 } },
        { id: "random", path: "/random", upstream: "primary", auth: "none", canary: { upstream: "next", percent: 50, sticky: "none" } },
      ],
    }),
  );
  const seen = new Set();
  for (let i = 1; i <= 40; i++) {
    const headers = { "cf-connecting-ip": `198.51.100.${i}` };
    const v = await servedBy(await gw.fetch("/ip", { headers }));
    seen.add(v);
    for (let j = 0; j < 3; j++) assert.equal(await servedBy(await gw.fetch("/ip", { headers })), v, `198.51.100.${i}`);
  }
  assert.deepEqual([...seen].sort(), ["next", "primary"], "both variants serve some addresses");
  // Without stickiness, one client lands on both sides over a few requests.
  const one = new Set();
  for (let i = 0; i < 40 && one.size < 2; i++) one.add(await servedBy(await gw.fetch("/random", { headers: { "cf-connecting-ip": "198.51.100.1" } })));
  assert.equal(one.size, 2);
});

test("canary: the override header forces a variant, is never forwarded, and refuses other values", async () => {
  const [primary, next] = [await named("primary"), await named("next")];
  const gw = await gateway(canaryRoutes(primary, next, { upstream: "next", percent: 0, sticky: "cookie:uid", override_header: "X-Canary" }));
  assert.equal(await servedBy(await gw.fetch("/split/a", { headers: { cookie: "uid=1" } })), "primary");
  let r = await gw.fetch("/split/a", { headers: { "x-canary": "always", cookie: "uid=1" } });
  const forced = await r.json();
  assert.equal(forced.served_by, "next");
  assert.equal(forced.headers["x-canary"], undefined, "the override header is not forwarded");
  assert.equal(forced.headers.cookie, "uid=1", "the sticky cookie is forwarded as it came");
  assert.equal(await servedBy(await gw.fetch("/split/a", { headers: { "x-canary": "Never" } })), "primary");
  r = await gw.fetch("/split/a", { headers: { "x-canary": "maybe" } });
  assert.equal(r.status, 400);
  const problem = await r.json();
  assert.equal(problem.code, "bad_request");
  assert.match(problem.detail, /always.*never/);
  assert.equal(next.requests.length, 1, "only the forced request reached the canary");
});

test("canary: the variant is part of the cache key", async () => {
  const primary = await named("primary", { "cache-control": "max-age=60" });
  const next = await named("next", { "cache-control": "max-age=60" });
  const gw = await gateway(
    canaryRoutes(primary, next, { upstream: "next", percent: 50, sticky: "header:x-user", override_header: "x-canary" }, { cache: { ttl_s: 60 } }),
  );
  const get = (variant) => gw.fetch("/split/page", { headers: { "x-canary": variant } });
  let r = await get("never");
  assert.equal(await servedBy(r), "primary");
  assert.match(r.headers.get("cache-status"), /fwd=miss/);
  await new Promise((resolve) => setTimeout(resolve, 100)); // the store runs after the answer
  r = await get("always");
  assert.equal(await servedBy(r), "next", "the canary never gets the primary's entry");
  assert.match(r.headers.get("cache-status"), /fwd=miss/);
  await new Promise((resolve) => setTimeout(resolve, 100));
  for (const [variant, name] of [["never", "primary"], ["always", "next"]]) {
    const hit = await eventually(async () => {
      const res = await get(variant);
      const body = await res.json();
      assert.equal(body.served_by, name);
      return /hit/.test(res.headers.get("cache-status")) ? body : null;
    });
    assert.ok(hit, `${variant} is served from its own entry`);
  }
  assert.equal(primary.requests.length, 1);
  assert.equal(next.requests.length, 1);
});

test("canary: the variant and the serving upstream are in the access line and the data point", async () => {
  const [primary, next] = [await named("primary"), await named("next")];
  const gw = await gateway(canaryRoutes(primary, next, { upstream: "next", percent: 50, override_header: "x-canary" }), { observed: true });
  await gw.capture.clear();
  await servedBy(await gw.fetch("/split/a", { headers: { "x-canary": "always" } }));
  await servedBy(await gw.fetch("/split/b", { headers: { "x-canary": "never" } }));
  const lines = await gw.capture.lines("access", { until: (l) => l.length >= 2 });
  const byPath = Object.fromEntries(lines.map((l) => [l.path, l]));
  assert.equal(byPath["/split/a"].variant, "canary");
  assert.equal(byPath["/split/a"].upstream, "next");
  assert.equal(byPath["/split/b"].variant, "primary");
  assert.equal(byPath["/split/b"].upstream, "primary");
  const points = await gw.capture.dataPoints({ until: (p) => p.length >= 2 });
  const variants = points.map((p) => [p.blobs[8], p.blobs[14]]).sort();
  assert.deepEqual(variants, [["next", "canary"], ["primary", "primary"]], "blob9 upstream, blob15 variant");
});

// ---- WebSocket -----------------------------------------------------------------------------

/** A real `ws` server on 127.0.0.1 that echoes every message, and records each handshake. */
async function wsUpstream() {
  const up = await startUpstream();
  cleanup.push(() => up.close());
  const handshakes = [];
  const wss = new WebSocketServer({
    server: up.server,
    handleProtocols: (protocols) => (protocols.has("chat.v1") ? "chat.v1" : false),
  });
  wss.on("connection", (socket, req) => {
    handshakes.push({ url: req.url, headers: req.headers });
    socket.on("message", (data, binary) => socket.send(binary ? data : `echo: ${data}`, { binary }));
  });
  cleanup.push(() => {
    // ws leaves open connections to their owner: end them, then stop accepting.
    for (const client of wss.clients) client.terminate();
    wss.close();
  });
  return { ...up, handshakes };
}

/** Opens a WebSocket to the gateway; resolves to the open socket, or { status } when refused. */
function connect(gw, path, { headers = {}, protocols } = {}) {
  const url = gw.url.replace(/^http/, "ws") + path;
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, protocols, { headers });
    socket.once("open", () => resolve(socket));
    socket.once("unexpected-response", (req, res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    socket.once("error", reject);
  });
}

const nextMessage = (socket) =>
  new Promise((resolve, reject) => {
    const closed = () => reject(new Error("closed before a message"));
    socket.once("close", closed);
    socket.once("message", (data, binary) => {
      socket.off("close", closed);
      resolve(binary ? data : data.toString());
    });
  });

async function wsGateway(up, { timeout_ms = 10000, retries } = {}) {
  return gateway(
    config({
      upstreams: {
        ws: { targets: [{ url: up.url }], timeout_ms, ...(retries === undefined ? {} : { retries }) },
        plain: { targets: [{ url: up.url }] },
      },
      auth: { users: { type: "jwt", issuer: "https://id.test/", audiences: ["api"], secret: "JWT_SECRET", algorithms: ["HS256"], token_query: "access_token" } },
      rate_limits: { handshakes: { key: "consumer", limit: 3, window_s: 600 } },
      routes: [
        { id: "live", path: "/live", upstream: "ws", rewrite: "/socket", auth: ["users"], websocket: true, rate_limits: ["handshakes"] },
        { id: "open-live", path: "/open", upstream: "ws", auth: "none", websocket: true },
        { id: "plain", path: "/plain", upstream: "plain", auth: "none" },
      ],
    }),
  );
}

test("websocket: an echo through the gateway, with auth on the handshake", async () => {
  const up = await wsUpstream();
  const gw = await wsGateway(up);
  // No token: the handshake is refused by the gateway and never reaches the upstream.
  const refused = await connect(gw, "/live");
  assert.equal(refused.status, 401);
  assert.equal(JSON.parse(refused.body).code, "missing_credentials");
  const bad = await connect(gw, "/live", { headers: { authorization: "Bearer not.a.token" } });
  assert.equal(bad.status, 401);
  assert.equal(up.handshakes.length, 0);

  const token = await hs256Token(SECRET, "alice");
  const socket = await connect(gw, "/live?room=1", { headers: { authorization: `Bearer ${token}` }, protocols: ["chat.v1"] });
  assert.ok(socket instanceof WebSocket, `refused: ${JSON.stringify(socket)}`);
  assert.equal(socket.protocol, "chat.v1", "the subprotocol is negotiated end to end");
  socket.send("hello");
  assert.equal(await nextMessage(socket), "echo: hello");
  socket.send(Buffer.from([0, 1, 2, 255]), { binary: true });
  assert.deepEqual([...(await nextMessage(socket))], [0, 1, 2, 255]);
  for (let i = 0; i < 20; i++) {
    socket.send(`m${i}`);
    assert.equal(await nextMessage(socket), `echo: m${i}`);
  }
  socket.close();

  assert.equal(up.handshakes.length, 1);
  const seen = up.handshakes[0];
  assert.equal(seen.url, "/socket?room=1", "rewrite and query apply to the handshake");
  assert.equal(seen.headers.upgrade.toLowerCase(), "websocket");
  assert.match(seen.headers["sec-websocket-protocol"], /chat\.v1/);

  // A browser cannot set headers on a WebSocket: the token can come in the query.
  const byQuery = await connect(gw, `/live?access_token=${token}`);
  assert.ok(byQuery instanceof WebSocket, JSON.stringify(byQuery));
  byQuery.send("q");
  assert.equal(await nextMessage(byQuery), "echo: q");
  byQuery.close();
  assert.equal(up.handshakes[1].url, "/socket", "the credential parameter is not forwarded");
});

test("websocket: rate limits apply to the handshake", async () => {
  const up = await wsUpstream();
  const gw = await wsGateway(up);
  const token = await hs256Token(SECRET, "bob");
  const opened = [];
  for (let i = 0; i < 3; i++) {
    const s = await connect(gw, "/live", { headers: { authorization: `Bearer ${token}` } });
    assert.ok(s instanceof WebSocket, JSON.stringify(s));
    opened.push(s);
  }
  const limited = await connect(gw, "/live", { headers: { authorization: `Bearer ${token}` } });
  assert.equal(limited.status, 429);
  assert.equal(JSON.parse(limited.body).code, "rate_limited");
  assert.ok(limited.headers["retry-after"]);
  for (const s of opened) s.close();
  assert.equal(up.handshakes.length, 3);
});

test("websocket: plain requests on the route are 426; upgrades elsewhere are not relayed", async () => {
  const up = await wsUpstream();
  const gw = await wsGateway(up);
  const r = await gw.fetch("/open");
  assert.equal(r.status, 426);
  const problem = await r.json();
  assert.equal(problem.code, "upgrade_required");
  assert.match(problem.detail, /WebSocket/);
  // On a route without `websocket`, the upgrade headers never reach the upstream: the client
  // gets the upstream's plain answer, never a socket.
  const elsewhere = await connect(gw, "/plain");
  assert.equal(elsewhere.status, 200);
  const received = JSON.parse(elsewhere.body);
  assert.equal(received.headers.upgrade, undefined);
  assert.equal(received.headers["sec-websocket-key"], undefined);
  assert.equal(received.headers["sec-websocket-version"], undefined);
  assert.equal(up.handshakes.length, 0);
});

test("websocket: a handshake the runtime would refuse is refused before the upstream is reached", async () => {
  const up = await wsUpstream();
  const gw = await wsGateway(up);
  const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
  const upgrade = { connection: "Upgrade", upgrade: "websocket" };
  const cases = [
    // Without the gateway's check the runtime opened the upstream's socket with a key of its
    // own, then answered the client 400 itself: the upstream held a session nobody joined.
    ["no key", "GET", { ...upgrade, "sec-websocket-version": "13" }, 400, "bad_request"],
    ["a key that is not 16 bytes", "GET", { ...upgrade, "sec-websocket-version": "13", "sec-websocket-key": "abc" }, 400, "bad_request"],
    ["version 8", "GET", { ...upgrade, "sec-websocket-version": "8", "sec-websocket-key": KEY }, 426, "upgrade_required"],
    // The runtime presents a POST that asks for an upgrade as a GET without its body.
    ["a POST with a body", "POST", { ...upgrade, "sec-websocket-version": "13", "sec-websocket-key": KEY, "content-length": "2" }, 400, "bad_request"],
    // The runtime sends a plain request upstream for anything but `Upgrade: websocket`.
    ["another protocol too", "GET", { connection: "Upgrade", upgrade: "h2c, websocket", "sec-websocket-version": "13", "sec-websocket-key": KEY }, 400, "bad_request"],
  ];
  for (const [why, method, headers, status, code] of cases) {
    const r = await gw.raw("/open", { method, headers, body: method === "POST" ? "hi" : undefined });
    assert.equal(r.status, status, why);
    assert.equal(JSON.parse(r.body).code, code, why);
    if (status === 426) assert.equal(r.headers["sec-websocket-version"], "13", why);
  }
  assert.equal(up.handshakes.length, 0, "no refused handshake reached the upstream");
  assert.equal(up.requests.length, 0, "nor did a plain request");
  // A browser's handshake still opens.
  const socket = await connect(gw, "/open");
  assert.ok(socket instanceof WebSocket, JSON.stringify(socket));
  socket.close();
  assert.equal(up.handshakes.length, 1);
});

test("websocket: timeout_ms bounds the handshake, not the session", async () => {
  // An upstream that accepts the connection but never answers the upgrade.
  const silent = http.createServer();
  const held = new Set();
  silent.on("connection", (socket) => held.add(socket));
  await new Promise((r) => silent.listen(0, "127.0.0.1", r));
  cleanup.push(async () => {
    for (const s of held) s.destroy();
    await new Promise((r) => silent.close(r));
  });
  const slow = await gateway(
    config({
      upstreams: { ws: { targets: [{ url: `http://127.0.0.1:${silent.address().port}` }], timeout_ms: 300 } },
      routes: [{ id: "live", path: "/live", upstream: "ws", auth: "none", websocket: true }],
    }),
  );
  const timedOut = await connect(slow, "/live");
  assert.equal(timedOut.status, 504);
  assert.equal(JSON.parse(timedOut.body).code, "upstream_timeout");

  // A session outlives the handshake timeout.
  const up = await wsUpstream();
  const gw = await wsGateway(up, { timeout_ms: 300 });
  const socket = await connect(gw, "/open");
  assert.ok(socket instanceof WebSocket, JSON.stringify(socket));
  await new Promise((r) => setTimeout(r, 800));
  socket.send("still here");
  assert.equal(await nextMessage(socket), "echo: still here");
  socket.close();
});

test("websocket: an upstream that refuses the upgrade is relayed as its answer", async () => {
  const up = await startUpstream((req, res) => {
    res.statusCode = 403;
    res.setHeader("content-type", "text/plain");
    res.end("no sockets for you");
  });
  cleanup.push(() => up.close());
  const gw = await gateway(
    config({
      upstreams: { ws: { targets: [{ url: up.url }] } },
      routes: [{ id: "live", path: "/live", upstream: "ws", auth: "none", websocket: true }],
    }),
  );
  const r = await connect(gw, "/live");
  assert.equal(r.status, 403);
  assert.equal(r.body, "no sockets for you");
});

// ---- server-sent events ----------------------------------------------------------------------

test("server-sent events stream through one by one", async () => {
  let firstArrived;
  const arrived = new Promise((resolve) => (firstArrived = resolve));
  let forced = false;
  const up = await startUpstream(async (req, res) => {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.write("id: 1\ndata: first\n\n");
    // The last event is sent only once the client has the first one (or, if the gateway held
    // the first back, after a long wait that fails the test).
    const timer = setTimeout(() => {
      forced = true;
      firstArrived();
    }, 5000);
    await arrived;
    clearTimeout(timer);
    res.end("id: 2\ndata: last\n\n");
  });
  cleanup.push(() => up.close());
  const gw = await gateway(
    config({ upstreams: { u: { targets: [{ url: up.url }] } }, routes: [{ id: "events", path: "/events", upstream: "u", auth: "none" }] }),
  );
  const received = await new Promise((resolve, reject) => {
    const events = [];
    http
      .get(gw.url + "/events", { headers: { accept: "text/event-stream" } }, (res) => {
        assert.equal(res.headers["content-type"], "text/event-stream");
        let buffered = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => {
          buffered += chunk;
          let end;
          while ((end = buffered.indexOf("\n\n")) >= 0) {
            events.push({ text: buffered.slice(0, end), forced });
            buffered = buffered.slice(end + 2);
            if (events.length === 1) firstArrived();
          }
        });
        res.on("end", () => resolve(events));
        res.on("error", reject);
      })
      .on("error", reject);
  });
  assert.deepEqual(
    received.map((e) => e.text),
    ["id: 1\ndata: first", "id: 2\ndata: last"],
  );
  assert.equal(received[0].forced, false, "the first event arrived before the upstream sent the last");
  assert.equal(forced, false);
});
