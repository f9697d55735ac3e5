// Request and response bodies: draining what a client still sends, bounding what passes, and
// reading a body whole within a bound.

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

/**
 * Resolves to `response` once `request`'s unread body has been drained (see above). A client
 * that sent `Expect: 100-continue` is not sending its body until told to, and the runtime
 * never tells it: waiting for that body would hold every refusal for the whole drain bound.
 */
export function answer_after_body(request, response) {
  const body = request.body;
  if (!body || request.bodyUsed || body.locked) return Promise.resolve(response);
  if ((request.headers.get("expect") || "").trim().toLowerCase() === "100-continue") return Promise.resolve(response);
  return discard(body.getReader()).then(() => response);
}

/**
 * A copy of `body` that errors once more than `max` bytes have passed, after calling
 * `onExceeded` with the promise of draining the rest of `body` (see `discard`). For a request
 * body, that aborts the upstream request first: an errored body alone may end the upstream's
 * chunked body cleanly, and the upstream would take a truncated body for a whole one. The
 * client's body is drained, never cancelled, so the 413 reaches the client.
 */
export function limited(body, max, onExceeded) {
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
 * The bytes of `body`, or null once they pass `maxBytes` (nothing past that is kept). The rest
 * is cancelled, or, with `drain` (a request's body, see `discard`), read and dropped.
 */
export async function readBounded(body, maxBytes, drain = false) {
  if (!body) return new ArrayBuffer(0);
  const reader = body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      if (drain) await discard(reader);
      else reader.cancel().catch(() => undefined);
      return null;
    }
    chunks.push(value);
  }
  return joined(chunks, total);
}

/**
 * The request's body as text (UTF-8, as `Request.text()` reads it), or null once it is over
 * `maxBytes`: nothing past that is kept, whether a length was declared or not, and the rest is
 * drained (see `discard`) so the refusal reaches the client.
 */
export async function bounded_text(request, maxBytes) {
  const bytes = await readBounded(request.body, maxBytes, true);
  return bytes === null ? null : new TextDecoder().decode(bytes);
}

/** One buffer of `chunks`, which hold `total` bytes. */
export function joined(chunks, total) {
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out.buffer;
}

/**
 * `stream` with its length declared when it is known, so that the platform keeps (and sends)
 * `Content-Length` for it: a stream of unknown length is stored and served chunked.
 */
export function withLength(stream, length) {
  if (length === null || typeof FixedLengthStream !== "function") return stream;
  const fixed = new FixedLengthStream(length);
  stream.pipeTo(fixed.writable).catch(() => undefined);
  return fixed.readable;
}
