// The control plane in workerd: GET/PUT /config with If-Match, history and rollback through the
// real ConfigLock Durable Object and real KV, concurrent pushes, last-good across a restart
// over the same persisted KV, and the gatewayctl binary driven against the running gateway.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import http from "node:http";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";
import { startControlGateway, startUpstream, config, eventually, gatewayOptions } from "./harness.mjs";
import { Miniflare } from "miniflare";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const GATEWAYCTL = join(ROOT, "target/debug/gatewayctl");
const TOKEN = "control-admin-token-of-thirty-two-bytes";
const ADMIN = { authorization: `Bearer ${TOKEN}` };
const EMBEDDED = readFileSync(join(ROOT, "routes.json"), "utf8");

const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

let up;
before(async () => {
  execFileSync("cargo", ["build", "--quiet", "--bin", "gatewayctl"], { cwd: ROOT, stdio: "inherit" });
  up = await startUpstream();
  cleanup.push(() => up.close());
});

const digest = (text) => "sha256:" + createHash("sha256").update(text).digest("hex");
const short = (text) => digest(text).slice(0, "sha256:".length + 16);

/** A valid document (as text) with one public route per id. */
function doc(...ids) {
  return JSON.stringify(
    config({
      settings: { admin: { path: "/__gateway", token_secret: "ADMIN_TOKEN" } },
      upstreams: { u: { targets: [{ url: up.url }] } },
      routes: ids.map((id) => ({ id, path: `/${id}`, upstream: "u", auth: "none" })),
    }),
    null,
    2,
  );
}

async function started(options = {}) {
  const gw = await startControlGateway({ bindings: { ADMIN_TOKEN: TOKEN }, ...options });
  cleanup.push(() => gw.close());
  return gw;
}

async function getConfig(gw) {
  const r = await gw.fetch("/__gateway/config", { headers: ADMIN });
  assert.equal(r.status, 200);
  return { etag: r.headers.get("etag"), source: r.headers.get("x-config-source"), text: await r.text(), rejected: r.headers.get("x-config-rejected") };
}

function put(gw, text, ifMatch, query = "") {
  const headers = { ...ADMIN, "content-type": "application/json" };
  if (ifMatch !== undefined) headers["if-match"] = ifMatch;
  return gw.fetch(`/__gateway/config${query}`, { method: "PUT", headers, body: text });
}

async function problem(r, status, code) {
  assert.equal(r.status, status);
  assert.match(r.headers.get("content-type"), /application\/problem\+json/);
  const body = await r.json();
  assert.equal(body.code, code);
  return body;
}

test("GET /config with empty KV is the embedded document, with its ETag and source", async () => {
  const gw = await started();
  const c = await getConfig(gw);
  assert.equal(c.text, EMBEDDED, "the exact text");
  assert.equal(c.etag, `"${digest(EMBEDDED)}"`);
  assert.equal(c.source, "embedded");
  for (const [method, path, body] of [
    ["GET", "/__gateway/config"],
    ["PUT", "/__gateway/config", doc("a")],
    ["GET", "/__gateway/config/history"],
    ["POST", "/__gateway/config/rollback", "{}"],
  ]) {
    for (const headers of [{}, { authorization: "Bearer wrong" }]) {
      await problem(await gw.fetch(path, { method, headers, body }), 401, "admin_unauthorized");
    }
  }
  await problem(await gw.fetch("/__gateway/config", { method: "DELETE", headers: ADMIN }), 405, "method_not_allowed");
});

