// The response cache (decisions in `src/pipeline/cache*.rs` and `src/cache/`): looking entries
// up, serving them, storing and refreshing copies, and invalidating URLs.

import { joined, withLength } from "./body.js";
import { applyList, NULL_BODY } from "./headers.js";

// Set from Rust's table (`crate::cache::entry`): the entry's bookkeeping headers, and the
// representation headers a 304 does not carry.
let BOOKKEEPING = [];
export let NOT_IN_304 = [];

/** Takes the names above from the configuration's table (see `route_table`). */
export function useEntryNames(bookkeeping, notIn304) {
  BOOKKEEPING = bookkeeping;
  NOT_IN_304 = notIn304;
}

/**
 * Looks an entry up, and the URL's invalidation marker when `marker` is not empty. Resolves to
 * [entry Response or null, marker time in ms as a string or null]; a failing cache is a miss.
 */
export function cache_match(key, marker) {
  const cache = caches.default;
  return Promise.all([
    cache.match(key).catch(() => null),
    marker ? cache.match(marker).then((r) => (r ? r.text() : null), () => null) : null,
  ]).then(([entry, at]) => [entry || null, at]);
}

/** The facts of a stored entry, "\r"-joined: `status`, the bookkeeping values, ETag, Last-Modified. */
export function entryFacts(entry, status) {
  const h = entry.headers;
  const v = (name) => h.get(name) ?? "";
  return [status, ...BOOKKEEPING.map(v), v("etag"), v("last-modified")].join("\r");
}

/**
 * Bytes `start`..=`end` of `body`, as a stream: the bytes before are skipped, the rest is
 * cancelled once the range is complete.
 */
