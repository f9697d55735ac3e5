// `make bench`, second part: what a fresh isolate costs. Each sample starts its own workerd
// process and times the first answer, so nothing is warm:
//
// * cold start: spawn → first answer of the gateway (module compile and instantiation, the
//   configuration read from KV and compiled, the request forwarded) vs a JS proxy worker;
// * compile: the same with documents of 5,000, 20,000 and 50,000 routes (one host each): the
//   difference to the small document is the time to validate and compile the table.
//
// Medians of BENCH_COLD_SAMPLES (7) samples, configurations interleaved; the first answer's own duration is reported too.
//
// * cold code: how much of the Wasm module the gateway's first request runs (`coldcode.mjs`),
//   which V8 compiles function by function on first call; from a build that keeps the name
//   section (KEEP_WASM_NAMES=1), the BENCH_COLD_LIST (40) largest of those functions by name.

import { spawn, fork } from "node:child_process";
import { mkdtempSync, writeFileSync, copyFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { workerdBin, median, writeSupportWorkers } from "./workers.mjs";
import { coldCode } from "./coldcode.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const SAMPLES = Number(process.env.BENCH_COLD_SAMPLES || 7);
const UPSTREAM_PORT = 9330;
const PORT = 9331;
const upstreamUrl = `http://127.0.0.1:${UPSTREAM_PORT}`;

const dir = mkdtempSync(join(tmpdir(), "gateway-startup-"));
copyFileSync(join(root, "build", "index.js"), join(dir, "index.js"));
copyFileSync(join(root, "build", "index_bg.wasm"), join(dir, "index_bg.wasm"));
writeSupportWorkers(dir, upstreamUrl);
// The same proxy with observability on, as every other scenario has it: one access-log object
// per request. The runtime's first console.log in an isolate sets up its formatting, which a
// worker that logs pays on its first request.
writeFileSync(
  join(dir, "jsproxylog.js"),
  `export default { fetch(req) {
     const u = new URL(req.url);
     console.log({ type: "access", method: req.method, path: u.pathname, status: 200 });
     return fetch("${upstreamUrl}/users" + u.pathname.slice("/pass".length) + u.search, req);
   } };`,
);

/** A document of `n` routes, each on its own host, plus the route the samples request. */
function routes(n) {
  const list = [{ id: "pass", path: "/pass/{*rest}", upstream: "bench", rewrite: "/users/{rest}", auth: "none" }];
  for (let i = 0; i < n; i++) list.push({ id: `r${i}`, host: `t${i}.example.com`, path: `/svc${i}/{*rest}`, upstream: "bench", auth: "none" });
  return JSON.stringify({ version: 1, settings: { reload_s: 3600 }, upstreams: { bench: { targets: [{ url: upstreamUrl }] } }, routes: list });
}

function capnp(name, docFile, jsModule = "jsproxy.js") {
  const gateway = `(name = "main", worker = (
      modules = [(name = "index.js", esModule = embed "index.js"), (name = "index_bg.wasm", wasm = embed "index_bg.wasm")],
      compatibilityDate = "2026-07-01",
      bindings = [(name = "CONFIG", kvNamespace = "kv"), (name = "RATE_LIMITER", durableObjectNamespace = "RateLimiter")],
      durableObjectNamespaces = [(className = "RateLimiter", uniqueKey = "startup-rate-limiter", enableSql = true)],
      durableObjectStorage = (inMemory = void),
      globalOutbound = "loopback")),
    (name = "kv", worker = (modules = [(name = "kv.js", esModule = embed "kv.js")], compatibilityDate = "2026-07-01",
      bindings = [(name = "ROUTES", text = embed "${docFile}")])),`;
  const js = `(name = "main", worker = (modules = [(name = "${jsModule}", esModule = embed "${jsModule}")], compatibilityDate = "2026-07-01", globalOutbound = "loopback")),`;
  const file = join(dir, `${name}.capnp`);
  writeFileSync(
    file,
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ ${docFile ? gateway : js}
    (name = "loopback", network = (allow = ["local", "private"])) ],
  sockets = [ (name = "main", address = "127.0.0.1:${PORT}", http = (), service = "main") ] );`,
  );
  return file;
}

/** Times the first answer to /pass/42 of a workerd just spawned (at `started`). */
async function firstAnswer(started) {
  for (;;) {
    const sent = performance.now();
    try {
      const r = await fetch(`http://127.0.0.1:${PORT}/pass/42`);
      const text = await r.text();
      if (r.status !== 200 || !text.includes("benchmark user")) throw new Error(`first answer ${r.status} ${text.slice(0, 200)}`);
      const now = performance.now();
      return { total_ms: now - started, first_ms: now - sent };
    } catch (e) {
      if (e.cause?.code !== "ECONNREFUSED") throw e;
      if (performance.now() - started > 60_000) throw new Error("workerd did not answer within 60 s");
      await new Promise((r) => setTimeout(r, 2));
    }
  }
}