test("a push is validated, needs a current If-Match, and writes version, history, last-good and routes", async () => {
  const gw = await started();
  const first = await getConfig(gw);
  const a = doc("a");

  const missing = await problem(await put(gw, a), 428, "precondition_required");
  assert.equal(missing.current_etag, first.etag);
  const stale = await put(gw, a, `"sha256:${"0".repeat(64)}"`);
  assert.equal(stale.headers.get("etag"), first.etag, "412 names the current version");
  await problem(stale, 412, "precondition_failed");
  // A well-formed tag that matches nothing is stale, as HTTP prescribes; text that is no
  // entity tag at all is bad input, not "the configuration changed".
  await problem(await put(gw, a, '"v1"'), 412, "precondition_failed");
  for (const value of ["latest", `${digest(EMBEDDED).slice(0, 20)}`]) {
    const body = await problem(await put(gw, a, value), 400, "bad_request");
    assert.match(body.detail, /^If-Match must be \* or a list of entity tags/);
  }

  const invalid = await problem(
    await put(gw, JSON.stringify({ version: 1, upstreams: {}, routes: [{ id: "x", path: "/x", upstream: "nope", timeout: 1 }] }), first.etag),
    422,
    "invalid_document",
  );
  const paths = invalid.errors.map((e) => e.path);
  assert.ok(paths.includes("upstreams"), JSON.stringify(invalid.errors));
  assert.ok(paths.includes("routes[0].timeout"), JSON.stringify(invalid.errors));
  assert.ok(invalid.errors.every((e) => typeof e.message === "string" && e.message.length > 0));
  // A credential pasted as a member's name is in neither an error's path nor its message.
  const pasted = JSON.parse(doc("p"));
  pasted.routes[0].request_headers = { set: { "X-Api-Key: SECRET1": "x", "Bearer SECRET1": "y" } };
  const named = await problem(await put(gw, JSON.stringify(pasted), first.etag), 422, "invalid_document");
  assert.doesNotMatch(JSON.stringify(named), /SECRET1/);
  assert.ok(named.errors.some((e) => e.path === 'routes[0].request_headers.set["X-Api-Key…"]'), JSON.stringify(named.errors));
  const twice = await problem(await put(gw, `{"version": 1, "Bearer SECRET1": 1, "Bearer SECRET1": 2}`, first.etag), 422, "invalid_document");
  assert.doesNotMatch(JSON.stringify(twice), /SECRET1/);
  const notJson = await problem(await put(gw, "{ not json", first.etag), 422, "invalid_document");
  assert.match(notJson.errors[0].message, /invalid JSON/);
  const huge = a.replace(/\}\s*$/, `, "x": "${"y".repeat(25 * 1024 * 1024)}"}`);
  await problem(await put(gw, huge, first.etag), 413, "payload_too_large");
  await problem(await put(gw, a, first.etag, "?note=two%0Alines"), 400, "bad_request");
  await problem(await put(gw, a, first.etag, `?note=${"n".repeat(501)}`), 400, "bad_request");
  assert.equal(await gw.kv.get("routes"), null, "nothing was written by refused pushes");

  const ok = await put(gw, a, first.etag, "?note=first%20push%20%E2%9C%93");
  assert.equal(ok.status, 200);
  const pushed = await ok.json();
  assert.equal(pushed.digest, digest(a));
  assert.equal(pushed.previous, digest(EMBEDDED));
  assert.equal(await gw.kv.get("routes"), a);
  assert.equal(await gw.kv.get("routes:last-good"), a);
  assert.equal(await gw.kv.get(`routes@${digest(a)}`), a);

  const now = await getConfig(gw);
  assert.deepEqual([now.text, now.etag, now.source], [a, `"${digest(a)}"`, "kv"]);
  const history = await (await gw.fetch("/__gateway/config/history", { headers: ADMIN })).json();
  assert.equal(history.length, 1);
  assert.equal(history[0].digest, digest(a));
  assert.equal(history[0].size, Buffer.byteLength(a));
  assert.equal(history[0].note, "first push ✓");
  // The isolate served the embedded document, which reloads every settings.reload_s = 10 s.
  const served = await eventually(async () => (await gw.fetch("/a")).status === 200, { timeoutMs: 12000, intervalMs: 250 });
  assert.ok(served, "the pushed routes serve");
});

