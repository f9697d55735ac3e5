// `make bench`: the built gateway served by workerd directly (not wrangler dev, whose proxy
// caps everything near 600 requests/s), beside a minimal JS proxy worker and a JS worker that
// returns a constant, all in one workerd process, against one Node upstream. Prints
// requests/s and latency per scenario and the ratios the project's targets are stated in.
//
// Environment: BENCH_ROUNDS (3), BENCH_DURATION_S (5), BENCH_CONNECTIONS (32),
// BENCH_UNLOADED_REQUESTS (2000: requests per round of the one-at-a-time latency),
// BENCH_ONLY (a regular expression over scenario names), BENCH_HOLD=1 (start everything and
// wait, for probing by hand), BENCH_INSPECTOR=host:port (workerd's inspector, for profiling),
// BENCH_LOGS=1 (show workerd's own output, which the gateway's access lines otherwise flood),
// BENCH_TAIL=1 (a tail worker receives the log lines), BENCH_GC=1 (V8's --trace-gc: each
// collection, printed on workerd's stdout), BENCH_CONFIG_ONLY=1 (write the
// configuration, print its folder and stop).

import { spawn, fork } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, mkdirSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import http from "node:http";
import { workerdBin, median, writeSupportWorkers } from "./workers.mjs";
import autocannon from "autocannon";
import * as jose from "jose";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");

const DURATION_S = Number(process.env.BENCH_DURATION_S || 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const UNLOADED_REQUESTS = Number(process.env.BENCH_UNLOADED_REQUESTS || 2000);
// The rows whose tails the targets compare, timed one request at a time too (see `unloaded`).
const UNLOADED_ROWS = ["JS proxy worker", "gateway: pass-through", "JS worker returning a constant", "gateway: cache hit"];
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 32);
const ONLY = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : null;
const UPSTREAM_PORT = 9310;
// gateway1 and gateway2: two more isolates of the gateway, sharing its RateLimiter objects.
const PORTS = { gateway: 9311, jsproxy: 9312, jsconst: 9313, gateway1: 9314, gateway2: 9315, jsfloor: 9316 };
const upstreamUrl = `http://127.0.0.1:${UPSTREAM_PORT}`;
const gatewayUrl = `http://127.0.0.1:${PORTS.gateway}`;

// ---- tokens, minted by an independent library ------------------------------------------------

const ISSUER = "https://id.bench.test/";
const es = await jose.generateKeyPair("ES256", { extractable: true });
const rs = await jose.generateKeyPair("RS256", { extractable: true, modulusLength: 2048 });
const publicJwk = async (key, kid, alg) => ({ ...(await jose.exportJWK(key)), kid, alg });
const mint = (key, kid, alg) =>
  new jose.SignJWT({ sub: "bench-user", scope: "bench" })
    .setProtectedHeader({ alg, kid })
    .setIssuer(ISSUER)
    .setAudience("bench")
    .setExpirationTime("2h")
    .sign(key);
const tokens = { ES256: await mint(es.privateKey, "es", "ES256"), RS256: await mint(rs.privateKey, "rs", "RS256") };

// ---- the gateway's configuration, served to it through its KV binding -----------------------

