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
