// The rate-limit store calls' line protocol (src/platform/js/stores.js), in plain Node: one
// answer line per bucket asked, in order, whatever a bucket's failure looks like. Rust pairs the
// lines with the buckets by position, so an extra line (an error text holding a newline) would
// hand one bucket's grant to the next bucket, and a rejection would lose every bucket's answer
// — a refusal among them, which `on_store_error: "allow"` would then admit.

import { test } from "node:test";
import assert from "node:assert/strict";
import { take_tokens } from "../src/platform/js/stores.js";

/** A Durable Object namespace whose bucket `name` answers with `answers[name]()`. */
function namespace(answers) {
  return {
    idFromName: (name) => name,
    get: (name) => ({ fetch: () => answers[name]() }),
  };
}

const GRANT = "1,10,3,7,0,0,4,5";
const REFUSAL = "0,10,0,7,1,650,0,5";

test("an error text with a newline is still one line, and the next bucket keeps its answer", async () => {
  const env = {
    RL: namespace({
      a: () => Promise.reject(new Error("first line\r\nsecond line")),
      b: () => Promise.resolve(new Response(GRANT)),
    }),
  };
  const lines = (await take_tokens(env, "RL", "a\tl=1\nb\tl=1", 1000)).split("\n");
  assert.equal(lines.length, 2, JSON.stringify(lines));
  assert.match(lines[0], /^err\t/);
  assert.equal(lines[1], "ok\t" + GRANT);
});

test("a body that fails to read is that bucket's error, not every bucket's", async () => {
  const broken = new ReadableStream({
    pull(controller) {
      controller.error(new Error("connection lost"));
    },
  });
  const env = {
    RL: namespace({
      a: () => Promise.resolve(new Response(broken)),
      b: () => Promise.resolve(new Response(REFUSAL)),
    }),
  };
  const lines = (await take_tokens(env, "RL", "a\tl=1\nb\tl=1", 1000)).split("\n");
  assert.deepEqual(lines, ["err\tconnection lost", "ok\t" + REFUSAL]);
});

test("a refusal is that bucket's error with its status and text, on one line and cut short", async () => {
  const env = {
    RL: namespace({
      a: () => Promise.resolve(new Response("unsupported version: speaks v=1", { status: 501 })),
      b: () => Promise.resolve(new Response("x\n".repeat(500), { status: 500 })),
      c: () => Promise.resolve(new Response(GRANT)),
    }),
  };
  const lines = (await take_tokens(env, "RL", "a\tv=2\nb\tl=1\nc\tl=1", 1000)).split("\n");
  assert.equal(lines.length, 3, JSON.stringify(lines));
  assert.equal(lines[0], "err\tstatus 501 unsupported version: speaks v=1");
  assert.match(lines[1], /^err\tstatus 500 (x ){100}$/);
  assert.equal(lines[2], "ok\t" + GRANT);
});

test("an answer of another shape is passed on as it came, for Rust to refuse", async () => {
  // Rust reads "ok\t" lines as version 1 grants and takes any other shape as a store error.
  const env = { RL: namespace({ a: () => Promise.resolve(new Response("v2,1,10,3,7,0,0,4,5,extra")) }) };
  assert.equal(await take_tokens(env, "RL", "a\tl=1", 1000), "ok\tv2,1,10,3,7,0,0,4,5,extra");
});
