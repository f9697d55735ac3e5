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
 *   bookkeeping: [names], notIn304: [names], routes: [{ request: {remove, set}, response: {remove, set} }] }
 */
export function route_table(json, finish) {
  const table = JSON.parse(json);
  table.protected = new Set(table.connectionProtected);
  for (const route of table.routes) {
    route.request.removeSet = new Set(route.request.remove);
    route.response.removeSet = new Set(route.response.remove);
  }
  table.finish = finish;
  BOOKKEEPING = table.bookkeeping;
  NOT_IN_304 = table.notIn304;
  return table;
}

/**
 * Removes from `headers`, a copy of `original`, the names in `removeSet`. Walking the
 * original's few names and deleting only those present is cheaper than deleting every listed
 * name: each call into Headers crosses into the runtime.
 */
function removePresent(headers, original, removeSet) {
  for (const name of original.keys()) if (removeSet.has(name)) headers.delete(name);
}

function setAll(headers, pairs) {
  for (const [name, value] of pairs) headers.set(name, value);
}

function applyList(headers, removeList, setList) {
  if (removeList) for (const name of removeList.split("\n")) headers.delete(name);
  if (setList) {
    const parts = setList.split("\n");
    for (let i = 0; i + 1 < parts.length; i += 2) headers.set(parts[i], parts[i + 1]);
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
function relay(response, table, edits, set) {
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
  setAll(headers, edits.set);
  setAll(headers, set);
  return out;
}

// Failure codes reported to Rust: 0 none, 1 timeout, 2 request body too large, 3 unreachable,
// 4 a response whose status cannot be relayed.
const TIMEOUT = 1;
const TOO_LARGE = 2;
const UNREACHABLE = 3;
const INVALID_RESPONSE = 4;

/**
 * One upstream exchange. Resolves to the upstream's Response; rejects with [code, reason]. The
 * timeout covers waiting for the response head: the runtime does not abort a body that is
 * already being relayed.
 */
function send(fetcher, url, method, headers, body, timeoutMs, limit) {
  let signal = AbortSignal.timeout(timeoutMs);
  let state = null;
  if (body && limit !== null) {
    state = { tooLarge: false, drained: null };
    const controller = new AbortController();
    body = limited(body, limit, (drained) => {
      state.tooLarge = true;
      state.drained = drained;
      controller.abort();
    });
    signal = AbortSignal.any([signal, controller.signal]);
  }
  const init = { method, headers, body, redirect: "manual", signal };
  let sent;
  try {
    sent = fetcher ? fetcher.fetch(url, init) : fetch(url, init);
  } catch (error) {
    sent = Promise.reject(error);
  }
  return sent.catch((error) => {
    if (state && state.tooLarge) {
      return state.drained.then(() => {
        throw [TOO_LARGE, "body too large"];
      });
    }
    if (error && error.name === "TimeoutError") throw [TIMEOUT, "timeout"];
    throw [UNREACHABLE, String(error && error.message ? error.message : error)];
  });
}

/**
 * A WebSocket handshake: like `send`, but its timeout is a timer cleared once the response
 * head arrives, so it bounds the handshake and never the socket's life afterwards.
 */
function handshake(fetcher, url, headers, timeoutMs) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException("handshake timeout", "TimeoutError")), timeoutMs);
  const init = { method: "GET", headers, redirect: "manual", signal: controller.signal };
  let sent;
  try {
    sent = fetcher ? fetcher.fetch(url, init) : fetch(url, init);
  } catch (error) {
    sent = Promise.reject(error);
  }
  return sent.then(
    (response) => {
      clearTimeout(timer);
      return response;
    },
    (error) => {
      clearTimeout(timer);
      if (controller.signal.aborted) throw [TIMEOUT, "timeout"];
      throw [UNREACHABLE, String(error && error.message ? error.message : error)];
    },
  );
}

/**
 * Carries out a plan from Rust (see `src/pipeline/exchange.rs`): its attempts in order, each
 * with the plan's timeout, the next one after a failure or a status in `retry_statuses` while
 * attempts remain. A request with a body is sent once: its stream cannot be replayed. Never
 * rejects; resolves to { response, failure, reason, attempts: [target, ok, …], upstreamMs }.
 */