const jwtScheme = async (alg, cache) => ({
  type: "jwt",
  issuer: ISSUER,
  audiences: ["bench"],
  algorithms: [alg],
  keys: [alg === "ES256" ? await publicJwk(es.publicKey, "es", "ES256") : await publicJwk(rs.publicKey, "rs", "RS256")],
  verified_cache_s: cache ? 60 : 0,
});
const huge = { limit: 1000000000, window_s: 1 };
const ACCURACY = { limit: 200, window_s: 10 };
const route = (id, extra = {}) => ({ id, path: `/${id}/{*rest}`, upstream: "bench", rewrite: "/users/{rest}", ...extra });
const routes = {
  version: 1,
  // An admin token, as every production gateway has: it also seals the cache keys.
  settings: { reload_s: 3600, admin: { token_secret: "ADMIN_TOKEN" } },
  upstreams: {
    bench: { targets: [{ url: upstreamUrl }], timeout_ms: 10000 },
    // The canary scenario's other upstream: the same server under another name.
    "bench-canary": { targets: [{ url: upstreamUrl }], timeout_ms: 10000 },
  },
  auth: {
    es: await jwtScheme("ES256", true),
    "es-nocache": await jwtScheme("ES256", false),
    rs: await jwtScheme("RS256", true),
    "rs-nocache": await jwtScheme("RS256", false),
  },
  rate_limits: {
    "by-route": { key: "route", ...huge },
    "by-ip": { key: "ip", ...huge },
    everyone: { key: "global", ...huge },
    accuracy: { key: "route", ...ACCURACY },
  },
  cors: { web: { origins: ["https://app.bench.test"], credentials: true, expose_headers: ["x-request-id"] } },
  routes: [
    route("pass", { auth: "none" }),
    // The same route with its access log and metrics off: what observability costs.
    route("pass-quiet", { auth: "none", observability: { log_sample_rate: 0, metrics: false } }),
    route("pass-log", { auth: "none", observability: { metrics: false } }),
    route("pass-metrics", { auth: "none", observability: { log_sample_rate: 0 } }),
    route("jwt-es", { auth: ["es"] }),
    route("jwt-es-nocache", { auth: ["es-nocache"] }),
    route("jwt-rs", { auth: ["rs"] }),
    route("jwt-rs-nocache", { auth: ["rs-nocache"] }),
    route("rl1", { auth: "none", rate_limits: ["by-route"] }),
    route("rl3", { auth: "none", rate_limits: ["by-route", "by-ip", "everyone"] }),
    route("jwt-rl", { auth: ["es"], rate_limits: ["by-route"] }),
    route("accuracy", { auth: "none", rate_limits: ["accuracy"] }),
    // The upstream states no freshness: the route gives it an hour (`default_ttl_s`).
    route("cached", { auth: "none", cache: { ttl_s: 3600, default_ttl_s: 3600 } }),
    // The same with its access log and metrics off: what observability costs a hit.
    route("cached-quiet", { auth: "none", cache: { ttl_s: 3600, default_ttl_s: 3600 }, observability: { log_sample_rate: 0, metrics: false } }),
    // The same, honouring request directives: a request that carries one (here the harmless
    // `no-transform`) is answered by the Cache API path, never the isolate's hot tier.
    route("cached-api", { auth: "none", cache: { ttl_s: 3600, default_ttl_s: 3600, honor_request_directives: true } }),
    route("cors", { auth: "none", cors: "web" }),
    // Half of the requests to each upstream, drawn per request (one load generator has one
    // address, so sticky-by-IP would send it all one way).
    route("canary", { auth: "none", canary: { upstream: "bench-canary", percent: 50, sticky: "none" } }),
  ],
};

// Observability is on (the defaults: every request logged and counted) on every route but
// pass-quiet. Workers Logs collects console.log output outside the isolate; here workerd
// receives the lines and drops them. BENCH_TAIL=1 also hands every invocation's lines to a tail
// worker in the same process (what a Tail Worker subscription costs, which is far more).

// ---- workerd ---------------------------------------------------------------------------------

