// Oversize request bodies: every client gets its problem+json 413, whether it declared the
// length or streamed the body, and however much of it was still being sent when the gateway
// answered. Raw connections (node:http, no agent) show resets a fetch client would hide.
//
// The runtime is the baseline, in the same workerd: a bare JS worker answering 413 without
// reading the body is answered cleanly for small bodies, but for bodies of a megabyte or more
// many of its clients get ECONNRESET instead (workerd closes a connection whose request body is
// unread, and the reset discards the answer); the same worker reading the body first is
// answered cleanly every time. The gateway does the latter.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { Miniflare } from "miniflare";
import { startGateway, startUpstream, config } from "./harness.mjs";

const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

const LIMIT = 1000;
const ROUNDS = 20;
const SIZES = [5000, 1_000_000, 5_000_000];

/**
 * One POST of `size` bytes over a fresh connection, written in 1000-byte pieces as fast as the
 * socket takes them. Resolves to { status, type, body } or { reset: error code }.
 */
function post(base, path, { chunked, size }) {
  const u = new URL(base);
  return new Promise((resolve) => {
    const headers = chunked ? { "transfer-encoding": "chunked" } : { "content-length": String(size) };
    const req = http.request({ host: u.hostname, port: u.port, method: "POST", path, headers, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, type: res.headers["content-type"], body: Buffer.concat(chunks).toString() }));
      res.on("error", (e) => resolve({ reset: e.code ?? e.message }));
      res.on("aborted", () => resolve({ reset: "aborted" }));
    });
    req.on("error", (e) => resolve({ reset: e.code ?? e.message }));
    const piece = Buffer.alloc(1000, "a");
    for (let sent = 0; sent < size; sent += piece.length) req.write(piece);
    req.end();
  });
}

async function rounds(base, path, options) {
  const results = [];
  for (let i = 0; i < ROUNDS; i++) results.push(await post(base, path, options));
  return results;
}

/** An upstream and a gateway with one catch-all route and `max_body_bytes: LIMIT`. */
async function limitedGateway() {
  const up = await startUpstream();
  cleanup.push(() => up.close());
  const gw = await startGateway({
    routes: config({
      settings: { max_body_bytes: LIMIT },
      upstreams: { u: { targets: [{ url: up.url }] } },
      routes: [{ id: "r", path: "/{*p}", upstream: "u", auth: "none" }],
    }),
  });
  cleanup.push(() => gw.close());
  return { up, gw };
}

const summary = (results) => JSON.stringify(results.map((r) => r.reset ?? r.status));

test("baseline: a bare JS worker is answered cleanly when it reads the body, or when it is small", async () => {
  const worker = (read) =>
    new Miniflare({
      modules: true,
      compatibilityDate: "2026-07-01",
      script: `export default { async fetch(request) {
        if (${read} && request.body) for await (const _ of request.body);
        return new Response("too large", { status: 413 });
      } };`,
    });
  const unread = worker(false);
  const reading = worker(true);
  cleanup.push(() => unread.dispose(), () => reading.dispose());
  for (const chunked of [false, true]) {
    const small = await rounds(await unread.ready, "/x", { chunked, size: 5000 });
    assert.ok(small.every((r) => r.status === 413), `unread, 5000 bytes, chunked=${chunked}: ${summary(small)}`);
    const large = await rounds(await reading.ready, "/x", { chunked, size: 5_000_000 });
    assert.ok(large.every((r) => r.status === 413), `read, 5 MB, chunked=${chunked}: ${summary(large)}`);
  }
});

test("every oversize POST gets a clean problem+json 413, declared or streamed", async () => {
  const { up, gw } = await limitedGateway();
  for (const size of SIZES) {
    for (const chunked of [false, true]) {
      const results = await rounds(gw.url, "/upload", { chunked, size });
      assert.ok(
        results.every((r) => r.status === 413 && r.type === "application/problem+json" && JSON.parse(r.body).code === "payload_too_large"),
        `${size} bytes, chunked=${chunked}: ${summary(results)}`,
      );
    }
  }
  assert.ok(up.requests.every((seen) => seen.aborted), "the upstream never takes a truncated body for a whole one");
});

/**
 * Writes `raw` bytes on a fresh connection and resolves to the answer read: once its
 * Content-Length bytes have arrived, at close, or after 8 s (whatever came by then).
 */
function rawExchange(base, raw) {
  const u = new URL(base);
  return new Promise((resolve) => {
    let data = "";
    const socket = net.connect(Number(u.port), u.hostname, () => socket.write(raw));
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(data);
    };
    const timer = setTimeout(done, 8_000);
    socket.on("data", (c) => {
      data += c;
      const end = data.indexOf("\r\n\r\n");
      const length = /\r\ncontent-length: *(\d+)/i.exec(data.slice(0, end));
      if (end >= 0 && length && data.length - end - 4 >= Number(length[1])) done();
    });
    socket.on("close", done);
    socket.on("error", done);
  });
}

test("a length beside chunked framing is refused; an Expect: 100-continue client is answered at once", async () => {
  const { up, gw } = await limitedGateway();
  // The runtime reads the chunks (50,000 bytes); a gateway reading the length saw 5.
  const chunk = "x".repeat(50_000);
  const smuggled = await rawExchange(
    gw.url,
    `POST /x HTTP/1.1\r\nhost: api.example.com\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n` +
      `${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`,
  );
  assert.match(smuggled, /^HTTP\/1\.1 400 /, smuggled.slice(0, 200));
  assert.match(smuggled, /"code":"bad_request"/);
  assert.equal(up.requests.length, 0, "nothing reached the upstream");

  // A client waiting for 100 Continue sends no body: its 413 must not wait for one.
  const u = new URL(gw.url);
  const started = Date.now();
  const status = await new Promise((resolve) => {
    const timer = setTimeout(() => {
      req.destroy();
      resolve("no answer after 8 s");
    }, 8_000);
    const req = http.request(
      { host: u.hostname, port: u.port, method: "POST", path: "/upload", agent: false, headers: { "content-length": "5000", expect: "100-continue" } },
      (res) => {
        clearTimeout(timer);
        resolve(res.statusCode);
        res.resume();
        req.destroy();
      },
    );
    req.on("error", (e) => resolve(`error ${e.code}`));
    req.flushHeaders();
  });
  assert.equal(status, 413);
  assert.ok(Date.now() - started < 5_000, `answered after ${Date.now() - started} ms`);
});