function carryOut(request, env, table, plan) {
  const route = table.routes[plan.route];
  const method = request.method;
  const headers = new Headers(request.headers);
  // Every removal (the route's, then the request's) comes before every header the route or the
  // gateway sets: a client can never remove those.
  removePresent(headers, request.headers, route.request.removeSet);
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
    // A missing binding must fail, never fall back to a public fetch of its placeholder URL.
    const sent =
      binding && !fetcher
        ? Promise.reject([UNREACHABLE, "no service binding " + binding])
        : plan.websocket
          ? handshake(fetcher, url, headers, plan.timeout_ms)
          : send(fetcher, url, method, headers, body, plan.timeout_ms, plan.body_limit);
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
        const failed = plan.retry_statuses.includes(response.status);
        attempts.push(target, failed ? 0 : 1);
        if (failed && i + 1 < count) {
          response.body?.cancel();
          return attempt(i + 1);
        }
        return done(relay(response, table, route.response, plan.response_set), 0, "");
      },
      ([failure, reason]) => {
        if (failure === TOO_LARGE) return done(null, failure, reason);
        attempts.push(target, 0);
        return i + 1 < count ? attempt(i + 1) : done(null, failure, reason);
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

/** Logs an access line as an object, so that Workers Logs indexes its fields. */
export function log_access(line) {
  console.log(JSON.parse(line));
}

/** Writes a data point into the Analytics Engine dataset `binding`: 0 written, 1 missing, 2 refused. */
export function write_point(env, binding, point) {
  const dataset = env[binding];
  if (!dataset || typeof dataset.writeDataPoint !== "function") return 1;
  try {
    dataset.writeDataPoint(JSON.parse(point));
    return 0;
  } catch {
    return 2;
  }
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
      throw String(error && error.message ? error.message : error);
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
  const namespace = env[binding];
  const take = (entry) => {
    const tab = entry.indexOf("\t");
    try {
      const stub = namespace.get(namespace.idFromName(entry.slice(0, tab)));
      return stub.fetch("https://rate-limiter/take?" + entry.slice(tab + 1), { signal: AbortSignal.timeout(timeoutMs) }).then(
        (response) => (response.ok ? response.text().then((text) => "ok\t" + text) : "err\tstatus " + response.status),
        (error) => "err\t" + String(error && error.message ? error.message : error),
      );
    } catch (error) {
      return Promise.resolve("err\t" + String(error && error.message ? error.message : error));
    }
  };
  return Promise.all(requests.split("\n").map(take)).then((lines) => lines.join("\n"));
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

/** The facts of a stored entry, "\r"-joined: status, the five bookkeeping values, ETag, Last-Modified. */
function entryFacts(entry) {
  const h = entry.headers;
  const v = (name) => h.get(name) ?? "";
  return [entry.status, ...BOOKKEEPING.map(v), v("etag"), v("last-modified")].join("\r");
}

/** The client's response from stored parts (see `serve_entry`). */
function fromStored(status, statusText, headers, body, set, notModified, headOnly) {
  const out = new Response(notModified || headOnly || NULL_BODY.has(status) ? null : body, {
    status: notModified ? 304 : status,
    statusText: notModified ? "Not Modified" : statusText,
    headers,
  });
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
 * The client's response from a stored entry: bookkeeping removed, the upstream's Cache-Control
 * restored, then `set` ("\n"-joined pairs: Age, Cache-Status, request id, rate-limit fields).
 * `notModified` answers 304; `headOnly` drops the body.
 */
export function serve_entry(entry, set, notModified, headOnly) {
  return fromStored(entry.status, entry.statusText, entry.headers, entry.body, set, notModified, headOnly);
}

// The isolate's hot tier: recently hit entries kept in memory, so a hit costs no Cache API
// lookup. Rust decides what goes in and for how long (`until`); bounded by HOT_CAPACITY bytes.
const hot = new Map();
let hotBytes = 0;
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
 * Keeps a copy of a stored entry in memory until `untilMs` (entries over `maxBytes` are not),
 * prepared for serving: the client's headers and the entry's facts are computed once here.
 */
export function hot_fill(key, marker, entry, maxBytes, untilMs) {
  const length = entry.headers.get("content-length");
  if (length !== null && !(Number(length) <= maxBytes)) return Promise.resolve();
  const copy = entry.clone();
  return readBounded(copy.body, maxBytes).then(
    (body) => {
      if (body === null || body.byteLength > HOT_CAPACITY) return;
      // Plain records: the runtime builds Headers from a record several times faster than from
      // a list of pairs. Stored responses have no Set-Cookie, so no header needs two lines.
      const client = fromStored(copy.status, copy.statusText, copy.headers, null, "", false, true);
      const headers = Object.fromEntries(client.headers);
      const headers304 = Object.fromEntries([...client.headers].filter(([name]) => !NOT_IN_304.includes(name)));
      const facts = entryFacts(copy) + "\r" + untilMs;
      hotDelete(key);
      while (hotBytes + body.byteLength > HOT_CAPACITY && hot.size) hotDelete(hot.keys().next().value);
      hot.set(key, { status: copy.status, statusText: copy.statusText, headers, headers304, body, facts, marker });
      hotBytes += body.byteLength;
    },
    () => undefined,
  );
}

/**
 * Like `entryFacts` for the hot tier, then the entry's `until`, then the request's
 * If-None-Match and If-Modified-Since ("1"+value or "0"); "" when absent.
 */
export function hot_facts(key, request) {
  const e = hot.get(key);
  if (!e) return "";
  const h = request.headers;
  const inm = h.get("if-none-match");
  const ims = h.get("if-modified-since");
  return e.facts + (inm === null ? "\r0" : "\r1" + inm) + (ims === null ? "\r0" : "\r1" + ims);
}

/** Serves a hot entry with the `set` pairs added. */
export function hot_serve(key, set, notModified, headOnly) {
  const e = hot.get(key);
  const headers = { ...(notModified ? e.headers304 : e.headers) };
  const parts = set.split("\n");
  for (let i = 0; i + 1 < parts.length; i += 2) headers[parts[i]] = parts[i + 1];
  return new Response(notModified || headOnly || NULL_BODY.has(e.status) ? null : e.body, {
    status: notModified ? 304 : e.status,
    statusText: notModified ? "Not Modified" : e.statusText,
    headers,
  });
}

/** Forgets an entry, and every entry recorded under `marker` (all variants of a URL). */
export function hot_drop(key, marker) {
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
 * ("\n"-joined pairs) set. The body is teed, never buffered whole; past `maxBytes` the copy is
 * abandoned. Resolves when stored or abandoned (a failing cache is not an error).
 *
 * An incomplete copy (see `checkedCopy`) must never be served as a hit (RFC 9111 §3.3). Its
 * stream errors, which should make `put` fail; but workerd's `put` resolves for a body that
 * errors part-way and keeps what it got. So the key is deleted again once such a copy ends.
 */
export function store_entry(key, response, remove, meta, maxBytes) {
  const copy = response.clone();
  const headers = new Headers(copy.headers);
  applyList(headers, remove, meta);
  const checked = copy.body ? checkedCopy(copy.body, expectedLength(copy.headers), maxBytes) : null;
  const put = caches.default
    .put(key, new Response(checked ? checked.stream : null, { status: copy.status, statusText: copy.statusText, headers }))
    .catch(() => undefined);
  if (!checked) return put;
  return Promise.all([put, checked.outcome])
    .then(([, whole]) => (whole ? undefined : caches.default.delete(key)))
    .catch(() => undefined);
}

/** Re-stores a stored entry with new bookkeeping (after a 304 revalidated it). */
export function refresh_entry(key, entry, meta) {
  const copy = entry.clone();
  const headers = new Headers(copy.headers);
  applyList(headers, "", meta);
  return caches.default
    .put(key, new Response(copy.body, { status: copy.status, statusText: copy.statusText, headers }))
    .catch(() => undefined);
}

/**
 * The client's response from a fresh upstream response: `set` pairs added, and turned into a
 * 304 when `notModified`.
 */
export function finish_response(response, set, notModified) {
  if (!notModified) {
    applyList(response.headers, "", set);
    return response;
  }
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