const dir = mkdtempSync(join(tmpdir(), "gateway-bench-"));
mkdirSync(join(dir, "do"));
writeFileSync(join(dir, "routes.json"), JSON.stringify(routes));
writeSupportWorkers(dir, upstreamUrl);
// workerd's Cache API talks to a cache service; this one keeps entries in memory (the platform's
// own cache is a network service in every location, so a hit's cost to the worker is the same
// lookup either way).
writeFileSync(
  join(dir, "cache.js"),
  `const entries = new Map();
   function parse(bytes) {
     const text = new TextDecoder("latin1").decode(bytes);
     const split = text.indexOf("\\r\\n\\r\\n");
     const lines = text.slice(0, split).split("\\r\\n");
     const status = Number(lines[0].split(" ")[1]);
     const headers = lines.slice(1).map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()]);
     let body = bytes.slice(split + 4);
     if (headers.some(([k, v]) => k.toLowerCase() === "transfer-encoding" && /chunked/i.test(v))) {
       const out = []; let i = 0; const raw = new TextDecoder("latin1").decode(body);
       for (;;) { const e = raw.indexOf("\\r\\n", i); const n = parseInt(raw.slice(i, e), 16); if (!n) break; out.push(body.slice(e + 2, e + 2 + n)); i = e + 2 + n + 2; }
       const total = out.reduce((a, c) => a + c.length, 0); body = new Uint8Array(total); let o = 0; for (const c of out) { body.set(c, o); o += c.length; }
     }
     return { status, headers: headers.filter(([k]) => !/^(transfer-encoding|content-length)$/i.test(k)), body };
   }
   export default { async fetch(req) {
     const key = req.url;
     if (req.method === "PUT") { entries.set(key, parse(new Uint8Array(await req.arrayBuffer()))); return new Response(null, { status: 204 }); }
     if (req.method === "PURGE") return new Response(null, { status: entries.delete(key) ? 200 : 404 });
     const e = entries.get(key);
     if (!e) return new Response(null, { status: 504, headers: { "cf-cache-status": "MISS" } });
     return new Response(e.body, { status: e.status, headers: [...e.headers, ["cf-cache-status", "HIT"]] });
   } };`,
);
// The metrics dataset: a binding with Analytics Engine's interface that only counts points (the
// platform's own writes are asynchronous and leave the request's path at once).
writeFileSync(join(dir, "metrics.js"), `export default function () { let points = 0; return { writeDataPoint(point) { points += point.blobs.length > 0 ? 1 : 0; } }; }`);
writeFileSync(join(dir, "logs.js"), `let lines = 0; export default { tail(events) { for (const e of events) lines += e.logs.length; } };`);
writeFileSync(join(dir, "jsconst.js"), `export default { fetch() { return new Response('{"id":42,"name":"benchmark user","plan":"pro"}', { headers: { "content-type": "application/json" } }); } };`);
// The platform work the gateway cannot avoid on a pass-through, done by hand in JS with no
// routing or policy: copy the request's headers, drop the hop-by-hop ones, set the forwarding,
// request-id and trace headers (h), bound the exchange by a timeout (t), re-wrap the response to
// add the request id (w), and write one access-log object (l) and one data point (m) of the
// gateway's shape. All of it (/floor/…) is the floor a gateway in this runtime can reach with
// observability on. Under /hit/ it does a cache hit's platform work instead: an answer built
// from a prepared body and Headers (what the hot tier holds), its age, cache-status and
// request-id headers (a), the line and the point. /parts/<letters>/… and /hit-parts/<letters>/…
// do only the named parts, which is how `make bench` prices each one.
writeFileSync(
  join(dir, "jsfloor.js"),
  `const HOP = ["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"];
   const INSPECT = Symbol.for("nodejs.util.inspect.custom");
   const stored = { body: '{"id":42,"name":"benchmark user","plan":"pro"}', headers: new Headers({ "content-type": "application/json" }) };
   let n = 0;
   const observe = (env, parts, req, url, id, started, status, source, cache) => {
     if (parts.includes("l")) {
       const line = JSON.stringify({ type: "access", ts_ms: started, request_id: id, trace_id: id, span_id: "00f067aa0ba902b7",
         parent_span_id: null, route: "floor", method: req.method, host: url.host, path: url.pathname, query: null, status,
         code: null, source, upstream: "bench", target: 0, attempts: 1, latency_ms: Date.now() - started,
         upstream_latency_ms: 0, cache, rate_limit: null, consumer: null, auth_scheme: null, variant: null, config_digest: "0123456789abcdef" });
       const record = JSON.parse(line);
       record[INSPECT] = () => line;
       console.log(record);
     }
     if (parts.includes("m")) {
       env.GATEWAY_METRICS.writeDataPoint({ indexes: ["floor"], blobs: ["floor", req.method, "2xx", String(status), source, "", cache ?? "", "",
         "bench", "0", "", url.host, "", "", "", "0123456789abcdef"], doubles: [status, Date.now() - started, 0, 1, 0, 0, 1] });
     }
   };
   const hit = (env, parts, req, url, id, started) => {
     const out = new Response(stored.body, { status: 200, headers: stored.headers });
     if (parts.includes("a")) {
       out.headers.set("age", "0");
       out.headers.set("cache-status", "edge-gateway; hit; ttl=3600");
       out.headers.set("x-request-id", id);
     }
     observe(env, parts, req, url, id, started, 200, "cache", "hit");
     return out;
   };
   export default { fetch(req, env) {
     const started = Date.now();
     const url = new URL(req.url);
     const id = (++n).toString(16).padStart(32, "0");
     const segments = url.pathname.split("/");
     const [kind, parts, rest] =
       segments[1] === "parts" || segments[1] === "hit-parts"
         ? [segments[1] === "parts" ? "floor" : "hit", segments[2], segments.slice(3).join("/")]
         : [segments[1], segments[1] === "hit" ? "alm" : "htwlm", segments.slice(2).join("/")];
     if (kind === "hit") return hit(env, parts, req, url, id, started);
     let init = req;
     if (parts.includes("h")) {
       const headers = new Headers(req.headers);
       for (const name of HOP) headers.delete(name);
       headers.set("x-forwarded-proto", "http");
       headers.set("x-forwarded-host", url.host);
       headers.set("x-request-id", id);
       headers.set("traceparent", "00-" + id + "-00f067aa0ba902b7-01");
       init = { method: req.method, headers, redirect: "manual" };
     }
     if (parts.includes("t")) init = { method: req.method, headers: init.headers, redirect: "manual", signal: AbortSignal.timeout(30000) };
     return fetch("${upstreamUrl}/users/" + rest + url.search, init).then((r) => {
       let out = r;
       if (parts.includes("w")) {
         out = new Response(r.body, r);
         for (const name of HOP) out.headers.delete(name);
         out.headers.set("x-request-id", id);
       }
       observe(env, parts, req, url, id, started, r.status, "upstream", null);
       return out;
     });
   } };`,
);
// BENCH_BUILD=<dir> serves another build of the gateway (for A/B comparisons by hand).
const build = process.env.BENCH_BUILD || join(root, "build");
// capnp embeds resolve absolute paths against import directories: embed copies instead.
copyFileSync(join(build, "index.js"), join(dir, "index.js"));
copyFileSync(join(build, "index_bg.wasm"), join(dir, "index_bg.wasm"));
writeFileSync(
  join(dir, "bench.capnp"),
  `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
${process.env.BENCH_GC ? '  v8Flags = ["--trace-gc"],\n' : ""}  services = [
    (name = "gateway", worker = (
      modules = [(name = "index.js", esModule = embed "index.js"),
                 (name = "index_bg.wasm", wasm = embed "index_bg.wasm")],
      compatibilityDate = "2026-07-01",
      bindings = [(name = "CONFIG", kvNamespace = "kv"),
                  (name = "RATE_LIMITER", durableObjectNamespace = "RateLimiter"),
                  (name = "GATEWAY_METRICS", wrapped = (moduleName = "bench:metrics")),
                  (name = "ADMIN_TOKEN", text = "bench-admin-token-of-thirty-two-bytes")],
      durableObjectNamespaces = [(className = "RateLimiter", uniqueKey = "gateway-rate-limiter", enableSql = true)],
      durableObjectStorage = (localDisk = "do-storage"),
      cacheApiOutbound = "cache",
${process.env.BENCH_TAIL ? '      tails = ["logs"],\n' : ""}      globalOutbound = "loopback")),
${[1, 2]
  .map(
    (n) => `    (name = "gateway${n}", worker = (
      modules = [(name = "index.js", esModule = embed "index.js"),
                 (name = "index_bg.wasm", wasm = embed "index_bg.wasm")],
      compatibilityDate = "2026-07-01",
      bindings = [(name = "CONFIG", kvNamespace = "kv"),
                  (name = "RATE_LIMITER", durableObjectNamespace = (serviceName = "gateway", className = "RateLimiter")),
                  (name = "GATEWAY_METRICS", wrapped = (moduleName = "bench:metrics")),
                  (name = "ADMIN_TOKEN", text = "bench-admin-token-of-thirty-two-bytes")],
      cacheApiOutbound = "cache",
      globalOutbound = "loopback")),
`,
  )
  .join("")}    (name = "logs", worker = (modules = [(name = "logs.js", esModule = embed "logs.js")],
      compatibilityDate = "2026-07-01")),
    (name = "cache", worker = (modules = [(name = "cache.js", esModule = embed "cache.js")],
      compatibilityDate = "2026-07-01")),
    (name = "jsproxy", worker = (modules = [(name = "jsproxy.js", esModule = embed "jsproxy.js")],
      compatibilityDate = "2026-07-01", globalOutbound = "loopback")),
    (name = "jsfloor", worker = (modules = [(name = "jsfloor.js", esModule = embed "jsfloor.js")],
      compatibilityDate = "2026-07-01", globalOutbound = "loopback",
      bindings = [(name = "GATEWAY_METRICS", wrapped = (moduleName = "bench:metrics"))])),
    (name = "jsconst", worker = (modules = [(name = "jsconst.js", esModule = embed "jsconst.js")],
      compatibilityDate = "2026-07-01")),
    (name = "kv", worker = (modules = [(name = "kv.js", esModule = embed "kv.js")],
      compatibilityDate = "2026-07-01", bindings = [(name = "ROUTES", text = embed "routes.json")])),
    (name = "do-storage", disk = (path = "${join(dir, "do")}", writable = true)),
    (name = "loopback", network = (allow = ["local", "private"])),
  ],
  extensions = [(modules = [(name = "bench:metrics", esModule = embed "metrics.js", internal = true)])],
  sockets = [
    (name = "gateway", address = "127.0.0.1:${PORTS.gateway}", http = (), service = "gateway"),
    (name = "gateway1", address = "127.0.0.1:${PORTS.gateway1}", http = (), service = "gateway1"),
    (name = "gateway2", address = "127.0.0.1:${PORTS.gateway2}", http = (), service = "gateway2"),
    (name = "jsproxy", address = "127.0.0.1:${PORTS.jsproxy}", http = (), service = "jsproxy"),
    (name = "jsconst", address = "127.0.0.1:${PORTS.jsconst}", http = (), service = "jsconst"),
    (name = "jsfloor", address = "127.0.0.1:${PORTS.jsfloor}", http = (), service = "jsfloor"),
  ],
);
`,
);