/** Spawns workerd on `config` and times its first answer to /pass/42. */
async function sample(config) {
  const started = performance.now();
  const child = spawn(workerdBin, ["serve", config], { stdio: "ignore" });
  try {
    return await firstAnswer(started);
  } finally {
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
  }
}

/** Samples every configuration in turn, SAMPLES rounds, so a slow moment of the machine falls
 * on all of them alike; one unrecorded round first warms the upstream and the binary's pages. */
async function measureAll(configs) {
  const runs = configs.map(() => []);
  for (let round = 0; round <= SAMPLES; round++) {
    for (const [i, c] of configs.entries()) {
      const r = await sample(c.config);
      if (round > 0) runs[i].push(r);
    }
  }
  return configs.map((c, i) => {
    const row = { name: c.name, ...(c.routes ? { routes: c.routes } : {}), total_ms: median(runs[i].map((r) => r.total_ms)), first_ms: median(runs[i].map((r) => r.first_ms)) };
    console.log(`  ${c.name.padEnd(44)} spawn → first answer ${row.total_ms.toFixed(0).padStart(6)} ms   the first request itself ${row.first_ms.toFixed(1).padStart(7)} ms`);
    return row;
  });
}

const upstream = fork(join(here, "upstream.mjs"), [String(UPSTREAM_PORT)], { stdio: "inherit" });
await new Promise((r) => upstream.once("message", r));
try {
  console.log(`\nfresh isolates: a new workerd per sample, medians of ${SAMPLES}\n`);
  const docs = {};
  for (const n of [0, 5000, 20000, 50000]) {
    const file = `routes-${n}.json`;
    writeFileSync(join(dir, file), routes(n));
    docs[n] = capnp(`gateway-${n}`, file);
  }
  const rows = await measureAll([
    { name: "JS proxy worker", config: capnp("js") },
    { name: "JS proxy worker, one access-log object", config: capnp("js-log", null, "jsproxylog.js") },
    { name: "gateway (1 route)", config: docs[0] },
    ...[5000, 20000, 50000].map((n) => ({ name: `gateway, ${n.toLocaleString("en")} more routes`, config: docs[n], routes: n })),
  ]);
  const [js, jsLog, small] = rows;
  console.log("\nratios and differences (same run):");
  console.log(`  gateway first request / JS worker's: ${(small.first_ms / js.first_ms).toFixed(1)}x  (target <= 3)`);
  console.log(`  gateway first request / logging JS worker's: ${(small.first_ms / jsLog.first_ms).toFixed(1)}x  (observability on in both)`);
  console.log(`  gateway spawn → first answer / JS worker's: ${(small.total_ms / js.total_ms).toFixed(1)}x`);
  for (const r of rows.filter((r) => r.routes)) {
    console.log(`  compiling ${r.routes.toLocaleString("en")} more routes: +${(r.first_ms - small.first_ms).toFixed(0)} ms on the first request  (target for 50,000: < 1000)`);
  }
  mkdirSync(join(root, "bench-results"), { recursive: true });
  const results = join(root, "bench-results", "startup.json");
  const record = { at: new Date().toISOString(), samples: SAMPLES, rows };
  writeFileSync(results, JSON.stringify(record, null, 2));
  const wasmOpt = process.env.WASM_OPT_BIN || join(root, "miniflare-tests", "node_modules", ".bin", "wasm-opt");
  const code = await coldCode({ dir, capnpFile: docs[0], workerdBin, wasmOpt, port: PORT, request: () => firstAnswer(performance.now()) });
  const kib = (bytes) => (bytes / 1024).toFixed(0);
  console.log(
    `  the gateway's first request runs ${code.first_request_functions} of the module's ${code.functions} functions: ` +
      `${kib(code.first_request_bytes)} KiB of its ${kib(code.code_bytes)} KiB of code, compiled on first call`,
  );
  if (code.largest) {
    console.log("  the largest of them (the module keeps its names):");
    for (const f of code.largest.slice(0, Number(process.env.BENCH_COLD_LIST || 40))) console.log(`    ${String(f.bytes).padStart(7)}  ${f.name}`);
  }
  writeFileSync(results, JSON.stringify({ ...record, cold_code: code }, null, 2));
} finally {
  upstream.kill();
}
process.exit(0);
