// The isolate's hot tier: recently hit entries kept in memory, so that a hit costs no Cache
// API lookup. Rust decides what enters it and until when; this module keeps and serves copies.

import { readBounded } from "./body.js";
import { entryFacts, fromStored, NOT_IN_304 } from "./cache.js";
import { applyList, NULL_BODY } from "./headers.js";

// The isolate's hot tier: recently hit entries kept in memory, so a hit costs no Cache API
// lookup. Rust decides what goes in and for how long (`until`); bounded by HOT_CAPACITY bytes.
const hot = new Map();
let hotBytes = 0;
// Counts `hot_drop`s: a fill whose body was still being read when an entry was dropped keeps
// nothing, since it may be a copy of what was just invalidated.
let hotDrops = 0;
const HOT_CAPACITY = 16 * 1024 * 1024;

function hotDelete(key) {
  const old = hot.get(key);
  if (old) {
    hot.delete(key);
    hotBytes -= old.body.byteLength;
  }
}

/**
 * Keeps a copy of a stored entry, served with `status`, in memory until `untilMs` (entries over
 * `maxBytes` are not), prepared for serving: the client's headers and the entry's facts are
 * computed once here.
 */
export function hot_fill(key, marker, entry, status, maxBytes, untilMs) {
  const length = entry.headers.get("content-length");
  if (length !== null && !(Number(length) <= maxBytes)) return Promise.resolve();
  const copy = entry.clone();
  const drops = hotDrops;
  return readBounded(copy.body, maxBytes).then(
    (body) => {
      if (body === null || body.byteLength > HOT_CAPACITY || hotDrops !== drops) return;
      // Prepared Headers: a hit's Response copies them inside the runtime, where a record's
      // members would each be converted from JS (measured in `make bench`'s profile of hits).
      const client = fromStored(status, copy.statusText, copy.headers, null, "", "", false, true, "");
      const headers = client.headers;
      const headers304 = new Headers(headers);
      for (const name of NOT_IN_304) headers304.delete(name);
      const facts = entryFacts(copy, status) + "\r" + untilMs;
      hotDelete(key);
      while (hotBytes + body.byteLength > HOT_CAPACITY && hot.size) hotDelete(hot.keys().next().value);
      hot.set(key, { status, statusText: copy.statusText, headers, headers304, body, facts, marker });
      hotBytes += body.byteLength;
    },
    () => undefined,
  );
}

/**
 * Like `entryFacts` for the hot tier, then the entry's `until`, then the request's
 * If-None-Match and If-Modified-Since ("1"+value or "0"), then two flags ("1"/"0"): it has a
 * Range, it has a Cache-Control; "" when absent.
 */
export function hot_facts(key, request) {
  const e = hot.get(key);
  if (!e) return "";
  const h = request.headers;
  const inm = h.get("if-none-match");
  const ims = h.get("if-modified-since");
  const flags = "\r" + (h.has("range") ? "1" : "0") + (h.has("cache-control") ? "1" : "0");
  return e.facts + (inm === null ? "\r0" : "\r1" + inm) + (ims === null ? "\r0" : "\r1" + ims) + flags;
}

/** Serves a hot entry with the `remove` names ("\n"-joined) dropped and the `set` pairs added. */
export function hot_serve(key, remove, set, notModified, headOnly) {
  const e = hot.get(key);
  const out = new Response(notModified || headOnly || NULL_BODY.has(e.status) ? null : e.body, {
    status: notModified ? 304 : e.status,
    statusText: notModified ? "Not Modified" : e.statusText,
    headers: notModified ? e.headers304 : e.headers,
  });
  applyList(out.headers, remove, set);
  return out;
}

/** Forgets an entry, and every entry recorded under `marker` (all variants of a URL). */
export function hot_drop(key, marker) {
  hotDrops++;
  hotDelete(key);
  if (marker) for (const [k, e] of hot) if (e.marker === marker) hotDelete(k);
}
