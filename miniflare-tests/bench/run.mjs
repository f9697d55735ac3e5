// `make bench`: the built gateway served by workerd directly (not wrangler dev, whose proxy
// caps everything near 600 requests/s), beside a minimal JS proxy worker and a JS worker that
// returns a constant, all in one workerd process, against one Node upstream. Prints
// requests/s and latency per scenario and the ratios the project's targets are stated in.

import { spawn, fork } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, mkdirSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { createRequire } from "node:module";
import autocannon from "autocannon";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const require = createRequire(import.meta.url);
const workerdBin = join(dirname(require.resolve("@cloudflare/workerd-linux-64/package.json")), "bin", "workerd");

const DURATION_S = Number(process.env.BENCH_DURATION_S || 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 32);
const UPSTREAM_PORT = 9310;
const PORTS = { gateway: 9311, jsproxy: 9312, jsconst: 9313 };
const upstreamUrl = `http://127.0.0.1:${UPSTREAM_PORT}`;

/** The gateway's configuration for the benchmark, served to it through its KV binding. */
const routes = {
  version: 1,
  settings: { reload_s: 3600 },
  upstreams: { bench: { targets: [{ url: upstreamUrl }], timeout_ms: 10000 } },
  routes: [{ id: "pass", path: "/pass/{*rest}", upstream: "bench", rewrite: "/users/{rest}", auth: "none" }],
};

const dir = mkdtempSync(join(tmpdir(), "gateway-bench-"));
writeFileSync(join(dir, "routes.json"), JSON.stringify(routes));
writeFileSync(
  join(dir, "kv.js"),
  `export default { async fetch(req, env) {
     const key = decodeURIComponent(new URL(req.url).pathname.slice(1));
     return key === "routes" ? new Response(env.ROUTES) : new Response(null, { status: 404 });
   } };`,
);
writeFileSync(
  join(dir, "jsproxy.js"),
  `export default { fetch(req) {
     const u = new URL(req.url);
     return fetch("${upstreamUrl}/users" + u.pathname.slice("/pass".length) + u.search, req);
   } };`,
);
writeFileSync(join(dir, "jsconst.js"), `export default { fetch() { return new Response('{"id":42,"name":"benchmark user","plan":"pro"}', { headers: { "content-type": "application/json" } }); } };`);
const build = join(root, "build");
// capnp embeds resolve absolute paths against import directories: embed copies instead.
copyFileSync(join(build, "index.js"), join(dir, "index.js"));
copyFileSync(join(build, "index_bg.wasm"), join(dir, "index_bg.wasm"));
writeFileSync(
  join(dir, "bench.capnp"),
  `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "gateway", worker = (
      modules = [(name = "index.js", esModule = embed "index.js"),
                 (name = "index_bg.wasm", wasm = embed "index_bg.wasm")],
      compatibilityDate = "2026-07-01",
      bindings = [(name = "CONFIG", kvNamespace = "kv")],
      globalOutbound = "loopback")),
    (name = "jsproxy", worker = (modules = [(name = "jsproxy.js", esModule = embed "jsproxy.js")],
      compatibilityDate = "2026-07-01", globalOutbound = "loopback")),
    (name = "jsconst", worker = (modules = [(name = "jsconst.js", esModule = embed "jsconst.js")],
      compatibilityDate = "2026-07-01")),
    (name = "kv", worker = (modules = [(name = "kv.js", esModule = embed "kv.js")],
      compatibilityDate = "2026-07-01", bindings = [(name = "ROUTES", text = embed "routes.json")])),
    (name = "loopback", network = (allow = ["local", "private"])),
  ],
  sockets = [
    (name = "gateway", address = "127.0.0.1:${PORTS.gateway}", http = (), service = "gateway"),
    (name = "jsproxy", address = "127.0.0.1:${PORTS.jsproxy}", http = (), service = "jsproxy"),
    (name = "jsconst", address = "127.0.0.1:${PORTS.jsconst}", http = (), service = "jsconst"),
  ],
);
`,
);

const children = [];
function cleanup() {
  for (const c of children) c.kill("SIGTERM");
}
process.on("exit", cleanup);
process.on("SIGINT", () => process.exit(130));

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

