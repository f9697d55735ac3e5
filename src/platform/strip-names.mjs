// Post-build step: drops the Wasm module's "name" custom section (function names for stack
// traces and profiles), which worker-build always keeps. It is about 8% of the gzipped module,
// which must stay under 512 KiB. KEEP_WASM_NAMES=1 keeps it (for profiling).
//
// Usage: node strip-names.mjs build/index_bg.wasm

import { readFileSync, writeFileSync } from "node:fs";

const file = process.argv[2];
if (process.env.KEEP_WASM_NAMES) process.exit(0);
const bytes = readFileSync(file);
if (bytes.readUInt32LE(0) !== 0x6d736100) {
  console.error(`strip-names: ${file} is not a Wasm module`);
  process.exit(1);
}
let at = 8;
const leb = () => {
  let value = 0;
  let shift = 0;
  let byte;
  do {
    byte = bytes[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return value;
};
const kept = [bytes.subarray(0, 8)];
let dropped = 0;
while (at < bytes.length) {
  const start = at;
  const id = bytes[at++];
  const size = leb();
  const body = at;
  let name = "";
  if (id === 0) {
    const length = leb();
    name = bytes.subarray(at, at + length).toString("utf8");
  }
  at = body + size;
  if (at > bytes.length) {
    console.error(`strip-names: ${file} has a section running past its end; refusing to rewrite it`);
    process.exit(1);
  }
  if (id === 0 && name === "name") dropped += at - start;
  else kept.push(bytes.subarray(start, at));
}
if (dropped) writeFileSync(file, Buffer.concat(kept));
