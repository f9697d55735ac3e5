// Shared set-up for the worker tests: the built gateway in workerd (through Miniflare, with
// real KV) and real HTTP upstreams on 127.0.0.1.

import { Miniflare } from "miniflare";
import * as jose from "jose";
import http from "node:http";
import net from "node:net";
import { fileURLToPath } from "node:url";

// GATEWAY_BUILD runs the tests against another build (for instance an older one, to see a
// test fail before its fix).
const BUILD = process.env.GATEWAY_BUILD ?? fileURLToPath(new URL("../build/", import.meta.url));

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

/**
 * Signs of internals in an error body: the runtime's exception text (`Error:`, `TypeError`),
 * stack frames, loopback or private addresses.
 */
export const INTERNALS = /Error:|\b[A-Z][A-Za-z]*Error\b|^\s+at .+:\d+|\(.+:\d+:\d+\)|127\.0\.0\.1|\blocalhost\b|\[::1\]|\b10\.\d+\.\d+\.\d+\b|\b192\.168\.\d+\.\d+\b/m;

/**
 * What a response reveals that it must not: every problem+json body (the gateway's own errors)
 * and every 5xx body carrying a stack trace (the runtime's error page) is checked against
 * INTERNALS. Returns a description of the leak, or null.
 */
export function leakIn(status, contentType, body) {
  const problem = (contentType ?? "").startsWith("application/problem+json");
  const trace = status >= 500 && /^\s+at .+:\d+/m.test(body);
  if ((problem || trace) && INTERNALS.test(body)) return `${status} ${contentType}: ${body.slice(0, 300)}`;
  return null;
}

/** A minimal valid document around `routes` and `upstreams`. */
export function config({ upstreams, routes, settings = {}, ...rest }) {
  return { version: 1, settings: { reload_s: 1, ...settings }, upstreams, routes, ...rest };
}

/**
 * Miniflare options of the built gateway: a CONFIG KV namespace, the RateLimiter Durable Object
 * (SQLite-backed as in wrangler.toml; `limiter: false` omits it, to test an unavailable counter
 * store), `durableObjects` added to it, `persist` keeping KV and object state in that folder, and
 * `build` the folder of another build than GATEWAY_BUILD's.
 */
export function gatewayOptions({ bindings = {}, serviceBindings, limiter = true, durableObjects = {}, persist, build = BUILD } = {}) {
  return {
    modules: [
      { type: "ESModule", path: build + "index.js" },
      { type: "CompiledWasm", path: build + "index_bg.wasm" },
    ],
    modulesRoot: build,
    compatibilityDate: "2026-07-01",
    kvNamespaces: ["CONFIG"],
    bindings,
    serviceBindings,
    // As wrangler.toml declares them: the limiter's buckets and the lock every change of the
    // document goes through (pushes, rollbacks and the cache-generation bump).
    durableObjects: {
      ...(limiter ? { RATE_LIMITER: { className: "RateLimiter", useSQLite: true } } : {}),
      CONFIG_LOCK: { className: "ConfigLock", useSQLite: true },
      ...durableObjects,
    },
    durableObjectsPersist: persist ? `${persist}/do` : undefined,
    kvPersist: persist ? `${persist}/kv` : undefined,
  };
}

/**
 * The handle every test drives a gateway through, once `mf` is started with `routes` (a
 * document object or raw text; omitted = empty KV, so the embedded routes.json serves). Every
 * error body the gateway generates is scanned for internals (`leakIn`); closing the gateway
 * fails if one leaked.
 */