function load(url, seconds) {
  return new Promise((resolve, reject) => {
    autocannon({ url, connections: CONNECTIONS, duration: seconds, pipelining: 1 }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Measures every scenario in turn, ROUNDS times, and keeps each one's median: interleaving
 * spreads the machine's drift (other processes, thermal state) over all scenarios alike.
 */
async function measureAll(scenarios) {
  for (const s of scenarios) {
    const probe = await fetch(s.url, s.init);
    const text = await probe.text();
    if (!s.check(probe, text)) throw new Error(`${s.name}: unexpected answer ${probe.status} ${text.slice(0, 300)}`);
    await load(s.url, 2); // warm-up: JIT, connection pools, isolate start
    s.samples = [];
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const s of scenarios) {
      const r = await load(s.url, DURATION_S);
      if (!s.allowNon2xx && (r.non2xx || r.errors)) throw new Error(`${s.name}: ${r.non2xx} non-2xx answers, ${r.errors} errors under load`);
      s.samples.push({ rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 });
    }
  }
  return scenarios.map((s) => {
    const row = {
      name: s.name,
      rps: median(s.samples.map((x) => x.rps)),
      p50_ms: median(s.samples.map((x) => x.p50)),
      p99_ms: median(s.samples.map((x) => x.p99)),
      rounds: s.samples.map((x) => Math.round(x.rps)),
    };
    console.log(`  ${row.name.padEnd(34)} ${row.rps.toFixed(0).padStart(7)} req/s   p50 ${String(row.p50_ms).padStart(4)} ms   p99 ${String(row.p99_ms).padStart(4)} ms   rounds ${row.rounds.join(" ")}`);
    return row;
  });
}

const upstream = fork(join(here, "upstream.mjs"), [String(UPSTREAM_PORT)], { stdio: "inherit" });
children.push(upstream);
await new Promise((r) => upstream.once("message", r));
const inspector = process.env.BENCH_INSPECTOR ? [`--inspector-addr=${process.env.BENCH_INSPECTOR}`] : [];
const workerd = spawn(workerdBin, ["serve", join(dir, "bench.capnp"), ...inspector], { stdio: ["ignore", "inherit", "inherit"] });
children.push(workerd);
await waitFor(`http://127.0.0.1:${PORTS.jsconst}/`);

if (process.env.BENCH_HOLD) {
  // Keep the servers up for probing by hand (profiling, one-off scenarios).
  console.log(`holding: upstream ${upstreamUrl}, gateway :${PORTS.gateway}, JS proxy :${PORTS.jsproxy}, JS constant :${PORTS.jsconst}`);
  await new Promise(() => {});
}

const wasm = readFileSync(join(build, "index_bg.wasm"));
console.log(`wasm module: ${(wasm.length / 1024).toFixed(0)} KiB raw, ${(gzipSync(wasm, { level: 9 }).length / 1024).toFixed(0)} KiB gzip`);
console.log(`load: autocannon, ${CONNECTIONS} connections; each scenario ${ROUNDS} x ${DURATION_S} s, interleaved, after a 2 s warm-up; medians\n`);

const isUser = (r, t) => r.status === 200 && t.includes("benchmark user");
const rows = await measureAll([
  { name: "upstream direct", url: `${upstreamUrl}/users/42`, check: isUser },
  { name: "JS worker returning a constant", url: `http://127.0.0.1:${PORTS.jsconst}/`, check: isUser },
  { name: "JS proxy worker", url: `http://127.0.0.1:${PORTS.jsproxy}/pass/42`, check: isUser },
  { name: "gateway: pass-through route", url: `http://127.0.0.1:${PORTS.gateway}/pass/42`, check: isUser },
]);

const by = Object.fromEntries(rows.map((r) => [r.name, r]));
const ratio = (a, b) => (by[a].rps / by[b].rps).toFixed(2);
console.log("\nratios (same run):");
console.log(`  gateway pass-through / JS proxy worker: ${ratio("gateway: pass-through route", "JS proxy worker")}x  (target >= 0.9)`);
console.log(`  gateway pass-through / upstream direct:  ${ratio("gateway: pass-through route", "upstream direct")}x`);
mkdirSync(join(root, "bench-results"), { recursive: true });
writeFileSync(join(root, "bench-results", "latest.json"), JSON.stringify({ at: new Date().toISOString(), rows }, null, 2));
cleanup();
process.exit(0);