test("two concurrent pushes from the same version: exactly one wins, the other gets 412", async () => {
  const gw = await started({ routes: doc("base") });
  const { etag } = await getConfig(gw);
  const [b, c] = [doc("b"), doc("c")];
  const answers = await Promise.all([put(gw, b, etag), put(gw, c, etag)]);
  const statuses = answers.map((r) => r.status).sort();
  assert.deepEqual(statuses, [200, 412]);
  const winner = answers[0].status === 200 ? b : c;
  assert.equal(await gw.kv.get("routes"), winner);
  const loser = answers.find((r) => r.status === 412);
  assert.equal(loser.headers.get("etag"), `"${digest(winner)}"`);
  const history = await (await gw.fetch("/__gateway/config/history", { headers: ADMIN })).json();
  assert.deepEqual(history.map((h) => h.digest), [digest(winner)]);
});

test("rollback makes a history version current again; unknown digests are 404", async () => {
  const gw = await started({ routes: doc("start") });
  const [a, b] = [doc("a"), doc("b")];
  assert.equal((await put(gw, a, "*")).status, 200);
  assert.equal((await put(gw, b, `"${digest(a)}"`)).status, 200);
  assert.ok(await eventually(async () => (await gw.fetch("/b")).status === 200));
  const rollback = (body, headers = {}) =>
    gw.fetch("/__gateway/config/rollback", { method: "POST", headers: { ...ADMIN, ...headers }, body });

  await problem(await rollback(JSON.stringify({ digest: `sha256:${"0".repeat(64)}` })), 404, "config_version_not_found");
  // What is not a digest (or a prefix of 8+ of its digits) is bad input, not an unknown version.
  for (const d of ["sha256:12", "latest", `${digest(a)}0`]) {
    const body = await problem(await rollback(JSON.stringify({ digest: d })), 400, "bad_request");
    assert.match(body.detail, /64 hex digits, or a prefix of at least 8/);
  }
  await problem(await rollback("not json"), 400, "bad_request");
  await problem(await rollback(JSON.stringify({ digest: digest(a), extra: 1 })), 400, "bad_request");
  await problem(await rollback(JSON.stringify({ digest: digest(a) }), { "if-match": `"${digest(a)}"` }), 412, "precondition_failed");
  await problem(await rollback(JSON.stringify({ digest: digest(a) }), { "if-match": "current" }), 400, "bad_request");

  const r = await rollback(JSON.stringify({ digest: digest(a).slice(0, 20) }));
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { digest: digest(a), previous: digest(b), changed: true, note: "every isolate applies it at its next reload; KV takes up to about 60 s to reach every location" });
  assert.equal(await gw.kv.get("routes"), a);
  const history = await (await gw.fetch("/__gateway/config/history", { headers: ADMIN })).json();
  assert.deepEqual(history.map((h) => h.digest), [digest(a), digest(b), digest(a)]);
  assert.equal(history[0].note, `rollback to ${digest(a)}`);
  assert.ok(await eventually(async () => (await gw.fetch("/a")).status === 200));
});

test("a rollback over a history index that is not an index is 409 history_unreadable, naming the key and the parse error", async () => {
  const gw = await started({ routes: doc("start") });
  const a = doc("a");
  assert.equal((await put(gw, a, "*")).status, 200);
  // A hand edit cut short: KV answers, but routes:history is not JSON any more.
  const broken = (await gw.kv.get("routes:history")).slice(0, -1);
  await gw.kv.put("routes:history", broken);
  const r = await gw.fetch("/__gateway/config/rollback", { method: "POST", headers: ADMIN, body: JSON.stringify({ digest: digest(a) }) });
  const body = await problem(r, 409, "history_unreadable");
  assert.match(body.detail, /^routes:history is not a valid history index: .*line 1 column \d+; nothing changed/);
  assert.doesNotMatch(body.detail, /could not be read/);
  assert.equal(await gw.kv.get("routes"), a, "nothing changed");
  assert.equal(await gw.kv.get("routes:history"), broken);
  // Listing it says the same (it said 503 config_store_unavailable, "reading the history failed").
  const listed = await problem(await gw.fetch("/__gateway/config/history", { headers: ADMIN }), 409, "history_unreadable");
  assert.equal(listed.detail, body.detail);
});

