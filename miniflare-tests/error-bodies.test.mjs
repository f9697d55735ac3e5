// The gateway's own errors never reveal internals: a broad sample of every kind of refusal and
// failure, each checked for the runtime's exception text, stack frames and internal addresses.
// (The harness also scans every error body of every other test the same way.)

import { test, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { startGateway, startUpstream, config, closedPort, hs256Token, leakIn, sleep } from "./harness.mjs";

const SECRET = "error-bodies-test-secret-0123456789abcdef-0123456789abcdef-012345";
const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test("every kind of gateway error is problem+json without exception text, stack frames or addresses", async () => {
  const ok = await startUpstream();
  const slow = await startUpstream(async (req, res) => {
    await sleep(1000);
    res.end("late");
  });
  const odd = net.createServer((socket) => {
    socket.on("error", () => {});
    socket.once("data", () => socket.end("HTTP/1.1 600 Beyond\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
  });
  await new Promise((r) => odd.listen(0, "127.0.0.1", r));
  const closed = await closedPort();
  cleanup.push(() => ok.close(), () => slow.close(), () => new Promise((r) => odd.close(r)));
  const ports = [ok.port, slow.port, odd.address().port, closed].map(String);

  const target = (url, extra = {}) => ({ targets: [{ url }], ...extra });
  const route = (id, upstream, extra = {}) => ({ id, path: `/${id}/{*p}`, upstream, auth: "none", ...extra });
  const gw = await startGateway({
    bindings: { ADMIN_TOKEN: "test-admin-token-of-thirty-two-bytes", JWT_SECRET: SECRET },
    routes: config({
      settings: { max_body_bytes: 10, admin: { path: "/__gateway", token_secret: "ADMIN_TOKEN" } },
      upstreams: {
        ok: target(ok.url),
        closed: target(`http://127.0.0.1:${closed}`),
        slow: target(slow.url, { timeout_ms: 100 }),
        odd: target(`http://127.0.0.1:${odd.address().port}`),
        breaker: target(`http://127.0.0.1:${closed}`, { circuit_breaker: { failures: 1, cooldown_s: 60 } }),
      },
      auth: {
        hmac: { type: "jwt", issuer: "https://id.test/", audiences: ["api"], secret: "JWT_SECRET", algorithms: ["HS256"] },
        down: { type: "jwt", issuer: "https://id.test/", audiences: ["api"], jwks_url: `http://127.0.0.1:${closed}/jwks`, algorithms: ["RS256"] },
      },
      rate_limits: { once: { key: "global", limit: 1, window_s: 3600 } },
      routes: [
        route("get", "ok", { methods: ["GET"] }),
        route("upload", "ok", { methods: ["POST"] }),
        route("closed", "closed"),
        route("slow", "slow"),
        route("odd", "odd"),
        route("breaker", "breaker"),
        route("scoped", "ok", { auth: ["hmac"], scopes: ["admin"] }),
        route("down", "ok", { auth: ["down"] }),
        route("limited", "ok", { rate_limits: ["once"] }),
      ],
    }),
  });
  cleanup.push(() => gw.close());

  const token = await hs256Token(SECRET, "u1");
  const rs256 = `${Buffer.from('{"alg":"RS256","kid":"k"}').toString("base64url")}.${Buffer.from("{}").toString("base64url")}.c2ln`;
  const cases = [
    ["400 invalid_path", () => gw.raw("/get/a%2fb")],
    ["414 invalid_path", () => gw.raw("/get/" + "a".repeat(9000))],
    ["404 route_not_found", () => gw.fetch("/nothing")],
    ["405 method_not_allowed", () => gw.fetch("/get/x", { method: "DELETE" })],
    ["413 payload_too_large", () => gw.fetch("/upload/x", { method: "POST", body: "x".repeat(100) })],
    ["401 missing_credentials", () => gw.fetch("/scoped/x")],
    ["401 invalid_token", () => gw.fetch("/scoped/x", { headers: { authorization: "Bearer not.a.token" } })],
    ["403 insufficient_scope", () => gw.fetch("/scoped/x", { headers: { authorization: `Bearer ${token}` } })],
    ["503 auth_unavailable", () => gw.fetch("/down/x", { headers: { authorization: `Bearer ${rs256}` } })],
    ["429 rate_limited", async () => (await gw.fetch("/limited/x"), gw.fetch("/limited/x"))],
    ["502 upstream_unreachable", () => gw.fetch("/closed/x")],
    ["504 upstream_timeout", () => gw.fetch("/slow/x")],
    ["502 upstream_invalid_response", () => gw.fetch("/odd/x")],
    ["503 upstream_circuit_open", async () => (await gw.fetch("/breaker/x"), gw.fetch("/breaker/x"))],
    ["401 admin_unauthorized", () => gw.fetch("/__gateway/keys")],
  ];
  for (const [expected, send] of cases) {
    const r = await send();
    const raw = typeof r.status === "number" && typeof r.body === "string";
    const text = raw ? r.body : await r.text();
    const type = raw ? r.headers["content-type"] : r.headers.get("content-type");
    assert.equal(`${r.status} ${type}`, `${expected.split(" ")[0]} application/problem+json`, `${expected}: ${text.slice(0, 300)}`);
    assert.equal(JSON.parse(text).code, expected.split(" ")[1], expected);
    assert.equal(leakIn(r.status, type, text), null, expected);
    for (const port of ports) assert.ok(!text.includes(port), `${expected} names a port: ${text}`);
  }
});
