// Routing, canonical paths and error bodies, through the built worker in workerd.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startUpstream, config } from "./harness.mjs";

let up, gw;

before(async () => {
  up = await startUpstream();
  gw = await startGateway({
    routes: config({
      upstreams: { u: { targets: [{ url: up.url }] } },
      routes: [
        { id: "me", methods: ["GET"], path: "/v1/users/me", upstream: "u", auth: "none" },
        { id: "user", methods: ["GET", "HEAD"], path: "/v1/users/{id}", upstream: "u", rewrite: "/users/{id}", auth: "none" },
        { id: "user-write", methods: ["PUT", "DELETE"], path: "/v1/users/{uid}", upstream: "u", rewrite: "/w/{uid}", auth: "none" },
        { id: "files", path: "/files/{*rest}", upstream: "u", rewrite: "/static/{rest}", auth: "none" },
        { id: "admin-only-host", host: "admin.example.com", path: "/v1/admin", upstream: "u", auth: "none" },
        { id: "wild", host: "*.tenants.example.com", path: "/t", upstream: "u", auth: "none" },
      ],
    }),
  });
});

after(async () => {
  await gw?.close();
  await up?.close();
});

async function problem(res) {
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  const body = await res.json();
  assert.equal(body.status, res.status);
  assert.ok(body.request_id, "error bodies carry the request id");
  assert.equal(body.request_id, res.headers.get("x-request-id"));
  return body;
}

test("static beats parameter, parameters are rewritten, catch-all takes the rest", async () => {
  let r = await gw.fetch("/v1/users/me");
  assert.equal(r.status, 200);
  assert.equal((await r.json()).url, "/v1/users/me");
  r = await gw.fetch("/v1/users/42");
  assert.equal((await r.json()).url, "/users/42");
  r = await gw.fetch("/files/css/site.css");
  assert.equal((await r.json()).url, "/static/css/site.css");
});

test("unknown paths are 404 with a JSON problem body", async () => {
  const r = await gw.fetch("/v2/nothing");
  assert.equal(r.status, 404);
  const body = await problem(r);
  assert.equal(body.code, "route_not_found");
});

test("a known path with another method is 405 with Allow", async () => {
  const r = await gw.fetch("/v1/users/42", { method: "POST", body: "x" });
  assert.equal(r.status, 405);
  assert.equal(r.headers.get("allow"), "GET, HEAD, PUT, DELETE");
  assert.equal((await problem(r)).code, "method_not_allowed");
  const put = await gw.fetch("/v1/users/42", { method: "PUT", body: "x" });
  assert.equal((await put.json()).url, "/w/42");
});

test("host conditions: exact and wildcard hosts, case and port insensitive", async () => {
  assert.equal((await gw.fetch("http://ADMIN.example.com:8443/v1/admin")).status, 200);
  assert.equal((await gw.fetch("http://other.example.com/v1/admin")).status, 404);
  assert.equal((await gw.fetch("http://a.tenants.example.com/t")).status, 200);
  assert.equal((await gw.fetch("http://tenants.example.com/t")).status, 404);
  assert.equal((await gw.fetch("http://eviltenants.example.com/t")).status, 404);
});

test("equivalent spellings of a path reach the same route and are forwarded canonically", async () => {
  for (const spelling of ["/v1/users/%34%32", "/v1//users/42", "/v1/x/../users/42", "/v1/./users/42", "/v1/users/%2e/42"]) {
    const r = await gw.raw(spelling);
    assert.equal(r.status, 200, spelling);
    assert.equal(JSON.parse(r.body).url, "/users/42", spelling);
  }
});

test("ambiguous or hostile paths are refused with 400 before routing", async () => {
  const before = up.requests.length;
  for (const path of [
    "/files/a%2fb",
    "/files/a%2F..%2F..%2Fadmin",
    "/files/a%5cb",
    "/files/%252e%252e/admin",
    "/files/%25%32%65%25%32%65/x",
    "/files/a%00b",
    "/files/a%0d%0aSet-Cookie:%20x",
    "/files/%c0%ae%c0%ae/x",
    "/files/bad%zzescape",
    "/files/..;/admin",
    "/v1/users/me;jsessionid=1",
    // Windows servers drop a segment's trailing dots and spaces: `..%20` is `..` to them.
    "/files/..%20/admin",
    "/files/.../admin",
  ]) {
    const r = await gw.raw(path);
    assert.equal(r.status, 400, path);
    const body = JSON.parse(r.body);
    assert.equal(body.code, "invalid_path", path);
  }
  assert.equal(up.requests.length, before, "nothing reached the upstream");
});

test("an over-long path is 414", async () => {
  const r = await gw.raw("/files/" + "a".repeat(9000));
  assert.equal(r.status, 414);
});

test("query strings are forwarded unchanged", async () => {
  const r = await gw.raw("/v1/users/42?b=2&a=1&a=%2F&empty=&x=%zz");
  assert.equal(JSON.parse(r.body).url, "/users/42?b=2&a=1&a=%2F&empty=&x=%zz");
});

test("a trailing slash, another letter case or a trailing dot that would reach a less protected route is refused", async () => {
  const up2 = await startUpstream();
  const gw2 = await startGateway({
    routes: config({
      upstreams: { u: { targets: [{ url: up2.url }] } },
      auth: { keys: { type: "api_key", header: "x-api-key" } },
      routes: [
        { id: "admin", path: "/admin", upstream: "u", auth: ["keys"] },
        { id: "public", path: "/{*rest}", upstream: "u", auth: "none" },
      ],
    }),
  });
  try {
    assert.equal((await gw2.fetch("/admin")).status, 401);
    const r = await gw2.fetch("/admin/");
    assert.equal(r.status, 400);
    assert.match((await r.json()).detail, /trailing slash/);
    assert.equal(up2.requests.length, 0);
    assert.equal((await gw2.fetch("/other/")).status, 200, "paths that mean one route either way still pass");
    // What IIS, ASP.NET or a Windows file server would take for /admin reaches the public route
    // here: refused the same way.
    const reached = up2.requests.length;
    // So is what nearly every server decodes (%24, %3A) or ASP.NET folds (ı is I to it).
    for (const path of ["/ADMIN", "/Admin", "/admin.", "/admin%20", "/admin::$DATA", "/ADMIN/",
                        "/admin::%24DATA", "/admin%3A%3A$DATA", "/adm%C4%B1n"]) {
      const a = await gw2.raw(path);
      assert.equal(a.status, 400, path);
      const body = JSON.parse(a.body);
      assert.equal(body.code, "invalid_path", path);
      assert.match(body.detail, /(letter case|trailing slash)/, path);
    }
    assert.equal(up2.requests.length, reached, "no other spelling reached the upstream");
    assert.equal((await gw2.fetch("/Blog/Post.")).status, 200, "spellings that fold onto the same route still pass");
  } finally {
    await gw2.close();
    await up2.close();
  }
});