test("a rollback to a listed version whose copy is missing or another text is 409 history_copy_missing / history_copy_corrupt, not 404", async () => {
  const gw = await started({ routes: doc("start") });
  const [a, b] = [doc("a"), doc("b")];
  assert.equal((await put(gw, a, "*")).status, 200);
  assert.equal((await put(gw, b, "*")).status, 200);
  const rollback = (d) => gw.fetch("/__gateway/config/rollback", { method: "POST", headers: ADMIN, body: JSON.stringify({ digest: d }) });
  // routes@<a> written over with b's text: listed, stored, but not version a.
  await gw.kv.put(`routes@${digest(a)}`, b);
  let body = await problem(await rollback(digest(a).slice(0, 20)), 409, "history_copy_corrupt");
  assert.equal(body.digest, digest(a));
  assert.match(body.detail, new RegExp(`routes@${digest(a)} is corrupt: its text hashes to ${digest(b)}.*nothing changed`));
  // Deleted: missing.
  await gw.kv.delete(`routes@${digest(a)}`);
  body = await problem(await rollback(digest(a)), 409, "history_copy_missing");
  assert.equal(body.digest, digest(a));
  assert.match(body.detail, new RegExp(`routes@${digest(a)} is missing; nothing changed`));
  assert.equal(await gw.kv.get("routes"), b, "nothing changed");
  // A digest the history does not list is still 404.
  await problem(await rollback(digest(doc("never"))), 404, "config_version_not_found");
});

test("a push or a KV value that is not UTF-8, or a KV value that starts with a BOM, is refused with the reason; a rollback naming two digests is 400", async () => {
  const gw = await started({ routes: doc("start") });
  const { etag } = await getConfig(gw);
  // The document with one header value saved in Latin-1: `café` with the byte 0xE9.
  const text = JSON.stringify(
    config({
      settings: { admin: { path: "/__gateway", token_secret: "ADMIN_TOKEN" } },
      upstreams: { u: { targets: [{ url: up.url }] } },
      routes: [{ id: "latin", path: "/latin", upstream: "u", auth: "none", request_headers: { set: { "x-a": "caf@" } } }],
    }),
  );
  const latin1 = Buffer.from(text.replace("caf@", "caf\u00e9"), "latin1");
  let body = await problem(await put(gw, latin1, etag), 422, "invalid_document");
  assert.match(body.errors[0].message, /U\+FFFD.*not UTF-8/);
  assert.equal(await gw.kv.get("routes"), doc("start"), "the document in force is untouched");

  // The same bytes written around the API: refused by the isolate, which keeps what it serves.
  assert.equal((await gw.fetch("/start")).status, 200);
  await gw.kv.put("routes", latin1);
  assert.ok(
    await eventually(async () => {
      const h = await (await gw.fetch("/__gateway/health", { headers: ADMIN })).json();
      return h.status === "degraded" && /U\+FFFD/.test(h.last_reload_error?.errors?.[0] ?? "");
    }),
  );
  assert.equal((await gw.fetch("/start")).status, 200);
  assert.equal((await gw.fetch("/latin")).status, 404);
  // KV's text() keeps a byte-order mark: refused with that reason (it was "expected value at
  // line 1 column 1").
  await gw.kv.put("routes", Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(doc("bom"))]));
  assert.ok(
    await eventually(async () => {
      const h = await (await gw.fetch("/__gateway/health", { headers: ADMIN })).json();
      return /byte-order mark/.test(h.last_reload_error?.errors?.[0] ?? "");
    }),
  );
  assert.equal((await gw.fetch("/bom")).status, 404);
  await gw.kv.put("routes", doc("start"));

  // A push's query is one note: a second note or another parameter is refused, not dropped.
  for (const query of ["?note=a&note=b", "?nte=typo", "?note=a&force=1"]) {
    await problem(await put(gw, doc("q"), "*", query), 400, "bad_request");
  }
  assert.equal(await gw.kv.get("routes"), doc("start"));

  // A rollback body naming the digest twice names no version.
  assert.equal((await put(gw, doc("a"), "*")).status, 200);
  assert.equal((await put(gw, doc("b"), "*")).status, 200);
  const twice = `{"digest":"${digest(doc("a"))}","digest":"${digest(doc("b"))}"}`;
  await problem(await gw.fetch("/__gateway/config/rollback", { method: "POST", headers: ADMIN, body: twice }), 400, "bad_request");
  assert.equal(await gw.kv.get("routes"), doc("b"));
});

