// Bulk operations on Request, Response and Headers objects for the Rust platform layer.
//
// Decisions are made in Rust; these functions only apply them, so that a request crosses the
// Wasm boundary a handful of times instead of once per header. What is fixed by configuration
// (each route's header edits) is handed over once per configuration as a table; per request
// only the values that change cross, joined into one string.
// Separators: "\r" between fields, "\n" within lists (names and values never contain either),
// "\t" within a target entry.

const NULL_BODY = new Set([101, 204, 205, 304]);

/**
 * The per-configuration table the hot path reads, from Rust's JSON plus the Rust completion
 * callback `finish(handle, status, failure, attempts, upstreamMs, reason)`, which returns the
 * gateway's error response for a failed exchange (undefined otherwise).
 * JSON: { requestIdHeader, inboundHeaders: [names read per request], connectionProtected: [names],
 *   removePrefix: every request header with this prefix is removed,
 *   bookkeeping: [names], notIn304: [names],
 *   edits: [{ request: {remove, set}, response: {remove, set} }], routes: [index into edits] }
 */
export function route_table(json, finish) {
  const table = JSON.parse(json);
  table.protected = new Set(table.connectionProtected);
  for (const edits of table.edits) {
    edits.request.removeSet = new Set(edits.request.remove);
    edits.response.removeSet = new Set(edits.response.remove);
  }
  table.finish = finish;
  BOOKKEEPING = table.bookkeeping;
  NOT_IN_304 = table.notIn304;
  return table;
}

/**
 * Removes from `headers`, a copy of `original`, the names in `removeSet` and those starting
 * with `prefix` (when given). Walking the original's few names and deleting only those present
 * is cheaper than deleting every listed name: each call into Headers crosses into the runtime.
 */
function removePresent(headers, original, removeSet, prefix) {
  for (const name of original.keys()) {
    if (removeSet.has(name) || (prefix && name.startsWith(prefix))) headers.delete(name);
  }
}

function setAll(headers, pairs) {
  for (const [name, value] of pairs) headers.set(name, value);
}

/**
 * `present` ("Vary" as it is, or null) with the tokens of `added` it lacks appended: the
 * gateway's `Vary: Origin` never hides what the upstream's answer varies on.
 */
function mergedVary(present, added) {
  if (present === null || present === undefined || present.trim() === "") return added;
  const have = present.split(",").map((t) => t.trim().toLowerCase());
  if (have.includes("*")) return present;
  const more = added.split(",").map((t) => t.trim()).filter((t) => t && !have.includes(t.toLowerCase()));
  return more.length ? present + ", " + more.join(", ") : present;
}

/** Sets a header of an answer the gateway edits; `vary` is merged (see `mergedVary`). */
function put(headers, name, value) {
  if (name === "vary") headers.set(name, mergedVary(headers.get(name), value));
  else headers.set(name, value);
}

function applyList(headers, removeList, setList) {
  if (removeList) for (const name of removeList.split("\n")) headers.delete(name);
  if (setList) {
    const parts = setList.split("\n");
    for (let i = 0; i + 1 < parts.length; i += 2) put(headers, parts[i], parts[i + 1]);
  }
}

// A gateway answer sent while the client is still sending its body is often lost: workerd
// closes a connection whose request body is unread, the client's TCP stack meets the unread
// bytes with a reset, and the reset throws the answer away before the client reads it (a bare
// worker that answers without reading a large body suffers the same). So before the gateway
// answers on its own, it reads and discards what is left of the body, at most
// DRAIN_MAX_BYTES for at most DRAIN_MAX_MS: a body larger or slower than that is cut, as any
// server must cut an endless one.
const DRAIN_MAX_BYTES = 16 * 1024 * 1024;
const DRAIN_MAX_MS = 10_000;

/** Reads and discards the rest of `reader`'s stream, within the bounds above; never rejects. */
function discard(reader) {
  let seen = 0;
  let timer;
  const read = () =>
    reader.read().then(({ done, value }) => {
      if (done) return;
      seen += value.byteLength;
      if (seen > DRAIN_MAX_BYTES) return reader.cancel();
      return read();
    });
  const timeout = new Promise((resolve) => (timer = setTimeout(resolve, DRAIN_MAX_MS)));
  return Promise.race([read(), timeout])
    .then(() => reader.cancel())
    .catch(() => undefined)
    .finally(() => clearTimeout(timer));
}

