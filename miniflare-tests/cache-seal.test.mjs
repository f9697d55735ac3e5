// The response cache lives in the location's `caches.default`, which belongs to the zone: any
// other Worker on it can put and match any URL there, and the key derivation is public. With
// an admin token the gateway names its entries by an HMAC under a key derived from it, so code
// running the public derivation (here: a gateway without the token, beside it on the zone) can
// neither plant an entry the gateway serves nor read one it stored; isolates holding the token
// still share the location's entries.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Miniflare } from "miniflare";
import { gatewayOptions, startUpstream, config } from "./harness.mjs";

let real, neighbour;

before(async () => {
  const answer = (body) => (req, res) => {
    res.setHeader("cache-control", "max-age=600");
    res.setHeader("content-type", "text/plain");
    res.end(`${body} ${req.url}`);
  };
  real = await startUpstream(answer("real"));
  neighbour = await startUpstream(answer("planted"));
});

after(async () => {
  await real?.close();
  await neighbour?.close();
});

function routes(upstream, admin) {
  return config({
    settings: admin ? { admin: { token_secret: "ADMIN_TOKEN" } } : {},
    upstreams: { u: { targets: [{ url: upstream.url }] } },
    routes: [{ id: "c", path: "/c/{id}", upstream: "u", auth: "none", cache: { ttl_s: 600 } }],
  });
}

test("code on the zone that computes cache keys can neither plant nor read a sealed gateway's entries", async () => {
  const worker = (name, kv, bindings) => ({ ...gatewayOptions({ bindings }), name, kvNamespaces: { CONFIG: kv } });
  const mf = new Miniflare({
    workers: [
      worker("sealed-0", "sealed-config", { ADMIN_TOKEN: "test-admin-token-of-thirty-two-bytes" }),
      worker("sealed-1", "sealed-config", { ADMIN_TOKEN: "test-admin-token-of-thirty-two-bytes" }),
      worker("neighbour", "neighbour-config", {}),
    ],
  });
  try {
    await mf.ready;
    await (await mf.getKVNamespace("CONFIG", "sealed-0")).put("routes", JSON.stringify(routes(real, true)));
    await (await mf.getKVNamespace("CONFIG", "neighbour")).put("routes", JSON.stringify(routes(neighbour, false)));
    const get = async (name, path) => {
      const r = await (await mf.getWorker(name)).fetch(`http://gateway.test${path}`);
      return { status: r.status, body: await r.text(), cs: r.headers.get("cache-status") };
    };

    // The neighbour stores its answer under the key the public derivation gives the URL.
    let r = await get("neighbour", "/c/planted");
    assert.equal(r.body, "planted /c/planted");
    assert.match(r.cs, /stored/);
    r = await get("sealed-0", "/c/planted");
    assert.equal(r.body, "real /c/planted", "the planted entry is not served");
    assert.match(r.cs, /fwd=miss/);

    // What the sealed gateway stores, the neighbour cannot find …
    r = await get("sealed-0", "/c/private");
    assert.match(r.cs, /stored/);
    r = await get("neighbour", "/c/private");
    assert.equal(r.body, "planted /c/private", "the sealed entry is not readable under the public key");
    assert.match(r.cs, /fwd=miss/);

    // … while another isolate holding the token finds both entries in the location's cache.
    for (const path of ["/c/planted", "/c/private"]) {
      r = await get("sealed-1", path);
      assert.equal(r.body, `real ${path}`);
      assert.match(r.cs, /^edge-gateway; hit/, path);
    }
    assert.equal(real.requests.length, 2, "each URL reached the real upstream once");
  } finally {
    await mf.dispose();
  }
});
