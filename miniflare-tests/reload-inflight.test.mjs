// A reload never fails requests in flight: whatever a request started with (its configuration,
// the callbacks JS holds for it) lives until the request ends.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startUpstream, config, sleep } from "./harness.mjs";

const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test("documents swapped under sustained load with slow answers: zero 5xx, each response from one version", async () => {
  // Slow answers (0.2–1.2 s), so that requests span reloads; the echo shows the request
  // headers the version set.
  const up = await startUpstream(async (req, res, record) => {
    await sleep(200 + Math.floor(Math.random() * 1000));
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ version: record.headers["x-doc-version"] ?? null }));
  });
  cleanup.push(() => up.close());
  // The breaker makes JS report every answer back to the configuration's callbacks.
  const doc = (version) =>
    config({
      settings: { reload_s: 1 },
      upstreams: { u: { targets: [{ url: up.url }], circuit_breaker: { failures: 10000, cooldown_s: 1 } } },
      routes: [
        {
          id: `r${version}`,
          path: "/{*p}",
          upstream: "u",
          auth: "none",
          request_headers: { set: { "x-doc-version": String(version) } },
          response_headers: { set: { "x-doc-version": String(version) } },
        },
      ],
    });
  const gw = await startGateway({ routes: doc(0) });
  cleanup.push(() => gw.close());

  const results = [];
  let stop = false;
  const client = async () => {
    while (!stop) {
      const r = await gw.fetch("/load");
      const text = await r.text();
      results.push({ status: r.status, header: r.headers.get("x-doc-version"), text });
    }
  };
  const clients = Array.from({ length: 16 }, client);
  // Swap documents every 0.6 s for 7 s: each isolate reload (every reload_s) finds a new one.
  for (let version = 1; version <= 12; version++) {
    await sleep(600);
    await gw.setRoutes(doc(version));
  }
  stop = true;
  await Promise.all(clients);

  const failures = results.filter((r) => r.status >= 500);
  assert.deepEqual(failures.slice(0, 3), [], `${failures.length} of ${results.length} failed`);
  const versions = new Set();
  for (const r of results) {
    const body = JSON.parse(r.text);
    assert.equal(body.version, r.header, `the upstream saw version ${body.version}, the client got ${r.header}`);
    versions.add(r.header);
  }
  assert.ok(versions.size >= 4, `requests were served by several versions: ${[...versions]}`);
  assert.ok(results.length >= 60, `${results.length} requests`);
});
