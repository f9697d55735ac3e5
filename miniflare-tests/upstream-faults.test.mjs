// Broken upstreams, spoken to over raw sockets so they can send what no HTTP library would:
// statuses the gateway must not relay, and bodies cut short that must never be cached.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, config, eventually, rawUpstream as rawServer } from "./harness.mjs";

const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

const ADMIN = { authorization: "Bearer test-admin-token-of-thirty-two-bytes" };

/** A `rawUpstream` (see harness.mjs), closed after the file's tests. */
async function rawUpstream(answer) {
  const up = await rawServer(answer);
  cleanup.push(() => up.close());
  return up;
}

async function gateway(up, routes) {
  const gw = await startGateway({
    bindings: { ADMIN_TOKEN: "test-admin-token-of-thirty-two-bytes" },
    routes: config({
      settings: { admin: { path: "/__gateway", token_secret: "ADMIN_TOKEN" } },
      upstreams: { u: { targets: [{ url: up.url }] } },
      routes,
    }),
  });
  cleanup.push(() => gw.close());
  return gw;
}

async function counters(gw) {
  return (await (await gw.fetch("/__gateway/health", { headers: ADMIN })).json()).isolate_counters;
}

const ODD = {
  "/early-hints": "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
  "/continue": "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
  "/six-hundred": "HTTP/1.1 600 Beyond\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno",
  "/upgrade": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
  "/ninety-nine": "HTTP/1.1 099 Low\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno",
};

test("odd upstream statuses are a 502 upstream_invalid_response, never a raw 500", async () => {
  const up = await rawUpstream((socket, path) => {
    socket.end(ODD[path.replace(/^\/(direct|cached)/, "")] ?? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
  });
  // A direct route (answered from JS's promise) and a cached one (through the Rust future).
  const gw = await gateway(up, [
    { id: "direct", path: "/direct/{*p}", upstream: "u", auth: "none" },
    { id: "cached", path: "/cached/{*p}", upstream: "u", auth: "none", cache: { ttl_s: 60 } },
  ]);
  const before = await counters(gw);
  for (const prefix of ["/direct", "/cached"]) {
    assert.equal((await (await gw.fetch(prefix + "/fine")).text()), "ok", "a normal answer passes");
    for (const path of Object.keys(ODD)) {
      const r = await gw.fetch(prefix + path);
      const text = await r.text();
      // workerd hands an interim 1xx over as the answer (the 200 after it is never seen), so
      // each of these is a 502.
      assert.equal(r.status, 502, `${prefix}${path}: ${r.status} ${text}`);
      assert.equal(r.headers.get("content-type"), "application/problem+json", `${prefix}${path}`);
      const body = JSON.parse(text);
      assert.equal(body.code, "upstream_invalid_response", `${prefix}${path}`);
      assert.ok(body.request_id);
      assert.doesNotMatch(text, /Error|at .*:\d+|127\.0\.0\.1/, `${prefix}${path}`);
    }
  }
  const after = await counters(gw);
  assert.ok(after.upstream_invalid_responses >= (before.upstream_invalid_responses ?? 0) + 10, JSON.stringify(after));
});

test("bodies cut short are never stored: the next request is a miss", async () => {
  const head = (extra) => `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: max-age=60\r\n${extra}\r\n`;
  const up = await rawUpstream((socket, path) => {
    if (path.endsWith("/whole")) return socket.end(head("Content-Length: 10\r\nConnection: close\r\n") + "0123456789");
    if (path.endsWith("/short")) socket.write(head("Content-Length: 1000\r\n") + "0123456789");
    else if (path.endsWith("/chunked")) socket.write(head("Transfer-Encoding: chunked\r\n") + "a\r\n0123456789\r\n");
    // Then the connection breaks, before the declared length or the last chunk.
    setTimeout(() => socket.destroy(), 50);
  });
  const gw = await gateway(up, [{ id: "cached", path: "/cached/{*p}", upstream: "u", auth: "none", cache: { ttl_s: 60 } }]);
  const get = async (path) => {
    const r = await gw.fetch(path);
    let body;
    try {
      body = await r.text();
    } catch {
      body = null; // the client's copy breaks too: the upstream's failure, passed through
    }
    return { status: r.status, cacheStatus: r.headers.get("cache-status"), body };
  };

  // The control: a whole body is stored, and the second request is a hit.
  assert.equal((await get("/cached/whole")).body, "0123456789");
  assert.ok(await eventually(async () => /hit/.test((await get("/cached/whole")).cacheStatus)), "a whole body is stored");
  assert.equal(up.hits["/cached/whole"], 1);

  for (const path of ["/cached/short", "/cached/chunked"]) {
    const first = await get(path);
    assert.notEqual(first.body, "0123456789".padEnd(1000, "x"), path);
    // Give a (wrongly) committed cache write every chance to land before looking.
    await new Promise((r) => setTimeout(r, 300));
    const second = await get(path);
    assert.doesNotMatch(second.cacheStatus ?? "", /hit/, `${path}: ${second.cacheStatus}`);
    assert.equal(up.hits[path], 2, `${path} went to the upstream again`);
  }
});
