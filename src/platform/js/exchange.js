// The executor of exchange plans (see `src/pipeline/exchange.rs`): Rust decides the attempts,
// their order, the retry rule, the timeout, the body limit and every header edit; this module
// carries a plan out and reports one outcome. What is fixed by configuration (each route's
// header edits) is handed over once per configuration as a table.

import { limited } from "./body.js";
import { useEntryNames, useStoreBudget } from "./cache.js";
import { NULL_BODY, put, reason, setAll } from "./headers.js";

/**
 * The per-configuration table the hot path reads, from Rust's JSON plus the Rust completion
 * callback `finish(handle, status, failure, attempts, upstreamMs, reason)`, which returns the
 * gateway's error response for a failed exchange (undefined otherwise).
 * JSON: { requestIdHeader, inboundHeaders: [names read per request], connectionProtected: [names],
 *   removePrefix: every request header with this prefix is removed,
 *   bookkeeping: [names], notIn304: [names], storeBudget: bytes,
 *   edits: [{ request: {remove, set}, response: {remove, set} }], routes: [index into edits] }
 */
export function route_table(json, finish) {
  const table = JSON.parse(json);
  table.protected = new Set(table.connectionProtected);
  for (const edits of table.edits) {
    edits.request.removeSet = new Set(edits.request.remove);
  }
  table.finish = finish;
  useEntryNames(table.bookkeeping, table.notIn304);
  useStoreBudget(table.storeBudget);
  return table;
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

/** An RFC 9110 token (a header name), in lower case. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

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
      // Only tokens can name a header (`Headers.delete` throws on anything else), as
      // `crate::forward::connection_tokens` reads the request's.
      if (TOKEN.test(name) && !table.protected.has(name)) headers.delete(name);
    }
  }
  // The route's response removals (hop-by-hop names, a few configured ones) are deleted by
  // name: in workerd a delete of an absent name cost about 0.15 µs and walking an upstream
  // answer's five headers about 3 µs. The request side walks instead: its list is long, and
  // its prefix and underscore rules need the names present.
  for (const name of edits.remove) headers.delete(name);
  for (const name of remove) headers.delete(name);
  setAll(headers, edits.set);
  for (const [name, value] of set) put(headers, name, value);
  return out;
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
 * Removes from `headers`, a copy of the client's `original`, what Rust's lists say: the route's
 * removals and every name starting with `prefix` — and the same names spelt with `_` for `-`,
 * with those of every header the route (`fixed`) or the request (`edits`) sets or removes, and
 * of those a cached route's key reads (`fixed.keyed`). CGI, WSGI and Rack read `x_consumer` as
 * `x-consumer` (and keep the later copy), so an underscore spelling would otherwise pass for a
 * header the gateway set, or make the upstream answer for another cache key than the one used.
 */
function removeClientCopies(headers, original, fixed, edits, prefix) {
  let named = null;
  for (const name of original.keys()) {
    const dashed = name.includes("_") ? name.replaceAll("_", "-") : name;
    if (fixed.removeSet.has(dashed) || dashed.startsWith(prefix)) {
      headers.delete(name);
    } else if (dashed !== name) {
      named ??= new Set([...fixed.set, ...edits.set].map(([n]) => n).concat(edits.remove, fixed.keyed));
      if (named.has(dashed)) headers.delete(name);
    }
  }
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
  removeClientCopies(headers, request.headers, route.request, plan.request, table.removePrefix);
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
        if (retry && i + 1 < count) {
          attempts.push(target, 0);
          response.body?.cancel();
          return attempt(i + 1);
        }
        let relayed;
        try {
          relayed = relay(response, table, route.response, plan.response_set, plan.response_remove);
        } catch (error) {
          // Headers the runtime refuses to edit are the upstream's failure, like a bad status.
          response.body?.cancel().catch(() => undefined);
          attempts.push(target, 0);
          return done(null, INVALID_RESPONSE, "response headers: " + reason(error));
        }
        attempts.push(target, retry ? 0 : 1);
        return done(relayed, 0, "");
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
