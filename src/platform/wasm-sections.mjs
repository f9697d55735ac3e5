// Reading a Wasm module's sections, for the build and bench steps that inspect the built module
// (strip-names.mjs, miniflare-tests/bench/coldcode.mjs).

/**
 * Reads an unsigned LEB128 at `at` in `bytes`; returns [value, next offset]. Throws when the
 * number runs past the end (a truncated module would otherwise never end the loop).
 */
export function leb(bytes, at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    if (at >= bytes.length) throw new Error("a number runs past the module's end");
    const byte = bytes[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (byte < 0x80) return [value, at];
  }
}

/**
 * The module's sections in order: `id`, `start` (its first byte), `body` (after its size),
 * `end`, and for a custom section (id 0) its `name`. Throws on something that is not a Wasm
 * module or has a section running past its end.
 */
export function sections(bytes) {
  if (bytes.length < 8 || bytes.readUInt32LE(0) !== 0x6d736100) throw new Error("not a Wasm module");
  const out = [];
  let at = 8;
  while (at < bytes.length) {
    const start = at;
    const id = bytes[at++];
    let size;
    [size, at] = leb(bytes, at);
    const section = { id, start, body: at, end: at + size };
    if (section.end > bytes.length) throw new Error("a section runs past the module's end");
    if (id === 0) {
      const [length, name] = leb(bytes, at);
      section.name = bytes.subarray(name, name + length).toString("utf8");
    }
    out.push(section);
    at = section.end;
  }
  return out;
}