async function gatewayHandle(mf, routes, extra = {}) {
  const kv = await mf.getKVNamespace("CONFIG");
  if (routes !== undefined) await kv.put("routes", typeof routes === "string" ? routes : JSON.stringify(routes));
  const url = (await mf.ready).toString().replace(/\/$/, "");
  let closing;
  const leaks = [];
  const scan = async (response) => {
    const type = response.headers.get("content-type");
    if (response.status < 400 || !(type?.startsWith("application/problem+json") || response.status >= 500)) return;
    const leak = leakIn(response.status, type, await response.clone().text().catch(() => ""));
    if (leak) leaks.push(leak);
  };
  return {
    mf,
    kv,
    url,
    leaks,
    ...extra,
    /** A request through Miniflare's dispatcher (an undici fetch). */
    async fetch(path, init) {
      const response = await mf.dispatchFetch(new URL(path, "http://gateway.test"), init);
      await scan(response);
      return response;
    },
    /**
     * A request sent as written, over a raw HTTP/1.1 connection: for paths a URL parser would
     * normalise and headers fetch() refuses to send. Resolves to { status, headers, body }.
     */
    async raw(path, { method = "GET", headers = {}, body } = {}) {
      const r = await rawRequest(url, path, { method, headers, body });
      const leak = leakIn(r.status, r.headers["content-type"], r.body);
      if (leak) leaks.push(leak);
      return r;
    },
    async setRoutes(doc) {
      await kv.put("routes", typeof doc === "string" ? doc : JSON.stringify(doc));
    },
    close() {
      closing ??= mf.dispose().then(() => {
        if (leaks.length) throw new Error(`gateway error bodies revealed internals:\n${leaks.join("\n")}`);
      });
      return closing;
    },
  };
}