function sliced(body, start, end) {
  const reader = body.getReader();
  let offset = 0;
  return new ReadableStream({
    async pull(controller) {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return controller.close();
        const from = Math.max(start - offset, 0);
        const to = Math.min(end + 1 - offset, value.byteLength);
        offset += value.byteLength;
        if (from < to) controller.enqueue(value.subarray(from, to));
        if (offset > end) {
          reader.cancel().catch(() => undefined);
          return controller.close();
        }
        if (from < to) return;
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

/**
 * The client's response from stored parts (see `serve_entry`). `range` is "" or
 * "start-end/length": a 206 of those bytes.
 */
export function fromStored(status, statusText, headers, body, remove, set, notModified, headOnly, range) {
  let partial = null;
  if (range && !notModified) {
    const [span, length] = range.split("/");
    const [start, end] = span.split("-").map(Number);
    partial = { start, end, length };
    if (body && !headOnly) body = withLength(sliced(body, start, end), end - start + 1);
  }
  const out = new Response(notModified || headOnly || NULL_BODY.has(status) ? null : body, {
    status: notModified ? 304 : partial ? 206 : status,
    statusText: notModified ? "Not Modified" : partial ? "Partial Content" : statusText,
    headers,
  });
  if (partial) {
    out.headers.set("content-range", `bytes ${partial.start}-${partial.end}/${partial.length}`);
    out.headers.set("content-length", String(partial.end - partial.start + 1));
  }
  const h = out.headers;
  const original = h.get("x-edge-gateway-cache-control");
  if (original === null) h.delete("cache-control");
  else h.set("cache-control", original);
  // The copy was stored decoded and unlabelled: labelled again, the runtime encodes it once
  // for the client (or not at all for one that does not take the coding), as on a miss.
  const coding = h.get("x-edge-gateway-content-encoding");
  if (coding !== null) h.set("content-encoding", coding);
  for (const name of BOOKKEEPING) h.delete(name);
  if (notModified) for (const name of NOT_IN_304) h.delete(name);
  applyList(h, remove, set);
  return out;
}

/**
 * The client's response from a stored entry, with `status` (the upstream's, which Rust read from
 * the bookkeeping): bookkeeping removed, the upstream's Cache-Control restored, then `remove`
 * ("\n"-joined: the route's response removals in force) dropped and `set` ("\n"-joined pairs:
 * the route's response headers, Age, Cache-Status, request id) added.
 * `notModified` answers 304; `headOnly` drops the body; `range` ("start-end/length" or "")
 * answers 206 with those bytes.
 */
export function serve_entry(entry, status, remove, set, notModified, headOnly, range) {
  return fromStored(status, entry.statusText, entry.headers, entry.body, remove, set, notModified, headOnly, range);
}

/**
 * A stored entry updated by a 304 (RFC 9111 §3.2): every header of `from` except the
 * `exclude` names ("\n"-joined) replaces the entry's, then `remove` is dropped and `meta`
 * ("\n"-joined pairs) set. The body is the entry's, still unread.
 */
export function update_entry(entry, from, exclude, remove, meta) {
  const headers = new Headers(entry.headers);
  const skip = new Set(exclude.split("\n"));
  for (const [name, value] of from.headers) if (!skip.has(name)) headers.set(name, value);
  applyList(headers, remove, meta);
  return new Response(entry.body, { status: entry.status, statusText: entry.statusText, headers });
}

// The copies being assembled for the cache in this isolate: their bytes, and the most there may
// be at once (Rust's `STORE_BUFFER_MAX_BYTES`, from the route table); past it a copy is
// abandoned, so concurrent large misses cannot exhaust the isolate's memory.
let STORE_BUDGET = 0;
let buffered = 0;

/** Takes the budget above from the configuration's table (see `route_table`). */
export function useStoreBudget(bytes) {
  STORE_BUDGET = bytes;
}

// The writes in flight (stores and refreshes), by key. `cache_invalidate` marks those of its
// key: a marked write is not made, or, made already, is deleted again once it has landed, so a
// copy that was still being read when its URL was invalidated never brings the old answer back.
const writing = new Map();

function beginWrite(key) {
  const write = { invalidated: false };
  let set = writing.get(key);
  if (!set) writing.set(key, (set = new Set()));
  set.add(write);
  return write;
}

function endWrite(key, write) {
  const set = writing.get(key);
  if (set && set.delete(write) && set.size === 0) writing.delete(key);
}

/**
 * Writes `response` under `key` for `write` (see above), then reads the URL's `guard`: a change
 * recorded there at or after `storedAtMs` (another isolate's invalidation, which `writing`
 * cannot see) deletes the copy again, as Rust's `ports::Guard` says. Never rejects.
 */
function putUnlessInvalidated(key, response, write, guard, storedAtMs) {
  if (write.invalidated) return Promise.resolve();
  const cache = caches.default;
  return cache
    .put(key, response)
    .catch(() => undefined)
    .then(() => write.invalidated || changedSince(cache, guard, storedAtMs))
    .then((gone) => (gone ? cache.delete(key).catch(() => false) : undefined))
    .then(() => undefined);
}

/** Whether the marker `guard` records a change at or after `ms`; an unreadable one does not. */
function changedSince(cache, guard, ms) {
  return cache
    .match(guard)
    .then((r) => (r ? r.text() : null))
    .then((at) => at !== null && Number(at) >= ms)
    .catch(() => false);
}

/**
 * The bytes of `body`, read whole for the cache, or null when they must not be stored: more
 * than `max`, not exactly `expected` bytes when that is a number (shorter than its
 * Content-Length), a body that errors (a reset connection, a chunked body without its last
 * chunk), or more than the isolate's budget allows. `held.bytes` counts what it holds of that
 * budget, for the caller to give back. A body of known length is read into one buffer of that
 * length; one of unknown length is kept in chunks and joined at the end.
 */
async function assemble(body, expected, max, held) {
  const reader = body.getReader();
  const take = (n) => {
    if (buffered + n > STORE_BUDGET) return false;
    buffered += n;
    held.bytes += n;
    return true;
  };
  const whole = expected !== null && expected <= max && take(expected) ? new Uint8Array(expected) : null;
  if (expected !== null && !whole) {
    reader.cancel().catch(() => undefined);
    return null;
  }
  const chunks = [];
  let seen = 0;
  for (;;) {
    let next;
    try {
      next = await reader.read();
    } catch {
      return null;
    }
    if (next.done) break;
    const n = next.value.byteLength;
    if (seen + n > max || (whole && seen + n > expected) || (!whole && !take(n))) {
      reader.cancel().catch(() => undefined);
      return null;
    }
    if (whole) whole.set(next.value, seen);
    else chunks.push(next.value);
    seen += n;
  }
  if (whole) return seen === expected ? whole.buffer : null;
  if (!take(seen)) return null;
  return joined(chunks, seen);
}

/**
 * The length a stored copy's body must have: its `Content-Length`, unless a content coding
 * makes the bytes read differ from the bytes sent (then only an errored body is caught).
 */
function expectedLength(headers) {
  const length = headers.get("content-length");
  const coding = headers.get("content-encoding");
  if (length === null || (coding && coding.toLowerCase() !== "identity")) return null;
  const n = Number(length);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/**
 * Stores a copy of `response` under `key`: `remove` ("\n"-joined) headers dropped, `meta`
 * ("\n"-joined pairs) set. The body is teed (the client's copy is never held back) and the
 * cache's copy is assembled in memory (see `assemble`), then written once, whole, unless the
 * key was invalidated meanwhile. Resolves when stored or abandoned (a failing cache is not an
 * error).
 *
 * An incomplete copy must never be served as a hit (RFC 9111 §3.3), and a refresh must never
 * replace a good entry with one. Streaming the copy into `put` cannot guarantee that: workerd's
 * cache keeps what an erroring body delivered, and lands the write even after `put` has
 * rejected (so deleting the key afterwards races with it). A body written whole also gets its
 * Content-Length stored, which serving ranges needs.
 */
export function store_entry(key, response, remove, meta, maxBytes, guard, storedAtMs) {
  const copy = response.clone();
  const headers = new Headers(copy.headers);
  applyList(headers, remove, meta);
  const write = beginWrite(key);
  // Stored as a 200: `meta` records the upstream's status, which Rust reads back to serve it.
  const put = (body) => putUnlessInvalidated(key, new Response(body, { status: 200, headers }), write, guard, storedAtMs);
  if (!copy.body) return put(null).finally(() => endWrite(key, write));
  const held = { bytes: 0 };
  // The stored length is the bytes read (a content coding makes them differ from the sent ones).
  headers.delete("content-length");
  return assemble(copy.body, expectedLength(copy.headers), maxBytes, held)
    .then((body) => (body !== null ? put(body) : undefined))
    .catch(() => undefined)
    .finally(() => {
      buffered -= held.bytes;
      endWrite(key, write);
    });
}

/**
 * Re-stores a stored entry that a 304 updated (`update_entry` already set its bookkeeping),
 * unless the key is invalidated meanwhile. Its body is a stream; `length` (the stored body's,
 * -1 when unknown) is declared on it, so the copy written back keeps the Content-Length that
 * serving ranges needs.
 */
export function refresh_entry(key, entry, length, guard, storedAtMs) {
  const copy = entry.clone();
  const body = copy.body && length >= 0 ? withLength(copy.body, length) : copy.body;
  const headers = new Headers(copy.headers);
  const response = new Response(body, { status: copy.status, statusText: copy.statusText, headers });
  const write = beginWrite(key);
  return putUnlessInvalidated(key, response, write, guard, storedAtMs).finally(() => endWrite(key, write));
}

/**
 * The client's response from a fresh upstream response: the `remove` headers ("\n"-joined)
 * dropped, `set` pairs added, and turned into a 304 when `notModified`.
 */
export function finish_response(response, set, notModified, remove) {
  if (!notModified) {
    applyList(response.headers, remove, set);
    return response;
  }
  applyList(response.headers, remove, "");
  const out = new Response(null, { status: 304, statusText: "Not Modified", headers: response.headers });
  for (const name of NOT_IN_304) out.headers.delete(name);
  applyList(out.headers, "", set);
  response.body?.cancel();
  return out;
}

/**
 * Records under `marker` that the URL changed at `atMs`, then removes `key` (and keeps this
 * isolate's writes to it in flight from landing, see `writing`). In that order: a write of
 * another isolate that lands after the delete then finds the change (`changedSince`).
 */
export function cache_invalidate(key, marker, atMs, markerTtlS) {
  for (const write of writing.get(key) ?? []) write.invalidated = true;
  const cache = caches.default;
  const record = new Response(String(atMs), { headers: { "cache-control": `max-age=${markerTtlS}` } });
  return cache
    .put(marker, record)
    .catch(() => undefined)
    .then(() => cache.delete(key).catch(() => false))
    .then(() => undefined);
}