/** Resolves to `response` once `request`'s unread body has been drained (see above). */
export function answer_after_body(request, response) {
  const body = request.body;
  if (!body || request.bodyUsed || body.locked) return Promise.resolve(response);
  return discard(body.getReader()).then(() => response);
}

/**
 * A copy of `body` that errors once more than `max` bytes have passed, after calling
 * `onExceeded` with the promise of draining the rest of `body` (see `discard`). For a request
 * body, that aborts the upstream request first: an errored body alone may end the upstream's
 * chunked body cleanly, and the upstream would take a truncated body for a whole one. The
 * client's body is drained, never cancelled, so the 413 reaches the client.
 */
function limited(body, max, onExceeded) {
  const reader = body.getReader();
  let seen = 0;
  let exceeded = false;
  return new ReadableStream({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) return controller.close();
      seen += value.byteLength;
      if (seen <= max) return controller.enqueue(value);
      exceeded = true;
      onExceeded(discard(reader));
      controller.error(new Error("body too large"));
    },
    cancel(reason) {
      // Aborting the upstream request cancels this copy; the client's body is drained instead.
      if (!exceeded) return reader.cancel(reason);
    },
  });
}

/**
 * Whether the upstream's status may be relayed. `new Response` throws outside 200–599, and an
 * interim 1xx handed over as the answer (an unsolicited 100, a 103 the runtime did not
 * consume) is not a final response. A 101 is valid only in answer to an upgrade the gateway
 * asked for — a WebSocket plan's handshake (see `carryOut`); elsewhere relaying it would hand
 * the client a socket.
 */
function relayable(status) {
  return status >= 200 && status <= 599;
}

/**
 * The upstream's response with the route's and the plan's edits; the body keeps streaming. A
 * 101 (only ever relayed for a WebSocket plan) carries the upstream's socket, which the
 * runtime joins to the client's: no frame passes through this code.
 */
function relay(response, table, edits, set, remove) {
  const out =
    response.status === 101
      ? new Response(null, { status: 101, statusText: response.statusText, headers: response.headers, webSocket: response.webSocket })
      : new Response(NULL_BODY.has(response.status) ? null : response.body, response);
  const headers = out.headers;
  const connection = response.headers.get("connection");
  if (connection) {
    for (const token of connection.split(",")) {
      const name = token.trim().toLowerCase();
      if (name && !table.protected.has(name)) headers.delete(name);
    }
  }
  removePresent(headers, response.headers, edits.removeSet);
  for (const name of remove) headers.delete(name);
  setAll(headers, edits.set);
  for (const [name, value] of set) put(headers, name, value);
  return out;
}

/** An error's message, for the reasons reported to Rust. */
function reason(error) {
  return String(error && error.message ? error.message : error);
}

// Failure codes reported to Rust: 0 none, 1 timeout, 2 request body too large, 3 unreachable,
// 4 a response whose status cannot be relayed.
const TIMEOUT = 1;
const TOO_LARGE = 2;
const UNREACHABLE = 3;
const INVALID_RESPONSE = 4;

/**
 * Starts one upstream exchange: `sent` is the runtime's promise of the upstream's Response, and
 * `failure(error)` says what its rejection means, [code, reason] (a promise of it once a body
 * that was too large has been drained). Handing both back, rather than a promise that maps the
 * rejection itself, spares each exchange one promise and one microtask. The timeout covers
 * waiting for the response head: the runtime does not abort a body that is already being
 * relayed.
 */