/** Starts the built gateway (options as in `gatewayOptions`) with `routes` in its KV. */
export async function startGateway({ routes, ...options } = {}) {
  return gatewayHandle(new Miniflare(gatewayOptions(options)), routes);
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

// ---- capturing what a worker writes: log lines (tail events) and Analytics Engine points ----

/** Name of the tail consumer worker that collects the observed worker's invocations. */
export const TAIL_WORKER = "observe-tail";
/** Name of the worker implementing the recording Analytics Engine binding. */
export const METRICS_WORKER = "observe-analytics-engine";
/** Marks a data point among the log entries, so logs and points can be told apart. */
export const DATA_POINT_MARK = "__observe_data_point";

// A tail consumer: keeps every trace item it is sent, as plain data (tail items are runtime
// objects whose members are getters, which JSON.stringify would drop), and hands them out
// over fetch: GET lists them, DELETE forgets them.
const TAIL_SCRIPT = `
let items = [];
const plain = (item) => ({
  scriptName: item.scriptName,
  outcome: item.outcome,
  request: item.event && item.event.request
    ? { url: item.event.request.url, method: item.event.request.method }
    : null,
  logs: (item.logs || []).map((l) => ({ level: l.level, message: l.message, timestamp: l.timestamp })),
  exceptions: (item.exceptions || []).map((e) => ({ name: e.name, message: e.message })),
});
export default {
  tail(events) {
    for (const item of events) items.push(plain(item));
  },
  async fetch(request) {
    if (request.method === "DELETE") {
      items = [];
      return new Response(null, { status: 204 });
    }
    return Response.json(items);
  },
};
`;

// The recording Analytics Engine binding, a wrapped binding that runs inside the observed
// worker: writeDataPoint checks the point against Analytics Engine's limits (throwing as a
// refused point would), then writes it as a marked log entry of the same invocation, so the
// tail consumer receives it with the request's logs. With FAIL it always throws, like a broken
// binding. Miniflare's own local binding records nothing, so tests use this one.
const METRICS_SCRIPT = `
const MARK = ${JSON.stringify(DATA_POINT_MARK)};
const bytes = (s) => new TextEncoder().encode(s).length;
function check(point) {
  if (point === null || typeof point !== "object") throw new TypeError("writeDataPoint: expected an object");
  const { indexes = [], blobs = [], doubles = [] } = point;
  if (!Array.isArray(indexes) || indexes.length > 1) throw new TypeError("writeDataPoint: at most one index");
  for (const i of indexes) {
    if (typeof i !== "string" || bytes(i) > 96) throw new TypeError("writeDataPoint: an index is a string of at most 96 bytes");
  }
  if (!Array.isArray(blobs) || blobs.length > 20) throw new TypeError("writeDataPoint: at most 20 blobs");
  let total = 0;
  for (const b of blobs) {
    if (b !== null && typeof b !== "string") throw new TypeError("writeDataPoint: blobs are strings or null");
    total += b === null ? 0 : bytes(b);
  }
  if (total > 16384) throw new TypeError("writeDataPoint: blobs exceed 16 KB in total");
  if (!Array.isArray(doubles) || doubles.length > 20) throw new TypeError("writeDataPoint: at most 20 doubles");
  for (const d of doubles) {
    if (typeof d !== "number" || !Number.isFinite(d)) throw new TypeError("writeDataPoint: doubles are finite numbers");
  }
}
export default function (env) {
  return {
    writeDataPoint(point) {
      if (env.FAIL) throw new Error("Analytics Engine binding unavailable (test)");
      check(point);
      console.log({ [MARK]: JSON.parse(JSON.stringify(point)) });
    },
  };
}
`;

/**
 * Miniflare `workers` for observing `main` (the options of the worker under test, which
 * becomes the first worker): it gets the tail consumer, and the recording Analytics Engine
 * binding as `metricsBinding` (none when null; `metricsFail` makes it throw on every write).
 */
export function observedWorkers(main, { metricsBinding = "GATEWAY_METRICS", metricsFail = false } = {}) {
  const wrappedBindings = { ...(main.wrappedBindings ?? {}) };
  if (metricsBinding) {
    wrappedBindings[metricsBinding] = { scriptName: METRICS_WORKER, bindings: { FAIL: metricsFail } };
  }
  return [
    { name: "observed", ...main, tails: [...(main.tails ?? []), TAIL_WORKER], wrappedBindings },
    { name: TAIL_WORKER, modules: true, script: TAIL_SCRIPT, compatibilityDate: "2026-07-01" },
    { name: METRICS_WORKER, modules: true, script: METRICS_SCRIPT },
  ];
}

/**
 * What the observed worker of `mf` (built with {@link observedWorkers}) wrote. Tail events
 * arrive after an invocation ends, so the readers poll until `until(result)` holds (or
 * `timeoutMs` passes) and return what they have then.
 */
export function capture(mf) {
  const tail = () => mf.getWorker(TAIL_WORKER);
  const items = async () => (await (await tail()).fetch("http://tail/items")).json();
  const isPoint = (m) => m.length === 1 && m[0] !== null && typeof m[0] === "object" && DATA_POINT_MARK in m[0];
  const read = async (pick, until, timeoutMs) => {
    let last = [];
    await eventually(
      async () => {
        last = pick(await items());
        return until(last);
      },
      { timeoutMs, intervalMs: 50 },
    );
    return last;
  };
  const entries = (all) => all.flatMap((i) => i.logs.map((l) => ({ ...l, request: i.request })));
  return {
    /** The raw trace items: one per invocation ({ scriptName, outcome, request, logs, exceptions }). */
    items: ({ until = (x) => x.length > 0, timeoutMs = 3000 } = {}) => read((all) => all, until, timeoutMs),
    /** Log entries other than data points: { level, message: [logged values], timestamp, request }. */
    logs: ({ until = (x) => x.length > 0, timeoutMs = 3000 } = {}) =>
      read((all) => entries(all).filter((l) => !isPoint(l.message)), until, timeoutMs),
    /** The objects logged as the only argument of console.log whose `type` is `type` (e.g. "access"). */
    lines: (type, { until = (x) => x.length > 0, timeoutMs = 3000 } = {}) =>
      read(
        (all) =>
          entries(all)
            .filter((l) => l.level === "log" && l.message.length === 1 && l.message[0]?.type === type)
            .map((l) => l.message[0]),
        until,
        timeoutMs,
      ),
    /** Data points written to the recording binding, in order: { indexes, blobs, doubles }. */
    dataPoints: ({ until = (x) => x.length > 0, timeoutMs = 3000 } = {}) =>
      read((all) => entries(all).filter((l) => isPoint(l.message)).map((l) => l.message[0][DATA_POINT_MARK]), until, timeoutMs),
    /** Forgets everything captured so far. */
    async clear() {
      await (await tail()).fetch("http://tail/items", { method: "DELETE" });
    },
  };
}

/**
 * {@link startGateway} with the gateway observed: the same handle plus `capture` (see
 * {@link capture}). `metricsBinding` / `metricsFail` as in {@link observedWorkers}.
 */
export async function startObservedGateway({
  routes,
  metricsBinding = "GATEWAY_METRICS",
  metricsFail = false,
  ...options
} = {}) {
  const gateway = { name: "gateway", ...gatewayOptions(options) };
  const mf = new Miniflare({ workers: observedWorkers(gateway, { metricsBinding, metricsFail }) });
  return gatewayHandle(mf, routes, { capture: capture(mf) });
}

/**
 * Like startGateway (which has the ConfigLock Durable Object that serialises configuration pushes),
 * listening on a port of 127.0.0.1 (`url`) so that outside clients such as gatewayctl can
 * reach it. `persist` keeps KV and Durable Object state in that folder across restarts.
 */
export async function startControlGateway({ routes, ...options } = {}) {
  const mf = new Miniflare({
    ...gatewayOptions(options),
    host: "127.0.0.1",
    port: 0,
  });
  return gatewayHandle(mf, routes);
}

/**
 * `count` copies of the built gateway, each its own worker (its own isolate), sharing one
 * CONFIG namespace and one RateLimiter namespace (owned by the first): several isolates in
 * front of the same buckets. Resolves to { workers: [{ fetch(path, init) }], close() }.
 */
export async function startGatewayIsolates({ routes, count = 3 }) {
  const base = gatewayOptions({});
  const workers = Array.from({ length: count }, (_, i) => ({
    ...base,
    name: `gateway-${i}`,
    kvNamespaces: { CONFIG: "shared-config" },
    durableObjects: {
      RATE_LIMITER: i === 0 ? { className: "RateLimiter", useSQLite: true } : { className: "RateLimiter", scriptName: "gateway-0", useSQLite: true },
    },
  }));
  const mf = new Miniflare({ workers });
  await mf.ready;
  const kv = await mf.getKVNamespace("CONFIG", "gateway-0");
  await kv.put("routes", JSON.stringify(routes));
  const handles = await Promise.all(
    workers.map(async (w) => {
      const worker = await mf.getWorker(w.name);
      return { fetch: (path, init) => worker.fetch(new URL(path, "http://gateway.test"), init) };
    }),
  );
  return { workers: handles, close: () => mf.dispose() };
}

/**
 * An upstream whose answer per request is `behaviour(req, n, record)` → { status, headers,
 * body } (`n` counts the requests to that path so far): `count(path)` and `counts` say how
 * often each path was asked, `seen(path)` lists the requests it received there.
 */
export async function countingUpstream(behaviour) {
  const counts = {};
  const up = await startUpstream((req, res, record) => {
    const path = new URL(req.url, "http://x").pathname;
    counts[path] = (counts[path] || 0) + 1;
    const { status = 200, headers = {}, body = "" } = behaviour(req, counts[path], record) || {};
    res.writeHead(status, headers);
    res.end(body);
  });
  const seen = (path) => up.requests.filter((r) => new URL(r.url, "http://x").pathname === path);
  return Object.assign(up, { counts, count: (p) => counts[p] || 0, seen });
}

/**
 * A TCP server on 127.0.0.1 that reads each request head and hands the socket, the request
 * path and how many requests that path has had (this one included) to `answer`, which writes
 * whatever bytes it likes. `hits` counts requests per path.
 */
export async function rawUpstream(answer) {
  const sockets = new Set();
  const hits = {};
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let head = "";
    socket.on("data", function onData(chunk) {
      head += chunk.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      socket.off("data", onData);
      const path = head.split(" ")[1];
      hits[path] = (hits[path] ?? 0) + 1;
      answer(socket, path, hits[path]);
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    hits,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
