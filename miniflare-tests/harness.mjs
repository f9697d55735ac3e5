// Shared set-up for the worker tests: the built gateway in workerd (through Miniflare, with
// real KV) and real HTTP upstreams on 127.0.0.1.

import { Miniflare } from "miniflare";
import * as jose from "jose";
import http from "node:http";
import { fileURLToPath } from "node:url";

const BUILD = fileURLToPath(new URL("../build/", import.meta.url));

/**
 * Starts an HTTP server on 127.0.0.1. Every request is recorded (method, url, headers, body
 * text) before `handler(req, res, record)` answers it; the default handler echoes the record
 * as JSON.
 */
export async function startUpstream(handler = echo, { port = 0, readBody = true } = {}) {
  const requests = [];
  const sockets = new Set();
  const server = http.createServer(async (req, res) => {
    const record = { method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders };
    requests.push(record);
    if (readBody) {
      const chunks = [];
      try {
        for await (const c of req) chunks.push(c);
        record.body = Buffer.concat(chunks).toString();
      } catch {
        record.aborted = true;
        return;
      }
    }
    try {
      await handler(req, res, record);
    } catch (e) {
      res.statusCode = 500;
      res.end(String(e));
    }
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  const actualPort = server.address().port;
  return {
    port: actualPort,
    url: `http://127.0.0.1:${actualPort}`,
    requests,
    server,
    async close() {
      for (const s of sockets) s.destroy();
      if (server.listening) await new Promise((r) => server.close(r));
    },
  };
}

export function echo(req, res, record) {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify(record));
}

/** A port nothing listens on (bound, then released). */
export async function closedPort() {
  const s = http.createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A minimal valid document around `routes` and `upstreams`. */
export function config({ upstreams, routes, settings = {}, ...rest }) {
  return { version: 1, settings: { reload_s: 1, ...settings }, upstreams, routes, ...rest };
}

/**
 * Starts the built worker with a CONFIG KV namespace holding `routes` (a document object or
 * raw text; omitted = empty KV, so the embedded routes.json serves) and the RateLimiter
 * Durable Object. `persist` keeps KV and Durable Object state in that folder across restarts.
 */
export async function startGateway({ routes, bindings = {}, serviceBindings, limiter = true, persist } = {}) {
  const mf = new Miniflare({
    modules: [
      { type: "ESModule", path: BUILD + "index.js" },
      { type: "CompiledWasm", path: BUILD + "index_bg.wasm" },
    ],
    modulesRoot: BUILD,
    compatibilityDate: "2026-07-01",
    kvNamespaces: ["CONFIG"],
    bindings,
    serviceBindings,
    // The rate limiter's Durable Object, SQLite-backed as in wrangler.toml (omit it to test
    // what happens when the counter store is unavailable).
    durableObjects: limiter ? { RATE_LIMITER: { className: "RateLimiter", useSQLite: true } } : {},
    durableObjectsPersist: persist ? `${persist}/do` : undefined,
    kvPersist: persist ? `${persist}/kv` : undefined,
  });
  const kv = await mf.getKVNamespace("CONFIG");
  if (routes !== undefined) await kv.put("routes", typeof routes === "string" ? routes : JSON.stringify(routes));
  const url = await mf.ready;
  let closing;
  return {
    mf,
    kv,
    url,
    /** A request through Miniflare's dispatcher (an undici fetch). */
    fetch(path, init) {
      return mf.dispatchFetch(new URL(path, "http://gateway.test"), init);
    },
    /**
     * A request sent as written, over a raw HTTP/1.1 connection: for paths a URL parser would
     * normalise and headers fetch() refuses to send. Resolves to { status, headers, body }.
     */
    raw(path, { method = "GET", headers = {}, body } = {}) {
      return rawRequest(url, path, { method, headers, body });
    },
    async setRoutes(doc) {
      await kv.put("routes", typeof doc === "string" ? doc : JSON.stringify(doc));
    },
    close() {
      closing ??= mf.dispose();
      return closing;
    },
  };
}

export function rawRequest(base, path, { method = "GET", headers = {}, body } = {}) {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, method, path, headers, agent: false },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function eventually(check, { timeoutMs = 5000, intervalMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last) return last;
    await sleep(intervalMs);
  }
  return last;
}

/**
 * An HS256 token minted by jose (an independent JOSE library) for the tests' HMAC schemes:
 * issuer https://id.test/, audience "api", five minutes; `sub` left out when null.
 */
export function hs256Token(secret, sub) {
  return new jose.SignJWT(sub === null ? {} : { sub })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuer("https://id.test/")
    .setAudience("api")
    .setExpirationTime("5m")
    .sign(new TextEncoder().encode(secret));
}

/**
 * Like startGateway, with the ConfigLock Durable Object that serialises configuration pushes,
 * listening on a port of 127.0.0.1 (`url`) so that outside clients such as gatewayctl can
 * reach it. `persist` keeps KV and Durable Object state in that folder across restarts.
 */
export async function startControlGateway({ routes, bindings = {}, persist } = {}) {
  const mf = new Miniflare({
    modules: [
      { type: "ESModule", path: BUILD + "index.js" },
      { type: "CompiledWasm", path: BUILD + "index_bg.wasm" },
    ],
    modulesRoot: BUILD,
    compatibilityDate: "2026-07-01",
    host: "127.0.0.1",
    port: 0,
    kvNamespaces: ["CONFIG"],
    bindings,
    durableObjects: {
      RATE_LIMITER: { className: "RateLimiter", useSQLite: true },
      CONFIG_LOCK: { className: "ConfigLock", useSQLite: true },
    },
    durableObjectsPersist: persist ? `${persist}/do` : undefined,
    kvPersist: persist ? `${persist}/kv` : undefined,
  });
  const kv = await mf.getKVNamespace("CONFIG");
  if (routes !== undefined) await kv.put("routes", typeof routes === "string" ? routes : JSON.stringify(routes));
  const url = (await mf.ready).toString().replace(/\/$/, "");
  let closing;
  return {
    mf,
    kv,
    url,
    fetch(path, init) {
      return mf.dispatchFetch(new URL(path, "http://gateway.test"), init);
    },
    close() {
      closing ??= mf.dispose();
      return closing;
    },
  };
}
