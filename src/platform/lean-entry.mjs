// Post-build step: replaces worker-build's default export (a Proxy around a WorkerEntrypoint
// class, built anew for every request) with a plain module-worker object that keeps the same
// panic recovery (checkReinitialize before the call, handleMaybeCritical on a synchronous
// throw). Measured in `make bench`, the class and its Proxies cost about as much per request
// as all of the gateway's own routing work.
//
// Usage: node lean-entry.mjs build/index.js   (expects worker-build 0.8.7 output, unminified)
// Fails loudly if the shim does not have the expected shape, rather than guessing.

import { readFileSync, writeFileSync } from "node:fs";

const file = process.argv[2];
let source = readFileSync(file, "utf8");
if (source.includes("// lean entry")) process.exit(0);

const handler = source.match(
  /Entrypoint\.prototype\.fetch = function fetch\d*\(arg\) \{\s*return (\w+)\.call\(this, arg, this\.env, this\.ctx\);\s*\};/,
);
const exportLine = "var shim_default = new Proxy(Entrypoint, classProxyHooks);";
for (const needed of ["function checkReinitialize()", "function handleMaybeCritical(e)", exportLine]) {
  if (!source.includes(needed) || !handler) {
    console.error(`lean-entry: ${file} does not have the expected worker-build shim (missing: ${handler ? needed : "Entrypoint.prototype.fetch"}); refusing to patch`);
    process.exit(1);
  }
}
source = source.replace(
  exportLine,
  `// lean entry: a plain object instead of a per-request class and Proxies.
var shim_default = {
  fetch(request, env, ctx) {
    checkReinitialize();
    try {
      return ${handler[1]}(request, env, ctx);
    } catch (e) {
      handleMaybeCritical(e);
      throw e;
    }
  }
};`,
);
writeFileSync(file, source);
