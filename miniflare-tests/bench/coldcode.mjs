// How much of the Wasm module the first request of a fresh isolate runs. V8 compiles a Wasm
// function on its first call, so this is what that request waits for to be compiled, beside
// what it computes: the figure `make bench` tracks for cold starts, as bytes of function bodies.
//
// The module is instrumented with `wasm-opt --log-execution` (a call to an imported
// `log_execution(id)` at the start of every function), the glue is given that import, and the
// ids logged between the first request's arrival and its answer are mapped back to the
// functions of the uninstrumented module. Functions that already ran while the module was
// instantiated are not counted: they were compiled before the request.

import { execFileSync, spawn } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { leb, sections } from "../../src/platform/wasm-sections.mjs";

/** Skips a signed LEB128 at `at`. */
function skipLeb(bytes, at) {
  while (bytes[at++] & 0x80);
  return at;
}

/** The body ranges of the module's defined functions, in order. */
function functionBodies(bytes) {
  const code = sections(bytes).find((s) => s.id === 10);
  if (!code) throw new Error("coldcode: the module has no code section");
  let [count, p] = leb(bytes, code.body);
  const bodies = [];
  for (let i = 0; i < count; i++) {
    let size;
    [size, p] = leb(bytes, p);
    bodies.push({ start: p, size });
    p += size;
  }
  return bodies;
}

/** The id `--log-execution` put at the entry of a function body, or null. */
function entryId(bytes, body) {
  let [groups, p] = leb(bytes, body.start);
  for (let g = 0; g < groups; g++) {
    [, p] = leb(bytes, p);
    const type = bytes[p++];
    if (type === 0x63 || type === 0x64) p = skipLeb(bytes, p);
  }
  if (bytes[p] !== 0x41) return null; // i32.const id (non-negative: its signed LEB reads as unsigned)
  const [id, next] = leb(bytes, p + 1);
  return bytes[next] === 0x10 ? id : null; // call log_execution
}

/** How many functions the module imports (they come first in the function index space). */
function importedFunctions(bytes) {
  const imports = sections(bytes).find((s) => s.id === 2);
  if (!imports) return 0;
  let [count, p] = leb(bytes, imports.body);
  let functions = 0;
  const skipName = () => {
    let length;
    [length, p] = leb(bytes, p);
    p += length;
  };
  const skipLimits = () => {
    const flags = bytes[p++];
    [, p] = leb(bytes, p);
    if (flags & 1) [, p] = leb(bytes, p);
  };
  for (let i = 0; i < count; i++) {
    skipName();
    skipName();
    const kind = bytes[p++];
    if (kind === 0) {
      functions++;
      [, p] = leb(bytes, p);
    } else if (kind === 1) {
      p++;
      skipLimits();
    } else if (kind === 2) skipLimits();
    else if (kind === 3) p += 2;
    else if (kind === 4) [, p] = leb(bytes, p + 1);
    else throw new Error(`coldcode: import kind ${kind} is not known`);
  }
  return functions;
}

/** The names of the defined functions, by body index, from the `name` section (empty without one). */
function functionNames(bytes) {
  const names = new Map();
  const section = sections(bytes).find((s) => s.id === 0 && s.name === "name");
  if (!section) return names;
  const imported = importedFunctions(bytes);
  let [length, p] = leb(bytes, section.body);
  p += length;
  while (p < section.end) {
    const id = bytes[p++];
    let size;
    [size, p] = leb(bytes, p);
    if (id === 1) {
      let [count, q] = leb(bytes, p);
      for (let i = 0; i < count; i++) {
        let index, nameLength;
        [index, q] = leb(bytes, q);
        [nameLength, q] = leb(bytes, q);
        names.set(index - imported, bytes.subarray(q, q + nameLength).toString("utf8"));
        q += nameLength;
      }
    }
    p += size;
  }
  return names;
}

/**
 * Measures the first request of a fresh workerd started on `capnpFile`, whose worker modules
 * `index.js` and `index_bg.wasm` in `dir` are replaced by instrumented copies (the originals
 * are restored). `request` performs the first request and resolves once it is answered.
 */