// BENCH_CONFIG_ONLY=1: print the folder holding bench.capnp and its workers, and stop (for
// instructions.mjs, which serves the same configuration under callgrind).
if (process.env.BENCH_CONFIG_ONLY) {
  writeFileSync(join(dir, "tokens.json"), JSON.stringify(tokens));
  console.log(dir);
  process.exit(0);
}

const children = [];
function cleanup() {
  for (const c of children) c.kill("SIGTERM");
}
process.on("exit", cleanup);
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));

async function waitFor(url) {
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      return r;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} did not come up`);
}

function load(url, seconds, headers = {}) {
  return new Promise((resolve, reject) => {
    autocannon({ url, connections: CONNECTIONS, duration: seconds, pipelining: 1, headers }, (err, res) =>
      err ? reject(err) : resolve(res),
    );
  });
}

/**
 * CPU time workerd has used so far, in ms (user + system, from /proc: Linux's 100 ticks per
 * second), or null elsewhere. Every worker of the bench runs in that one process and the
 * scenarios run one at a time, so the difference over a load is that scenario's cost: unlike
 * requests/s, it does not depend on how the load generator and the upstream share the machine.
 */
function workerdCpuMs() {
  try {
    const fields = readFileSync(`/proc/${workerd.pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

/**
 * Measures every scenario in turn, ROUNDS times, and keeps each one's median: interleaving
 * spreads the machine's drift (other processes, thermal state) over all scenarios alike.
 */
async function measureAll(scenarios) {
  for (const s of scenarios) {
    const probe = await fetch(s.url, { headers: s.headers });
    const text = await probe.text();
    if (!s.check(probe, text)) throw new Error(`${s.name}: unexpected answer ${probe.status} ${text.slice(0, 300)}`);
    await load(s.url, 2, s.headers); // warm-up: JIT, connection pools, isolate start, objects
    await s.warm?.(s.url);
    s.samples = [];
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const s of scenarios) {
      const cpu0 = workerdCpuMs();
      const r = await load(s.url, DURATION_S, s.headers);
      const cpu1 = workerdCpuMs();
      if (r.non2xx || r.errors) throw new Error(`${s.name}: ${r.non2xx} non-2xx answers, ${r.errors} errors under load`);
      const cpu_us = cpu0 === null || !r.requests.total ? null : ((cpu1 - cpu0) * 1000) / r.requests.total;
      s.samples.push({ rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, cpu_us });
    }
  }
  return scenarios.map((s) => {
    const row = {
      name: s.name,
      rps: median(s.samples.map((x) => x.rps)),
      p50_ms: median(s.samples.map((x) => x.p50)),
      p99_ms: median(s.samples.map((x) => x.p99)),
      rounds: s.samples.map((x) => Math.round(x.rps)),
      // workerd's CPU per request; meaningless for the upstream, which runs outside it.
      cpu_us: s.workerd === false || s.samples.some((x) => x.cpu_us === null) ? null : median(s.samples.map((x) => x.cpu_us)),
    };
    const cpu = row.cpu_us === null ? "" : `   workerd CPU ${row.cpu_us.toFixed(0).padStart(4)} µs/req`;
    console.log(
      `  ${row.name.padEnd(40)} ${row.rps.toFixed(0).padStart(7)} req/s   p50 ${String(row.p50_ms).padStart(4)} ms   p99 ${String(row.p99_ms).padStart(4)} ms${cpu}   rounds ${row.rounds.join(" ")}`,
    );
    return row;
  });
}

