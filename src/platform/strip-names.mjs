// Post-build step: drops the Wasm module's "name" custom section (function names for stack
// traces and profiles), which worker-build always keeps. It is about 8% of the gzipped module,
// which must stay under 512 KiB. KEEP_WASM_NAMES=1 keeps it (for profiling).
//
// Usage: node strip-names.mjs build/index_bg.wasm

import { readFileSync, writeFileSync } from "node:fs";
import { sections } from "./wasm-sections.mjs";

const file = process.argv[2];
if (process.env.KEEP_WASM_NAMES) process.exit(0);
const bytes = readFileSync(file);
let all;
try {
  all = sections(bytes);
} catch (e) {
  console.error(`strip-names: ${file}: ${e.message}; refusing to rewrite it`);
  process.exit(1);
}
const kept = all.filter((s) => !(s.id === 0 && s.name === "name"));
if (kept.length < all.length) {
  writeFileSync(file, Buffer.concat([bytes.subarray(0, 8), ...kept.map((s) => bytes.subarray(s.start, s.end))]));
}