function send(fetcher, url, method, headers, body, timeoutMs, limit) {
  // The runtime's own timeout signal: one native timer, no JS callback. A JS timer per request
  // (setTimeout, cleared at the response head) cost more per request in `make bench`, and a
  // pending native timer ends with the request's context.
  const timeout = AbortSignal.timeout(timeoutMs);
  let signal = timeout;
  let state = null;
  if (body && limit !== null) {
    const controller = new AbortController();
    state = { tooLarge: false, drained: null };
    body = limited(body, limit, (drained) => {
      state.tooLarge = true;
      state.drained = drained;
      controller.abort();
    });
    signal = AbortSignal.any([timeout, controller.signal]);
  }
  const init = { method, headers, body, redirect: "manual", signal };
  let sent;
  try {
    sent = fetcher ? fetcher.fetch(url, init) : fetch(url, init);
  } catch (error) {
    sent = Promise.reject(error);
  }
  const failure = (error) => {
    if (state && state.tooLarge) return state.drained.then(() => [TOO_LARGE, "body too large"]);
    if (timeout.aborted) return [TIMEOUT, "timeout"];
    return [UNREACHABLE, reason(error)];
  };
  return { sent, failure };
}

/**
 * Carries out a plan from Rust (see `src/pipeline/exchange.rs`): its attempts in order, each
 * with the plan's timeout, the next one after a failure or a status in `retry_statuses` while
 * attempts remain. A request with a body is sent once: its stream cannot be replayed. Never
 * rejects; resolves to { response, failure, reason, attempts: [target, ok, …], upstreamMs }.
 */
function carryOut(request, env, table, plan) {
  const route = table.edits[table.routes[plan.route]];
  const method = request.method;
  const headers = new Headers(request.headers);
  // Every removal (the route's, then the request's) comes before every header the route or the
  // gateway sets: a client can never remove those.
  removePresent(headers, request.headers, route.request.removeSet, table.removePrefix);
  for (const name of plan.request.remove) headers.delete(name);
  setAll(headers, route.request.set);
  setAll(headers, plan.request.set);
  const body = method === "GET" || method === "HEAD" ? null : request.body;
  const count = body ? 1 : plan.attempts.length;
  const attempts = [];
  const started = Date.now();
  const done = (response, failure, reason) => ({ response, failure, reason, attempts, upstreamMs: Date.now() - started });
  const attempt = (i) => {
    const { target, binding, url } = plan.attempts[i];
    const fetcher = binding ? env[binding] : null;
    const failed = ([failure, reason]) => {
      if (failure === TOO_LARGE) return done(null, failure, reason);
      attempts.push(target, 0);
      return i + 1 < count ? attempt(i + 1) : done(null, failure, reason);
    };
    // A missing binding must fail, never fall back to a public fetch of its placeholder URL.
    if (binding && !fetcher) return Promise.resolve([UNREACHABLE, "no service binding " + binding]).then(failed);
    // `send`'s timeout ends with the response head, so on a WebSocket plan it bounds the
    // handshake and never the session.
    const { sent, failure } = send(fetcher, url, method, headers, body, plan.timeout_ms, plan.body_limit);
    return sent.then(
      (response) => {
        // An unusable status is the upstream's failure, like a broken connection: a failed
        // attempt, retried when attempts remain, otherwise a 502 (never the runtime's 500).
        // A 101 is relayable only as the answer to a WebSocket plan's handshake, with a socket.
        const upgraded = plan.websocket && response.status === 101 && response.webSocket;
        if (!relayable(response.status) && !upgraded) {
          response.body?.cancel().catch(() => undefined);
          attempts.push(target, 0);
          return i + 1 < count ? attempt(i + 1) : done(null, INVALID_RESPONSE, "status " + response.status);
        }
        const retry = plan.retry_statuses.includes(response.status);
        attempts.push(target, retry ? 0 : 1);
        if (retry && i + 1 < count) {
          response.body?.cancel();
          return attempt(i + 1);
        }
        return done(relay(response, table, route.response, plan.response_set, plan.response_remove), 0, "");
      },
      (error) => {
        const meaning = failure(error);
        return Array.isArray(meaning) ? failed(meaning) : meaning.then(failed);
      },
    );
  };
  return attempt(0).catch((error) => done(null, UNREACHABLE, String(error)));
}

/**
 * Forwards the client's request by `plan` (JSON) and resolves to the client's response: the
 * upstream's, relayed, or the gateway's error response that `table.finish` returns.
 */
export function proxy(request, env, table, plan, handle) {
  return carryOut(request, env, table, JSON.parse(plan)).then((o) => {
    const reply = table.finish(handle, o.response ? o.response.status : 0, o.failure, o.attempts, o.upstreamMs, o.reason);
    return reply || o.response;
  });
}

