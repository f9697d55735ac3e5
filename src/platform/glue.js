// Bulk operations on Request, Response and Headers objects for the Rust platform layer.
//
// Decisions are made in Rust; these functions only apply them, so that a request crosses the
// Wasm boundary a handful of times instead of once per header. What is fixed by configuration
// (each route's header edits) is handed over once per configuration as a table; per request
// only the values that change cross. Lists in strings are newline-joined: header names and
// values never contain "\n".

const NULL_BODY = new Set([101, 204, 205, 304]);

/**
 * The per-configuration table the hot path reads, from Rust's JSON:
 * { requestIdHeader, inboundHeaders: [names read per request], connectionProtected: [names],
 *   routes: [{ request: {remove, set}, response: {remove, set} }] }
 */
export function route_table(json) {
  const table = JSON.parse(json);
  table.protected = new Set(table.connectionProtected);
  return table;
}

function applyEdits(headers, edits) {
  for (const name of edits.remove) headers.delete(name);
  for (const [name, value] of edits.set) headers.set(name, value);
}

function applyList(headers, removeList, setList) {
  if (removeList) for (const name of removeList.split("\n")) headers.delete(name);
  if (setList) {
    const parts = setList.split("\n");
    for (let i = 0; i + 1 < parts.length; i += 2) headers.set(parts[i], parts[i + 1]);
  }
}

/** Why a forwarded request failed, as a short tag Rust classifies. */
function failure(error, state) {
  if (state.tooLarge) return "too_large";
  if (state.timedOut) return "timeout";
  return "connect:" + String(error && error.message ? error.message : error);
}

/**
 * A body stream that aborts the upstream request once more than `max` bytes have passed.
 * Aborting first matters: an errored body alone may end the upstream's chunked body cleanly,
 * and the upstream would take a truncated body for a whole one.
 */
function limited(body, max, state, controller) {
  let seen = 0;
  return body.pipeThrough(
    new TransformStream({
      transform(chunk, stream) {
        seen += chunk.byteLength;
        if (seen > max) {
          state.tooLarge = true;
          controller.abort();
          stream.error(new Error("request body too large"));
        } else {
          stream.enqueue(chunk);
        }
      },
    }),
  );
}

/** The upstream's response with the route's and the request's edits; the body keeps streaming. */
function relay(response, table, edits, requestId) {
  if (response.status === 101) return response;
  const out = new Response(NULL_BODY.has(response.status) ? null : response.body, response);
  const headers = out.headers;
  const connection = headers.get("connection");
  if (connection) {
    for (const token of connection.split(",")) {
      const name = token.trim().toLowerCase();
      if (name && !table.protected.has(name)) headers.delete(name);
    }
  }
  applyEdits(headers, edits);
  headers.set(table.requestIdHeader, requestId);
  return out;
}

/**
 * Sends the client's request to `url` and relays the answer. Request headers get the route's
 * static edits, then `extraRemove`, the gateway's forwarding headers and `extraSet`. Resolves
 * to the client's Response; rejects with a tag ("timeout", "too_large", "connect:<reason>").
 * `limit` >= 0 bounds a body sent without Content-Length. The timeout covers waiting for the
 * response head, not streaming its body.
 */
export function proxy(request, table, index, url, extraRemove, forwardedFor, proto, host, requestId, traceparent, extraSet, timeoutMs, limit, fetcher) {
  const route = table.routes[index];
  const method = request.method;
  const headers = new Headers(request.headers);
  applyEdits(headers, route.request);
  applyList(headers, extraRemove, extraSet);
  if (forwardedFor) headers.set("x-forwarded-for", forwardedFor);
  headers.set("x-forwarded-proto", proto);
  headers.set("x-forwarded-host", host);
  headers.set(table.requestIdHeader, requestId);
  headers.set("traceparent", traceparent);

  const state = { tooLarge: false, timedOut: false };
  const controller = new AbortController();
  let body = method === "GET" || method === "HEAD" ? null : request.body;
  if (body && limit >= 0) body = limited(body, limit, state, controller);
  const timer = setTimeout(() => {
    state.timedOut = true;
    controller.abort();
  }, timeoutMs);
  const init = { method, headers, body, redirect: "manual", signal: controller.signal };
  let sent;
  try {
    sent = fetcher ? fetcher.fetch(url, init) : fetch(url, init);
  } catch (error) {
    sent = Promise.reject(error);
  }
  return sent.then(
    (response) => {
      clearTimeout(timer);
      return relay(response, table, route.response, requestId);
    },
    (error) => {
      clearTimeout(timer);
      throw failure(error, state);
    },
  );
}

/** Whether the request carries a body stream (and so cannot be replayed for a retry). */
export function has_body(request) {
  return request.body !== null && request.method !== "GET" && request.method !== "HEAD";
}

/** A response generated by the gateway; `set` is newline-joined name/value pairs. */
export function respond(status, body, set) {
  const headers = new Headers();
  applyList(headers, "", set);
  return new Response(NULL_BODY.has(status) ? null : body, { status, headers });
}

/**
 * Values of the named headers, newline-joined in order, each prefixed "1" when present and
 * written as "0" when absent (received header values cannot contain a newline).
 */
export function pick(headers, table) {
  let out = "";
  for (const name of table.inboundHeaders) {
    const value = headers.get(name);
    out += (out ? "\n" : "") + (value === null ? "0" : "1" + value);
  }
  return out;
}