/**
 * Latency without queueing: `n` requests one at a time over one kept-alive connection, each
 * timed from sending to the last byte of its answer, in µs. Under the closed-loop load above
 * every request waits behind the others in workerd's one thread, so there p99 grows with the
 * CPU per request (Little's law); here it is each request's own time.
 */
async function unloaded(url, headers = {}, n = UNLOADED_REQUESTS) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const once = () =>
    new Promise((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      http
        .get(url, { agent, headers }, (res) => {
          res.on("data", () => {});
          res.on("end", () => resolve(Number(process.hrtime.bigint() - t0) / 1000));
        })
        .on("error", reject);
    });
  for (let i = 0; i < 200; i++) await once();
  const times = [];
  for (let i = 0; i < n; i++) times.push(await once());
  agent.destroy();
  times.sort((a, b) => a - b);
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
  return { p50_us: at(0.5), p99_us: at(0.99) };
}

/** `unloaded` for the rows the targets compare tails of, interleaved over ROUNDS; medians. */
async function unloadedAll(scenarios) {
  const picked = scenarios.filter((s) => UNLOADED_ROWS.includes(s.name));
  const samples = new Map(picked.map((s) => [s.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const s of picked) samples.get(s.name).push(await unloaded(s.url, s.headers));
  }
  return picked.map((s) => {
    const runs = samples.get(s.name);
    const row = { name: s.name, p50_us: median(runs.map((r) => r.p50_us)), p99_us: median(runs.map((r) => r.p99_us)) };
    console.log(`  ${row.name.padEnd(40)} p50 ${row.p50_us.toFixed(0).padStart(5)} µs   p99 ${row.p99_us.toFixed(0).padStart(5)} µs`);
    return row;
  });
}

/**
 * Drives a limited route (ACCURACY: 200 per 10 s, burst 200) at full speed through one isolate,
 * then through three at once (all sharing the route's bucket, each leasing on its own), and
 * compares the requests let through with the most GCRA allows over the elapsed time.
 */
async function accuracy() {
  const out = [];
  for (const ports of [[PORTS.gateway], [PORTS.gateway, PORTS.gateway1, PORTS.gateway2]]) {
    await new Promise((r) => setTimeout(r, ACCURACY.window_s * 1000)); // the bucket refills
    const started = Date.now();
    const runs = await Promise.all(ports.map((p) => load(`http://127.0.0.1:${p}/accuracy/42`, DURATION_S)));
    const elapsed_s = (Date.now() - started) / 1000;
    const allowed = runs.reduce((n, r) => n + r["2xx"], 0);
    const refused = runs.reduce((n, r) => n + r.non2xx, 0);
    const total = runs.reduce((n, r) => n + r.requests.total, 0);
    const interval_s = ACCURACY.window_s / ACCURACY.limit;
    const most = ACCURACY.limit + Math.floor(elapsed_s / interval_s);
    console.log(
      `  accuracy, ${ports.length} isolate(s): ${total} requests in ${elapsed_s.toFixed(2)} s against ${ACCURACY.limit} per ${ACCURACY.window_s} s: ${allowed} allowed, ${refused} refused; GCRA allows at most ${most}`,
    );
    out.push({ isolates: ports.length, requests: total, allowed, refused, elapsed_s, most_allowed: most });
  }
  return out;
}

// ---- run -------------------------------------------------------------------------------------

const upstream = fork(join(here, "upstream.mjs"), [String(UPSTREAM_PORT)], { stdio: "inherit" });
children.push(upstream);
await new Promise((r) => upstream.once("message", r));
const inspector = process.env.BENCH_INSPECTOR ? [`--inspector-addr=${process.env.BENCH_INSPECTOR}`] : [];
const workerd = spawn(workerdBin, ["serve", join(dir, "bench.capnp"), ...inspector], {
  stdio: ["ignore", process.env.BENCH_GC ? "inherit" : "ignore", process.env.BENCH_LOGS ? "inherit" : "ignore"],
});
children.push(workerd);
await waitFor(`http://127.0.0.1:${PORTS.jsconst}/`);

if (process.env.BENCH_HOLD) {
  console.log(`holding: upstream ${upstreamUrl}, gateway :${PORTS.gateway}, JS proxy :${PORTS.jsproxy}, JS constant :${PORTS.jsconst}`);
  console.log(`tokens: ES256 ${tokens.ES256}\n        RS256 ${tokens.RS256}`);
  await new Promise(() => {});
}

const wasm = readFileSync(join(build, "index_bg.wasm"));
const wasmKiB = { raw: wasm.length / 1024, gzip: gzipSync(wasm, { level: 9 }).length / 1024 };
console.log(`wasm module: ${wasmKiB.raw.toFixed(0)} KiB raw, ${wasmKiB.gzip.toFixed(0)} KiB gzip (target <= 512 KiB gzip)`);
console.log(`load: autocannon, ${CONNECTIONS} connections; each scenario ${ROUNDS} x ${DURATION_S} s, interleaved, after a 2 s warm-up; medians\n`);

const isUser = (r, t) => r.status === 200 && t.includes("benchmark user");
const bearer = (alg) => ({ authorization: `Bearer ${tokens[alg]}` });
const all = [
  { name: "upstream direct", url: `${upstreamUrl}/users/42`, workerd: false },
  { name: "JS worker returning a constant", url: `http://127.0.0.1:${PORTS.jsconst}/` },
  { name: "JS proxy worker", url: `http://127.0.0.1:${PORTS.jsproxy}/pass/42` },
  { name: "JS worker doing the gateway's platform work", url: `http://127.0.0.1:${PORTS.jsfloor}/floor/42` },
  // The floor's parts, priced one by one against the JS proxy (see jsfloor.js).
  ...[
    ["h", "request headers copied and edited"],
    ["ht", "the same and a timeout"],
    ["htw", "the same and the response re-wrapped"],
    ["htwl", "the same and the access-log object"],
    ["l", "only the access-log object"],
    ["wl", "only the re-wrap and the access-log object"],
  ].map(([parts, what]) => ({ name: `floor part ${parts}: JS proxy with ${what}`, url: `http://127.0.0.1:${PORTS.jsfloor}/parts/${parts}/42` })),
  { name: "gateway: pass-through", url: `${gatewayUrl}/pass/42` },
  { name: "gateway: pass-through, no log or metrics", url: `${gatewayUrl}/pass-quiet/42` },
  { name: "gateway: pass-through, log only", url: `${gatewayUrl}/pass-log/42` },
  { name: "gateway: pass-through, metrics only", url: `${gatewayUrl}/pass-metrics/42` },
  { name: "gateway: JWT ES256", url: `${gatewayUrl}/jwt-es/42`, headers: bearer("ES256") },
  { name: "gateway: JWT ES256, no token cache", url: `${gatewayUrl}/jwt-es-nocache/42`, headers: bearer("ES256") },
  { name: "gateway: JWT RS256", url: `${gatewayUrl}/jwt-rs/42`, headers: bearer("RS256") },
  { name: "gateway: JWT RS256, no token cache", url: `${gatewayUrl}/jwt-rs-nocache/42`, headers: bearer("RS256") },
  { name: "gateway: 1 rate limit", url: `${gatewayUrl}/rl1/42` },
  { name: "gateway: 3 rate limits", url: `${gatewayUrl}/rl3/42` },
  { name: "gateway: JWT ES256 + 1 rate limit", url: `${gatewayUrl}/jwt-rl/42`, headers: bearer("ES256") },
  { name: "gateway: canary route", url: `${gatewayUrl}/canary/42` },
  {
    name: "gateway: cache hit",
    url: `${gatewayUrl}/cached/42`,
    // After the warm-up every answer must come from the cache, or this row measures misses.
    warm: async (url) => {
      const r = await fetch(url);
      await r.arrayBuffer();
      if (!/hit/.test(r.headers.get("cache-status") ?? "")) throw new Error(`cache hit: not a hit: ${r.headers.get("cache-status")}`);
    },
  },
  {
    name: "gateway: cache hit, no log or metrics",
    url: `${gatewayUrl}/cached-quiet/42`,
    warm: async (url) => {
      const r = await fetch(url);
      await r.arrayBuffer();
      if (!/hit/.test(r.headers.get("cache-status") ?? "")) throw new Error(`quiet cache hit: not a hit: ${r.headers.get("cache-status")}`);
    },
  },
  { name: "JS worker doing a cache hit's platform work", url: `http://127.0.0.1:${PORTS.jsfloor}/hit/42` },
  ...[
    ["", "an answer from a prepared body and Headers"],
    ["a", "the same and its three headers"],
    ["al", "the same and the access-log object"],
  ].map(([parts, what]) => ({ name: `hit floor part ${parts || "-"}: ${what}`, url: `http://127.0.0.1:${PORTS.jsfloor}/hit-parts/${parts || "-"}/42` })),

  {
    name: "gateway: cache hit from the Cache API",
    url: `${gatewayUrl}/cached-api/42`,
    headers: { "cache-control": "no-transform" },
    warm: async (url) => {
      const r = await fetch(url, { headers: { "cache-control": "no-transform" } });
      await r.arrayBuffer();
      if (!/hit/.test(r.headers.get("cache-status") ?? "")) throw new Error(`Cache API hit: not a hit: ${r.headers.get("cache-status")}`);
    },
  },
  {
    name: "gateway: CORS route",
    url: `${gatewayUrl}/cors/42`,
    headers: { origin: "https://app.bench.test" },
    // An actual request from the allowed origin: the answer must carry the CORS headers.
    check: (r, t) => isUser(r, t) && r.headers.get("access-control-allow-origin") === "https://app.bench.test",
  },
].map((s) => ({ check: isUser, ...s }));
const scenarios = all.filter((s) => !ONLY || ONLY.test(s.name));
const rows = await measureAll(scenarios);
console.log(`\nunloaded latency: one request at a time, ${UNLOADED_REQUESTS} per round after 200 unrecorded, ${ROUNDS} rounds interleaved; medians`);
const unloadedRows = await unloadedAll(scenarios);
const limits = !ONLY || ONLY.test("accuracy") ? await accuracy() : null;

const by = Object.fromEntries(rows.map((r) => [r.name, r]));
// Beside the requests/s ratio, the same ratio of workerd CPU per request (b's over a's): what
// the throughput ratio would be if workerd alone limited both.
const ratioLine = (a, b, note = "") => {
  if (!by[a] || !by[b]) return;
  const cpu = by[a].cpu_us && by[b].cpu_us ? `; by workerd CPU per request ${(by[b].cpu_us / by[a].cpu_us).toFixed(2)}x` : "";
  console.log(`  ${a} / ${b}: ${(by[a].rps / by[b].rps).toFixed(2)}x${cpu}${note}`);
};
console.log("\nratios (same run):");
ratioLine("gateway: pass-through", "JS proxy worker", "  (target >= 0.9)");
ratioLine("JS worker doing the gateway's platform work", "JS proxy worker", "  (the floor for a gateway here)");
ratioLine("gateway: pass-through", "JS worker doing the gateway's platform work");
for (const name of Object.keys(by).filter((n) => n.startsWith("floor part "))) ratioLine(name, "JS proxy worker");
for (const name of Object.keys(by).filter((n) => n.startsWith("hit floor part "))) ratioLine(name, "JS worker returning a constant");

ratioLine("gateway: pass-through", "upstream direct");
ratioLine("gateway: pass-through", "gateway: pass-through, no log or metrics", "  (what the access log and metrics cost)");
ratioLine("gateway: cache hit", "JS worker returning a constant", "  (target >= 0.9)");
ratioLine("JS worker doing a cache hit's platform work", "JS worker returning a constant", "  (the floor for a hit here)");
ratioLine("gateway: cache hit", "JS worker doing a cache hit's platform work");
ratioLine("gateway: cache hit", "gateway: cache hit, no log or metrics", "  (what the access log and metrics cost a hit)");
ratioLine("gateway: cache hit, no log or metrics", "JS worker returning a constant");
ratioLine("gateway: cache hit from the Cache API", "JS worker returning a constant");
for (const name of Object.keys(by).filter((n) => n.startsWith("gateway: ") && n !== "gateway: pass-through")) {
  ratioLine(name, "gateway: pass-through", name.includes("JWT ES256 + 1 rate limit") ? "  (target >= 0.8, i.e. <= 25% cost)" : "");
}
mkdirSync(join(root, "bench-results"), { recursive: true });
writeFileSync(
  join(root, "bench-results", "latest.json"),
  JSON.stringify({ at: new Date().toISOString(), wasm_kib: wasmKiB, rows, unloaded: unloadedRows, accuracy: limits }, null, 2),
);
cleanup();
process.exit(0);