// A CONFIG namespace whose `routes` holds a refused document and whose `routes:last-good`
// cannot be read (a KV fault): the wrapped binding stands in for KV.
const FAULTY_KV = `
export default function (env) {
  const get = async (key) => {
    if (key === "routes") return env.ROUTES;
    if (key === "routes:last-good") throw new Error("injected KV read failure");
    return null;
  };
  return {
    get,
    async getWithMetadata(key) { return { value: await get(key), metadata: null }; },
    async put() { throw new Error("read-only"); },
    async delete() {},
    async list() { return { keys: [], list_complete: true }; },
  };
}`;

test("a cold isolate whose routes is refused and whose last good document cannot be read answers 503, never the embedded routes", async () => {
  const main = gatewayOptions({ bindings: { ADMIN_TOKEN: TOKEN } });
  delete main.kvNamespaces;
  const broken = JSON.stringify({ version: 1, routes: [{ id: "broken" }] });
  const mf = new Miniflare({
    workers: [
      { name: "gateway", ...main, wrappedBindings: { CONFIG: { scriptName: "faulty-kv", bindings: { ROUTES: broken } } } },
      { name: "faulty-kv", modules: true, script: FAULTY_KV },
    ],
  });
  cleanup.push(() => mf.dispose());
  const r = await mf.dispatchFetch("http://gateway.test/v1/users/42");
  const h = await mf.dispatchFetch("http://gateway.test/__gateway/health", { headers: ADMIN });
  const source = h.headers.get("x-config-source");
  await h.arrayBuffer();
  assert.equal(source, null, "no configuration is in force, so not the embedded one");
  assert.equal(r.status, 503, `the embedded demo route answered ${r.status}`);
  assert.equal((await r.json()).code, "config_store_unavailable");
});

test("a gateway deployed without the CONFIG namespace says so on every config endpoint (503), not 500 or a failed read", async () => {
  const main = gatewayOptions({ bindings: { ADMIN_TOKEN: TOKEN } });
  delete main.kvNamespaces;
  const mf = new Miniflare({ name: "gateway", ...main });
  cleanup.push(() => mf.dispose());
  // The embedded routes.json serves (as documented), and its admin path answers.
  assert.equal((await mf.dispatchFetch("http://gateway.test/__gateway/health", { headers: ADMIN })).status, 200);
  for (const [method, path, body] of [
    ["GET", "/config"],
    ["GET", "/config/history"],
    ["PUT", "/config", doc("a")],
    ["POST", "/config/rollback", JSON.stringify({ digest: digest(doc("a")) })],
  ]) {
    const r = await mf.dispatchFetch(`http://gateway.test/__gateway${path}`, { method, headers: { ...ADMIN, "if-match": "*" }, body });
    const answer = await problem(r, 503, "config_store_unavailable");
    assert.match(answer.detail, /CONFIG KV namespace binding \(see wrangler\.toml\); nothing changed/, `${method} ${path}`);
  }
});

test("a fresh gateway over KV with an invalid hand-written routes serves last-good, and says so", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gw-control-"));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const good = doc("good");
  const first = await started({ persist: dir });
  assert.equal((await put(first, good, "*")).status, 200);
  // What `wrangler kv key put` of a broken file does: no validation, no history.
  const broken = JSON.stringify({ version: 1, routes: [{ id: "broken" }] });
  await first.kv.put("routes", broken);
  await first.close();

  const second = await started({ persist: dir });
  assert.equal((await second.fetch("/good")).status, 200, "the last good routes serve, not the embedded demo");
  assert.equal((await second.fetch("/v1/users/42")).status, 404, "the embedded document is not in force");
  const h = await second.fetch("/__gateway/health", { headers: ADMIN });
  assert.equal(h.headers.get("x-config-source"), "last-good");
  const health = await h.json();
  assert.equal(health.status, "degraded");
  assert.equal(health.config.source, "last-good");
  assert.equal(health.config.digest, short(good));
  assert.equal(health.last_reload_error.digest, short(broken));
  const c = await getConfig(second);
  assert.deepEqual([c.text, c.source, c.rejected], [good, "last-good", `"${digest(broken)}"`]);
  await second.kv.delete("routes");
  await second.close();

  // `routes` missing, history present: the same.
  const third = await started({ persist: dir });
  assert.equal((await third.fetch("/good")).status, 200);
  assert.equal((await third.fetch("/__gateway/health", { headers: ADMIN })).headers.get("x-config-source"), "last-good");
});

