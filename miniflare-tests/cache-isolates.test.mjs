// Invalidation across the isolates of one location. A GET's copy is written to the cache only
// once its body is whole, so it can still be in flight in one isolate when another isolate
// handles a successful write to the URL. The first isolate's own record of its writes cannot
// see that; the invalidation's time, recorded in the location's cache before the delete and
// read by the write once it has landed, does: the copy from before the write is deleted again.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startUpstream, startGatewayIsolates, config, eventually } from "./harness.mjs";

let upstream;
let release;
const held = new Promise((r) => (release = r));
const asked = new Map();

before(async () => {
  upstream = await startUpstream(async (req, res) => {
    if (req.method !== "GET") {
      res.statusCode = 204;
      return res.end();
    }
    const n = (asked.get(req.url) ?? 0) + 1;
    asked.set(req.url, n);
    res.setHeader("cache-control", "max-age=600");
    res.setHeader("content-type", "text/plain");
    if (n > 1) return res.end(`new ${req.url}`);
    // The first answer's body ends only when the test says so: its copy stays in flight.
    res.write("old ");
    await held;
    res.end(req.url);
  });
});

after(async () => {
  await upstream?.close();
});

/** Two isolates of the gateway on one location's cache, with one cached route to the upstream. */
function twoIsolates() {
  return startGatewayIsolates({
    count: 2,
    routes: config({
      upstreams: { u: { targets: [{ url: upstream.url }] } },
      routes: [{ id: "c", path: "/c/{id}", upstream: "u", auth: "none", cache: { ttl_s: 600 } }],
    }),
  });
}

test("a copy another isolate was still writing does not outlive a write to its URL", async () => {
  const { workers, close } = await twoIsolates();
  const [first, second] = workers;
  const get = async (w, path) => {
    const r = await w.fetch(path);
    return { body: await r.text(), cs: r.headers.get("cache-status") ?? "" };
  };
  try {
    // Both GETs are answered in the first isolate; their copies wait for the rest of the body.
    const raced = await first.fetch("/c/raced");
    const control = await first.fetch("/c/control");
    assert.equal(raced.status, 200);

    // Meanwhile the second isolate handles a successful write to one of the URLs.
    const write = await second.fetch("/c/raced", { method: "POST", body: "x" });
    assert.equal(write.status, 204);

    release();
    assert.equal(await raced.text(), "old /c/raced");
    assert.equal(await control.text(), "old /c/control");

    // The control's copy lands and is served to the other isolate: the writes do land …
    const hit = await eventually(async () => {
      const r = await get(second, "/c/control");
      return /^edge-gateway; hit/.test(r.cs) && r;
    });
    assert.ok(hit, "the control copy was stored");
    assert.equal(hit.body, "old /c/control");

    // … but the copy from before the write is gone once it has landed: the URL is asked again.
    const fresh = await eventually(async () => {
      const r = await get(second, "/c/raced");
      return r.body !== "old /c/raced" && r;
    });
    assert.ok(fresh, "the copy from before the write was still served");
    assert.equal(fresh.body, "new /c/raced");
    assert.equal(asked.get("/c/raced"), 2);
    assert.equal(asked.get("/c/control"), 1);
  } finally {
    await close();
  }
});

test("a write handled by another isolate reaches this isolate's in-memory copy within a second", async () => {
  release(); // no answer is held here
  const { workers, close } = await twoIsolates();
  const [first, second] = workers;
  const body = async (w, path) => (await w.fetch(path)).text();
  try {
    assert.equal(await body(first, "/c/hot"), "old /c/hot");
    // Stored, then hit: the hit also keeps the entry in the first isolate's memory.
    assert.ok(await eventually(async () => (await first.fetch("/c/hot")).headers.get("cache-status")?.includes("hit")));
    assert.equal(await body(first, "/c/hot"), "old /c/hot");

    const write = await second.fetch("/c/hot", { method: "PUT", body: "x" });
    assert.equal(write.status, 204);
    await new Promise((r) => setTimeout(r, 1_200));
    assert.equal(await body(first, "/c/hot"), "new /c/hot", "the first isolate's copy outlived the write by over a second");
    assert.equal(asked.get("/c/hot"), 2);
  } finally {
    await close();
  }
});