/** Like `proxy`, for a Rust stage that continues with the outcome: [response, failure, attempts, upstreamMs, reason]. */
export function exchange(request, env, table, plan) {
  return carryOut(request, env, table, JSON.parse(plan)).then((o) => [o.response, o.failure, o.attempts, o.upstreamMs, o.reason]);
}

// The runtime's console renders an object for its local output with an inspector written in
// JS, which costs more than the rest of the request's logging together; this symbol (honoured
// by that inspector, ignored by serialisation) hands it the line as already written.
const INSPECT = Symbol.for("nodejs.util.inspect.custom");

/**
 * Logs an access line as an object, so that Workers Logs and tail consumers get its members as
 * fields; local output (wrangler dev, workerd) shows it as the one-line JSON it is.
 */
function logAccess(line) {
  const record = JSON.parse(line);
  // A plain assignment keeps the parsed object's fast shape (defineProperty cost ~6 µs more per
  // line in an interleaved A/B); serialisation skips symbol-keyed members either way.
  record[INSPECT] = () => line;
  console.log(record);
}

/** Writes a data point into the Analytics Engine dataset `binding`: 0 written, 1 missing, 2 refused. */
function writePoint(env, binding, point) {
  const dataset = env[binding];
  if (!dataset || typeof dataset.writeDataPoint !== "function") return 1;
  try {
    dataset.writeDataPoint(JSON.parse(point));
    return 0;
  } catch {
    return 2;
  }
}

/**
 * The completion point's output, in one crossing: the access line ("" for none) and the data
 * point ("" for none). Returns `writePoint`'s code, 0 when there is no point.
 */
export function emit(env, binding, line, point) {
  if (line) logAccess(line);
  return point ? writePoint(env, binding, point) : 0;
}

/** User-Agent, cf.country, cf.asn, cf.colo, then the named request headers ("1"+value or "0"). */
export function log_facts(request, names) {
  const cf = request.cf || {};
  const h = request.headers;
  const out = [h.get("user-agent") ?? "", cf.country ?? "", cf.asn ?? "", cf.colo ?? ""];
  if (names) for (const name of names.split("\n")) {
    const v = h.get(name);
    out.push(v === null ? "0" : "1" + v);
  }
  return out.join("\r");
}

/** A response generated by the gateway; `set` is newline-joined name/value pairs. */
export function respond(status, body, set) {
  const headers = new Headers();
  applyList(headers, "", set);
  return new Response(NULL_BODY.has(status) ? null : body, { status, headers });
}

/**
 * The request's URL, method and the headers the entry reads, as one "\r"-joined string:
 * url, method, then one field per name in `table.inboundHeaders`, "1"+value when present and
 * "0" when absent. Received header values cannot contain "\r".
 */
export function read_request(request, table) {
  const headers = request.headers;
  let out = request.url + "\r" + request.method;
  for (const name of table.inboundHeaders) {
    const value = headers.get(name);
    out += value === null ? "\r0" : "\r1" + value;
  }
  return out;
}

/**
 * Fetches a small document (a JWKS) with a timeout. Resolves to "status\rcache-control\rbody";
 * rejects with a reason string.
 */
export function fetch_document(url, timeoutMs) {
  return fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: "application/json" } }).then(
    async (response) => `${response.status}\r${response.headers.get("cache-control") || ""}\r${await response.text()}`,
    (error) => {
      throw reason(error);
    },
  );
}

/** The body of a document stored in this location's cache under `url`, or null. */
export function cached_document(url) {
  return caches.default.match(url).then(
    (response) => (response ? response.text() : null),
    () => null,
  );
}

/** Stores a document in this location's cache for `ttlSeconds`; failures are ignored. */
export function store_document(url, body, ttlSeconds) {
  const response = new Response(body, { headers: { "cache-control": `max-age=${ttlSeconds}`, "content-type": "application/json" } });
  return caches.default.put(url, response).catch(() => undefined);
}

/**
 * Asks one rate-limit bucket per entry of `requests` ("\n"-joined "name\tquery") to take its
 * cost, all at once, each bounded by `timeoutMs`. Resolves to one line per entry, in order:
 * "ok\t<decision line>" or "err\t<reason>". Never rejects: a failing store is the caller's
 * policy decision.
 */