/**
 * Runs gatewayctl without blocking this process (the upstreams it may talk to live here);
 * resolves { status, stdout, stderr }.
 */
function ctl(args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(GATEWAYCTL, args, { env: { PATH: process.env.PATH, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (status) => {
      assert.ok(!stdout.includes(TOKEN) && !stderr.includes(TOKEN), "the token is never printed");
      resolve({ status, stdout, stderr });
    });
  });
}

test("gatewayctl validates, diffs, pushes, lists and rolls back against the running gateway", async () => {
  const gw = await started({ routes: doc("one") });
  const env = { GATEWAY_URL: gw.url, GATEWAY_ADMIN_TOKEN: TOKEN };
  const dir = mkdtempSync(join(tmpdir(), "gatewayctl-"));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "routes.json");
  const next = doc("one", "two");
  writeFileSync(file, next);
  const bad = join(dir, "bad.json");
  writeFileSync(bad, JSON.stringify({ version: 1, routes: [] }));

  let r = await ctl(["validate", file]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /valid \(2 routes/);
  r = await ctl(["validate", bad]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /upstreams/);
  const latin1 = join(dir, "latin1.json");
  writeFileSync(latin1, Buffer.from(next.replace('"one"', '"caf\u00e9"'), "latin1"));
  r = await ctl(["validate", latin1]);
  assert.equal(r.status, 1, "a file that is not UTF-8 is an invalid document, not a usage error");
  assert.match(r.stderr, /not UTF-8 \(the byte at offset \d+ is not\)/);

  r = await ctl(["diff", file], env);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^routes:\n {2}\+ two\n/m);
  assert.ok(!r.stdout.includes("\x1b["), "plain when piped");

  r = await ctl(["push", file, "--note", "add two"], env);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\+ two/);
  assert.match(r.stdout, new RegExp(`pushed ${digest(next)}`));
  assert.equal(await gw.kv.get("routes"), next);
  r = await ctl(["push", file], env);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /already current; nothing pushed/);

  r = await ctl(["push", bad], env);
  assert.equal(r.status, 1, "validated locally before anything is sent");
  writeFileSync(file, doc("three"));
  r = await ctl(["push", file, "--if-match", digest(doc("one"))], env);
  assert.equal(r.status, 3, r.stderr);
  assert.match(r.stderr, /conflict/);
  assert.equal(await gw.kv.get("routes"), next, "a conflict writes nothing");
  // An --if-match that names no version is a usage error, not a conflict; * pushes over any.
  r = await ctl(["push", file, "--if-match", digest(next).slice(0, 20)], env);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--if-match ".*" names no version/);
  writeFileSync(file, doc("star"));
  r = await ctl(["push", file, "--if-match", "*"], env);
  assert.equal(r.status, 0, `it was exit 3, conflict: ${r.stderr}`);
  assert.equal(await gw.kv.get("routes"), doc("star"));
  writeFileSync(file, next);
  assert.equal((await ctl(["push", file], env)).status, 0);

  r = await ctl(["history"], env);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^\\* ${digest(next)} .* add two$`, "m"));

  r = await ctl(["rollback", digest(doc("one"))], env);
  assert.equal(r.status, 2, "only pushed versions are in the history");
  assert.match(r.stderr, /config_version_not_found/);
  writeFileSync(file, doc("four"));
  assert.equal((await ctl(["push", file], env)).status, 0);
  r = await ctl(["rollback", digest(next).slice(0, 15)], env);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`rolled back to ${digest(next)}`));
  assert.equal(await gw.kv.get("routes"), next);

  // Bad input: no token, a wrong token, a URL that is not the gateway, nothing listening.
  r = await ctl(["history"], { GATEWAY_URL: gw.url });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /admin token is needed/);
  r = await ctl(["history"], { ...env, GATEWAY_ADMIN_TOKEN: "wrong" });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /admin token was refused/);
  r = await ctl(["diff", file], { ...env, GATEWAY_URL: up.url });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /not .*edge-gateway/);
  r = await ctl(["history", "--url", "http://127.0.0.1:9"], env);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^gatewayctl: cannot reach http:\/\/127\.0\.0\.1:9\/__gateway\/config/);
  assert.equal(r.stderr.trim().split("\n").length, 1, "one line");
  r = await ctl(["bogus"]);
  assert.equal(r.status, 2);
});

/**
 * Wrong guesses from `addr` in parallel waves until one is refused (at most 10 waves): the
 * bucket is then empty, whatever two a second refilled while the waves ran. The statuses seen.
 */
async function guessUntilRefused(gw, addr) {
  const statuses = [];
  for (let wave = 0; wave < 10 && !statuses.includes(429); wave++) {
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        gw.fetch("/__gateway/keys", { headers: { "cf-connecting-ip": addr, authorization: `Bearer more-${wave}-${i}` } }),
      ),
    );
    for (const r of answers) {
      statuses.push(r.status);
      await r.arrayBuffer();
    }
  }
  return statuses;
}

/** A gateway with the admin token and one route, for the admin-attempt tests (`options`: `limiter`). */
async function attemptsGateway(options = {}) {
  const { startGateway } = await import("./harness.mjs");
  const gw = await startGateway({
    ...options,
    bindings: { ADMIN_TOKEN: TOKEN },
    routes: config({
      settings: { admin: { path: "/__gateway", token_secret: "ADMIN_TOKEN" } },
      upstreams: { u: { targets: [{ url: up.url }] } },
      routes: [{ id: "r", path: "/r", upstream: "u", auth: "none" }],
    }),
  });
  cleanup.push(() => gw.close());
  return gw;
}

/** Headers as the client at `addr` sends them, through Cloudflare. */
const from = (addr, extra = {}) => ({ headers: { "cf-connecting-ip": addr, ...extra } });
const guesser = "203.0.113.66";

test("admin attempts are limited per client address before the token is looked at", async () => {
  const gw = await attemptsGateway();
  // 120 wrong guesses in a burst are each 401 (in a few parallel waves, as a guesser would).
  for (let wave = 0; wave < 4; wave++) {
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => gw.fetch("/__gateway/keys", from(guesser, { authorization: `Bearer guess-${wave}-${i}` }))),
    );
    for (const r of answers) {
      assert.equal(r.status, 401);
      await r.arrayBuffer();
    }
  }
  // Once the bucket is empty (the burst spent, and what refilled while the waves ran), the
  // next attempt is refused before its token is read: the right token too.
  assert.ok((await guessUntilRefused(gw, guesser)).includes(429));
  const refused = await gw.fetch("/__gateway/keys", from(guesser, ADMIN));
  assert.equal(refused.status, 429);
  assert.ok(Number(refused.headers.get("retry-after")) >= 1);
  assert.match(refused.headers.get("ratelimit-policy") ?? "", /"admin-attempts";q=120;w=60/);
  const body = await refused.json();
  assert.equal(body.code, "rate_limited");
  assert.equal(body.policy, "admin-attempts");
  // So is the health endpoint's detail, which tells an admin from anyone else.
  assert.equal((await gw.fetch("/__gateway/health", from(guesser, ADMIN))).status, 429);
  // Without credentials nothing is spent or refused: the public health summary still answers.
  const open = await gw.fetch("/__gateway/health", from(guesser));
  assert.equal(open.status, 200);
  assert.deepEqual(await open.json(), { status: "ok" });
  // Another address has its own attempts; the routes are not touched by any of this.
  const other = await gw.fetch("/__gateway/keys", from("198.51.100.7", ADMIN));
  assert.equal(other.status, 200, await other.text());
  assert.equal((await gw.fetch("/r", from(guesser))).status, 200);
});

/**
 * An admin request whose chunked body never ends: 1 MiB pieces until `stopAfter` bytes are
 * sent, then nothing, and never the last chunk. Resolves to the answer's status and body, or
 * `hung` if none came within 20 s.
 *
 * The writer stops (a body past the limit that is slow, not one still pouring in) because an
 * answer to a client still writing is a race no server wins without a lingering close, which
 * workerd does not do: the gateway drains up to 16 MiB, answers and closes, the pieces still
 * on their way meet a reset, and the reset may throw the answer away before it is read. Here
 * the gateway reads every byte sent, waits out its drain's time bound (10 s) and answers.
 */
function endless(base, method, path, stopAfter) {
  const u = new URL(base);
  return new Promise((resolve) => {
    const headers = { ...ADMIN, "transfer-encoding": "chunked", "if-match": "*", "content-type": "application/json" };
    const req = http.request({ host: u.hostname, port: u.port, method, path, headers, agent: false });
    const done = (result) => {
      clearTimeout(timer);
      clearInterval(pump);
      req.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done({ hung: true }), 20_000);
    let answer = null;
    req.on("response", (res) => {
      const chunks = [];
      answer = () => ({ status: res.statusCode, body: Buffer.concat(chunks).toString() });
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => done(answer()));
    });
    req.on("error", (e) => done(answer ? answer() : { error: e.code ?? e.message }));
    const piece = Buffer.alloc(1 << 20, " ");
    let sent = 0;
    const pump = setInterval(() => {
      while (req.writableLength < 4 << 20 && !req.destroyed && sent < stopAfter) {
        req.write(piece);
        sent += piece.length;
      }
    }, 5);
  });
}

test("an admin body streamed without a length is cut at its limit, not read whole first", async () => {
  const gw = await started();
  // Both at once: each waits out the drain's time bound.
  const [keys, push] = await Promise.all([
    endless(gw.url, "POST", "/__gateway/keys", 1 << 20),
    endless(gw.url, "PUT", "/__gateway/config", (25 << 20) + (1 << 20)),
  ]);
  assert.equal(keys.status, 400, JSON.stringify(keys).slice(0, 300));
  assert.match(keys.body, /over 16 KiB/);
  assert.equal(push.status, 413, JSON.stringify(push).slice(0, 300));
  assert.equal(JSON.parse(push.body).code, "payload_too_large");
  // The gateway is unharmed.
  assert.equal((await gw.fetch("/__gateway/config", { headers: ADMIN })).status, 200);
});

test("without the limiter each isolate still limits admin attempts per address", async () => {
  const gw = await attemptsGateway({ limiter: false });
  // A store that does not answer (down, or kept busy by a flood) lifts no limit: the right
  // token passes, and once the burst of 120 is spent (and what two a second refilled during
  // the waves) guesses are refused, and so is the right token.
  const first = await gw.fetch("/__gateway/keys", from(guesser, ADMIN));
  assert.equal(first.status, 200, await first.text());
  const statuses = [];
  for (let wave = 0; wave < 4; wave++) {
    const answers = await Promise.all(
      Array.from({ length: 35 }, (_, i) => gw.fetch("/__gateway/keys", from(guesser, { authorization: `Bearer guess-${wave}-${i}` }))),
    );
    for (const r of answers) {
      statuses.push(r.status);
      await r.arrayBuffer();
    }
  }
  statuses.push(...(await guessUntilRefused(gw, guesser)));
  assert.deepEqual([...new Set(statuses)].sort(), [401, 429], JSON.stringify(statuses));
  const refused = await gw.fetch("/__gateway/keys", from(guesser, ADMIN));
  assert.equal(refused.status, 429);
  assert.equal((await refused.json()).policy, "admin-attempts");
  const other = await gw.fetch("/__gateway/keys", from("198.51.100.7", ADMIN));
  assert.equal(other.status, 200, await other.text());
  const health = await (await gw.fetch("/__gateway/health", from("198.51.100.7", ADMIN))).json();
  assert.ok(health.isolate_counters.rate_limit_store_errors >= 122, JSON.stringify(health));
});