export async function coldCode({ dir, capnpFile, workerdBin, wasmOpt, port, request }) {
  const wasmFile = join(dir, "index_bg.wasm");
  const jsFile = join(dir, "index.js");
  const original = readFileSync(wasmFile);
  const originalJs = readFileSync(jsFile, "utf8");
  const features = ["mutable-globals", "sign-ext", "nontrapping-float-to-int", "bulk-memory", "multivalue", "reference-types", "exception-handling"];
  const instrumentedFile = join(dir, "index_bg.logged.wasm");
  execFileSync(wasmOpt, [wasmFile, "--log-execution", ...features.map((f) => `--enable-${f}`), "-o", instrumentedFile]);
  const instrumented = readFileSync(instrumentedFile);

  const bodies = functionBodies(original);
  const loggedBodies = functionBodies(instrumented);
  if (loggedBodies.length !== bodies.length) throw new Error("coldcode: wasm-opt changed the number of functions");
  const functionOf = new Map();
  loggedBodies.forEach((body, i) => {
    const id = entryId(instrumented, body);
    if (id !== null) functionOf.set(id, i);
  });

  // The glue: the import the instrumented module needs, ids recorded into the set in force,
  // and a path that answers with what the first request ran (it calls no Wasm itself).
  const importsAt = originalJs.indexOf('"./index_bg.js": import0,');
  const entryAt = originalJs.indexOf("// lean entry: a plain object instead of a per-request class and Proxies.\nvar shim_default = {\n  fetch(request, env, ctx) {\n");
  if (importsAt < 0 || entryAt < 0) throw new Error("coldcode: index.js does not have the expected shape; refusing to patch");
  const entryLine = "  fetch(request, env, ctx) {\n";
  const entryEnd = originalJs.indexOf(entryLine, entryAt) + entryLine.length;
  const handler = originalJs.slice(entryEnd).match(/return (\w+)\(request, env, ctx\);/);
  if (!handler) throw new Error("coldcode: the lean entry does not call a handler as expected; refusing to patch");
  const patched =
    `globalThis.__cold = { startup: new Set(), first: null, answered: null };\n` +
    originalJs.slice(0, importsAt) +
    `"./index_bg.js": Object.assign(import0, { log_execution: (id) => (globalThis.__cold.first ?? globalThis.__cold.startup).add(id) }),` +
    originalJs.slice(importsAt + '"./index_bg.js": import0,'.length, entryEnd) +
    `    const cold = globalThis.__cold;
    if (new URL(request.url).pathname === "/__cold-code") return new Response(JSON.stringify({ startup: [...cold.startup], first: [...cold.answered] }));
    if (!cold.first) {
      cold.first = new Set();
      return Promise.resolve(${handler[1]}(request, env, ctx)).then((answer) => ((cold.answered = new Set(cold.first)), answer));
    }
` +
    originalJs.slice(entryEnd);

  writeFileSync(jsFile, patched);
  writeFileSync(wasmFile, instrumented);
  const child = spawn(workerdBin, ["serve", capnpFile], { stdio: "ignore" });
  try {
    await request();
    // What ran up to the first answer; what the request left running past it is not counted.
    const ran = await (await fetch(`http://127.0.0.1:${port}/__cold-code`)).json();
    const atStartup = new Set(ran.startup.map((id) => functionOf.get(id)));
    const first = new Set(ran.first.map((id) => functionOf.get(id)).filter((f) => f !== undefined && !atStartup.has(f)));
    const total = bodies.reduce((sum, b) => sum + b.size, 0);
    const ranBytes = [...first].reduce((sum, f) => sum + bodies[f].size, 0);
    // With the name section kept (a build with KEEP_WASM_NAMES=1), the largest of them by name.
    const names = functionNames(original);
    const largest = names.size
      ? [...first].map((f) => ({ name: names.get(f) ?? `#${f}`, bytes: bodies[f].size })).sort((a, b) => b.bytes - a.bytes)
      : null;
    return { functions: bodies.length, code_bytes: total, first_request_functions: first.size, first_request_bytes: ranBytes, largest };
  } finally {
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    writeFileSync(jsFile, originalJs);
    writeFileSync(wasmFile, original);
    rmSync(instrumentedFile, { force: true });
  }
}
