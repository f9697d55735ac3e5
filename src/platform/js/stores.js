// The platform's stores, for the Rust adapters: documents fetched and cached (JWKS), the
// rate-limit buckets' Durable Objects, and the Durable Object's own storage and alarm.

import { readBounded } from "./body.js";
import { reason } from "./headers.js";

/**
 * Fetches a small document (a JWKS) with a timeout, following redirects. Resolves to
 * "status\rcache-control\rfinal URL\rbody" (a serialised URL holds no "\r");
 * rejects with a reason string, also as soon as the body is over `maxBytes` (the rest is never
 * read: an endless or huge document must not fill the isolate's memory).
 */
export function fetch_document(url, timeoutMs, maxBytes) {
  return fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: "application/json" } })
    .then(async (response) => `${response.status}\r${response.headers.get("cache-control") || ""}\r${response.url || url}\r${await boundedText(response, maxBytes)}`)
    .catch((error) => {
      throw reason(error);
    });
}

/** The body as text (UTF-8, as `Response.text()` reads it), or a rejection past `maxBytes`. */
async function boundedText(response, maxBytes) {
  const tooLarge = `document exceeds ${maxBytes} bytes`;
  if (Number(response.headers.get("content-length")) > maxBytes) {
    response.body?.cancel().catch(() => undefined);
    throw tooLarge;
  }
  const bytes = await readBounded(response.body, maxBytes);
  if (bytes === null) throw tooLarge;
  return new TextDecoder().decode(bytes);
}

/**
 * The body of a document stored in this location's cache under `url`, or null, also when it
 * is over `maxBytes` (the rest is never read). The cache is the zone's, so anyone on it may
 * have written the entry, of any size: Rust opens it (a sealed JWKS copy under the gateway's
 * own URL) and decides whether to trust it; this only reads.
 */
export function cached_document(url, maxBytes) {
  return caches.default.match(url).then(
    (response) => (response ? boundedText(response, maxBytes).catch(() => null) : null),
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
 * "ok\t<decision line>" or "err\t<reason>" (a refusal's status and text: an object of another
 * build says which version it speaks). Never rejects: a failing store is the caller's policy
 * decision.
 */
export function take_tokens(env, binding, requests, timeoutMs) {
  // Rust pairs the answers with the buckets by position: each is exactly one line (a newline
  // in an error text must not hand one bucket's grant to the next), and a failure of one, also
  // while its body is read, is that bucket's error only (never a rejection losing every answer).
  const take = (entry) =>
    toBucket(env[binding], entry, "take", { signal: AbortSignal.timeout(timeoutMs) })
      .then((response) => response.text().then((text) => (response.ok ? "ok\t" + text : `err\tstatus ${response.status} ${text.slice(0, 200)}`)))
      .catch((error) => "err\t" + reason(error))
      .then(oneLine);
  return Promise.all(requests.split("\n").map(take)).then((lines) => lines.join("\n"));
}

/** `text` with its line breaks replaced by spaces. */
function oneLine(text) {
  return text.replace(/[\r\n]/g, " ");
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

/** Writes one value of a Durable Object's storage (what and when is decided in Rust). */
export function put_value(storage, key, value) {
  storage.put(key, value);
}

/** Calls `callback` after `ms` milliseconds, and again after the ms it returns while not 0. */
export function after(ms, callback) {
  const tick = () => {
    const again = callback();
    if (again > 0) setTimeout(tick, again);
  };
  setTimeout(tick, ms);
}

/** Schedules the object's alarm without waiting for confirmation. */
export function schedule_alarm(storage, atMs) {
  storage.setAlarm(atMs, { allowUnconfirmed: true });
}