export function take_tokens(env, binding, requests, timeoutMs) {
  const take = (entry) =>
    toBucket(env[binding], entry, "take", { signal: AbortSignal.timeout(timeoutMs) }).then(
      (response) => (response.ok ? response.text().then((text) => "ok\t" + text) : "err\tstatus " + response.status),
      (error) => "err\t" + reason(error),
    );
  return Promise.all(requests.split("\n").map(take)).then((lines) => lines.join("\n"));
}

/**
 * Offers unspent lease admissions back to their buckets ("\n"-joined "name\tquery"). Resolves
 * once every offer has been delivered or has failed (a lost offer only means fewer admissions).
 */
export function give_back(env, binding, offers) {
  const offer = (entry) =>
    toBucket(env[binding], entry, "back").then(
      (response) => response.body?.cancel(),
      () => undefined,
    );
  return Promise.all(offers.split("\n").map(offer)).then(() => undefined);
}

/** Sends `entry` ("name\tquery") to its bucket's object at `path`; a synchronous failure rejects. */
function toBucket(namespace, entry, path, init) {
  const tab = entry.indexOf("\t");
  try {
    const stub = namespace.get(namespace.idFromName(entry.slice(0, tab)));
    return stub.fetch("https://rate-limiter/" + path + "?" + entry.slice(tab + 1), init);
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Writes one value of a Durable Object's storage (coalescing is decided in Rust). */
export function put_value(storage, key, value) {
  storage.put(key, value);
}

/** Calls `callback` after `ms` milliseconds. */
export function after(ms, callback) {
  setTimeout(callback, ms);
}

/** Schedules the object's alarm without waiting for confirmation. */
export function schedule_alarm(storage, atMs) {
  storage.setAlarm(atMs, { allowUnconfirmed: true });
}

// ---- the response cache (decisions in src/platform/cache.rs and src/cache/) ----

// Set from Rust's table (`crate::cache::entry`): the entry's bookkeeping headers, and the
// representation headers a 304 does not carry.
let BOOKKEEPING = [];
let NOT_IN_304 = [];

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
function entryFacts(entry, status) {
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
function fromStored(status, statusText, headers, body, set, notModified, headOnly, range) {
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
  for (const name of BOOKKEEPING) h.delete(name);
  if (notModified) for (const name of NOT_IN_304) h.delete(name);
  applyList(h, "", set);
  return out;
}

/**
 * The client's response from a stored entry, with `status` (the upstream's, which Rust read from
 * the bookkeeping): bookkeeping removed, the upstream's Cache-Control restored, then `set`
 * ("\n"-joined pairs: Age, Cache-Status, request id, rate-limit fields).
 * `notModified` answers 304; `headOnly` drops the body; `range` ("start-end/length" or "")
 * answers 206 with those bytes.
 */
export function serve_entry(entry, status, set, notModified, headOnly, range) {
  return fromStored(status, entry.statusText, entry.headers, entry.body, set, notModified, headOnly, range);
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

/** The bytes of `body`, or null once they pass `maxBytes` (reading stops there). */
async function readBounded(body, maxBytes) {
  if (!body) return new ArrayBuffer(0);
  const reader = body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      reader.cancel().catch(() => undefined);
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out.buffer;
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
      const client = fromStored(status, copy.statusText, copy.headers, null, "", false, true, "");
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

/** Serves a hot entry with the `set` pairs added. */
export function hot_serve(key, set, notModified, headOnly) {
  const e = hot.get(key);
  const out = new Response(notModified || headOnly || NULL_BODY.has(e.status) ? null : e.body, {
    status: notModified ? 304 : e.status,
    statusText: notModified ? "Not Modified" : e.statusText,
    headers: notModified ? e.headers304 : e.headers,
  });
  applyList(out.headers, "", set);
  return out;
}

/** Forgets an entry, and every entry recorded under `marker` (all variants of a URL). */
export function hot_drop(key, marker) {
  hotDrops++;
  hotDelete(key);
  if (marker) for (const [k, e] of hot) if (e.marker === marker) hotDelete(k);
}

/**
 * A copy of `body` for the cache that counts what passes. It errors once more than `max` bytes
 * have passed, or, when `expected` is a number, at its end unless exactly that many came; an
 * upstream body that errors (a reset connection, a chunked body without its last chunk)
 * errors it too. `outcome` resolves once the copy has ended: true when it was whole.
 */
function checkedCopy(body, expected, max) {
  const reader = body.getReader();
  let seen = 0;
  let settle;
  const outcome = new Promise((resolve) => (settle = resolve));
  const fail = (controller, error) => {
    settle(false);
    controller.error(error);
  };
  const stream = new ReadableStream({
    async pull(controller) {
      let next;
      try {
        next = await reader.read();
      } catch (error) {
        return fail(controller, error);
      }
      if (next.done) {
        if (expected !== null && seen !== expected) return fail(controller, new Error("body shorter than Content-Length"));
        settle(true);
        return controller.close();
      }
      seen += next.value.byteLength;
      if (seen > max || (expected !== null && seen > expected)) {
        reader.cancel().catch(() => undefined);
        return fail(controller, new Error("body longer than allowed"));
      }
      controller.enqueue(next.value);
    },
    cancel(reason) {
      settle(false);
      return reader.cancel(reason);
    },
  });
  return { stream, outcome };
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
 * cache's copy is assembled in memory, at most `maxBytes` (past that it is abandoned), then
 * written once, whole. Resolves when stored or abandoned (a failing cache is not an error).
 *
 * An incomplete copy (see `checkedCopy`) must never be served as a hit (RFC 9111 §3.3), and a
 * refresh must never replace a good entry with one. Streaming the copy into `put` cannot
 * guarantee that: workerd's cache keeps what an erroring body delivered, and lands the write
 * even after `put` has rejected (so deleting the key afterwards races with it). A body written
 * whole also gets its Content-Length stored, which serving ranges needs.
 */
export function store_entry(key, response, remove, meta, maxBytes) {
  const copy = response.clone();
  const headers = new Headers(copy.headers);
  applyList(headers, remove, meta);
  // Stored as a 200: `meta` records the upstream's status, which Rust reads back to serve it.
  const put = (body) =>
    caches.default.put(key, new Response(body, { status: 200, headers })).catch(() => undefined);
  if (!copy.body) return put(null);
  const expected = expectedLength(copy.headers);
  const checked = checkedCopy(copy.body, expected, maxBytes);
  // The stored length is the bytes read (a content coding makes them differ from the sent ones).
  headers.delete("content-length");
  return Promise.all([readBounded(checked.stream, maxBytes).catch(() => null), checked.outcome])
    .then(([body, whole]) => (whole && body !== null ? put(body) : undefined))
    .catch(() => undefined);
}

/**
 * `stream` with its length declared when it is known, so that the platform keeps (and sends)
 * `Content-Length` for it: a stream of unknown length is stored and served chunked.
 */
function withLength(stream, length) {
  if (length === null || typeof FixedLengthStream !== "function") return stream;
  const fixed = new FixedLengthStream(length);
  stream.pipeTo(fixed.writable).catch(() => undefined);
  return fixed.readable;
}

/** Re-stores a stored entry that a 304 updated (`update_entry` already set its bookkeeping). */
export function refresh_entry(key, entry) {
  return caches.default.put(key, entry.clone()).catch(() => undefined);
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

/** Removes `key` and, when `marker` is not empty, records that the URL changed at `atMs`. */
export function cache_invalidate(key, marker, atMs, markerTtlS) {
  const cache = caches.default;
  return Promise.all([
    cache.delete(key).catch(() => false),
    marker
      ? cache.put(marker, new Response(String(atMs), { headers: { "cache-control": `max-age=${markerTtlS}` } })).catch(() => undefined)
      : null,
  ]).then(() => undefined);
}

/**
 * The named headers of a Request or Response, "\r"-joined: "1"+value when present, "0" when
 * absent.
 */
export function named_headers(message, names) {
  const h = message.headers;
  return names
    .split("\n")
    .map((name) => {
      const v = h.get(name);
      return v === null ? "0" : "1" + v;
    })
    .join("\r");
}
