// `make bench-instructions`: instructions per request, counted by valgrind's callgrind, for
// the bench's main scenarios in one workerd (run.mjs's configuration). Unlike requests/s or
// CPU time, the count hardly depends on what else the machine is doing, so it can compare two
// builds (BENCH_BUILD=<dir>) while other work runs. It counts instructions, not time: Wasm and
// JIT code, system calls and cache misses weigh differently in seconds.
//
// Each scenario is warmed (INSTR_WARM requests, 1500: the JIT and Wasm tiers settle), then
// counted over INSTR_ROUNDS (3) rounds of INSTR_REQUESTS (400), four requests in flight; the
// median round is reported. INSTR_ONLY (a regular expression over scenario names) picks
// scenarios. Needs valgrind (Debian's package).

import { execFileSync, fork, spawn, spawnSync } from "node:child_process";
import { readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { workerdBin, median } from "./workers.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const WARM = Number(process.env.INSTR_WARM || 1500);
const ROUNDS = Number(process.env.INSTR_ROUNDS || 3);
const REQUESTS = Number(process.env.INSTR_REQUESTS || 400);
const IN_FLIGHT = 4;
const ONLY = process.env.INSTR_ONLY ? new RegExp(process.env.INSTR_ONLY) : null;

if (spawnSync("valgrind", ["--version"]).status !== 0) {
  console.error("instructions: valgrind is not installed (apt-get install valgrind)");
  process.exit(2);
}

const made = spawnSync(process.execPath, [join(here, "run.mjs")], { env: { ...process.env, BENCH_CONFIG_ONLY: "1" }, encoding: "utf8" });
if (made.status !== 0) throw new Error(`instructions: run.mjs could not write the configuration: ${made.stderr}`);
const dir = made.stdout.trim().split("\n").pop();
// Under valgrind every thread takes turns on one core, so a background compile can hold a
// request past the bench's 10 s upstream timeout: give the exchanges the longest one allowed.
const routesFile = join(dir, "routes.json");
writeFileSync(routesFile, readFileSync(routesFile, "utf8").replaceAll('"timeout_ms":10000', '"timeout_ms":300000'));

// The tokens run.mjs minted (with `jose`) for its JWT routes.
const tokens = JSON.parse(readFileSync(join(dir, "tokens.json"), "utf8"));
const bearer = { authorization: `Bearer ${tokens.ES256}` };
const all = [
  ["JS proxy worker", 9312, "/pass/42"],
  ["JS worker doing the gateway's platform work", 9316, "/floor/42"],
  ["gateway: pass-through", 9311, "/pass/42"],
  ["gateway: pass-through, no log or metrics", 9311, "/pass-quiet/42"],
  ["JS worker returning a constant", 9313, "/"],
  ["JS worker doing a cache hit's platform work", 9316, "/hit/42"],
  ["gateway: cache hit", 9311, "/cached/42"],
  ["gateway: cache hit, no log or metrics", 9311, "/cached-quiet/42"],
  ["gateway: 1 rate limit", 9311, "/rl1/42"],
  ["gateway: JWT ES256", 9311, "/jwt-es/42", bearer],
  ["gateway: JWT ES256 + 1 rate limit", 9311, "/jwt-rl/42", bearer],
];
const scenarios = all.filter(([name]) => !ONLY || ONLY.test(name));

const upstream = fork(join(here, "upstream.mjs"), ["9310"], { stdio: "inherit" });
await new Promise((r) => upstream.once("message", r));
const out = join(dir, "callgrind.out");
const workerd = spawn(
  "valgrind",
  ["--tool=callgrind", "--smc-check=all-non-file", "--dump-instr=no", `--callgrind-out-file=${out}`, workerdBin, "serve", join(dir, "bench.capnp")],
  { stdio: ["ignore", "ignore", "ignore"] },
);
const stop = () => {
  workerd.kill("SIGKILL");
  upstream.kill();
};
process.on("exit", stop);

const agent = new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
const get = (port, path, headers = {}) =>
  new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, agent, headers }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`${port}${path}: ${res.statusCode}`))));
    });
    req.on("error", reject);
  });
/** A request, sent again on a fresh connection when workerd (slowed by valgrind) dropped the kept one. */
async function getRetried(port, path, headers) {
  for (let i = 0; ; i++) {
    try {
      return await get(port, path, headers);
    } catch (error) {
      if (i >= 3 || !["ECONNRESET", "EPIPE"].includes(error.code)) throw error;
      resets++;
    }
  }
}
let resets = 0;
async function burst(port, path, n, headers) {
  let left = n;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (left-- > 0) await getRetried(port, path, headers);
    }),
  );
}
/** Instructions since the last dump: callgrind writes one file per dump, numbered. */
let dumps = 0;
function counted() {
  execFileSync("callgrind_control", ["--dump", String(workerd.pid)], { stdio: "ignore" });
  dumps++;
  const text = readFileSync(`${out}.${dumps}`, "utf8");
  const m = text.match(/^(?:summary|totals): (\d+)/m);
  if (!m) throw new Error("instructions: callgrind's dump has no totals");
  return Number(m[1]);
}

// workerd under valgrind takes a while to come up.
for (const [, port, path, headers] of scenarios) {
  for (let i = 0; ; i++) {
    try {
      await get(port, path, headers);
      break;
    } catch (error) {
      if (i > 240) throw error;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
const rows = [];
for (const [name, port, path, headers] of scenarios) {
  await burst(port, path, WARM, headers);
  counted();
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    await burst(port, path, REQUESTS, headers);
    rounds.push(counted() / REQUESTS);
  }
  const per = median(rounds);
  rows.push({ name, per });
  console.log(`  ${name.padEnd(46)} ${(per / 1000).toFixed(0).padStart(6)}k instructions/request   rounds ${rounds.map((x) => (x / 1000).toFixed(0) + "k").join(" ")}`);
}
const by = Object.fromEntries(rows.map((r) => [r.name, r.per]));
console.log("\nratios (instructions of b over a: what the throughput ratio would be if instructions alone counted):");
for (const [a, b] of [
  ["gateway: pass-through", "JS proxy worker"],
  ["JS worker doing the gateway's platform work", "JS proxy worker"],
  ["gateway: pass-through", "JS worker doing the gateway's platform work"],
  ["gateway: cache hit", "JS worker returning a constant"],
  ["JS worker doing a cache hit's platform work", "JS worker returning a constant"],
  ["gateway: cache hit", "JS worker doing a cache hit's platform work"],
  ["gateway: 1 rate limit", "gateway: pass-through"],
  ["gateway: JWT ES256", "gateway: pass-through"],
  ["gateway: JWT ES256 + 1 rate limit", "gateway: pass-through"],
]) {
  if (by[a] === undefined || by[b] === undefined) continue;
  console.log(`  ${a} / ${b}: ${(by[b] / by[a]).toFixed(2)}x`);
}
if (resets) console.log(`\n${resets} request(s) sent again after workerd dropped a kept connection (each counts twice, at most)`);
for (const f of readdirSync(dir).filter((f) => f.startsWith("callgrind.out"))) rmSync(join(dir, f));
stop();
process.exit(0);
