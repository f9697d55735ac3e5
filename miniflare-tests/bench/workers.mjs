// What both parts of `make bench` (run.mjs, startup.mjs) start workerd with.

import { writeFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
export const workerdBin = join(dirname(require.resolve("@cloudflare/workerd-linux-64/package.json")), "bin", "workerd");

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Writes into `dir` the two JS workers every bench configuration embeds: `kv.js`, which serves
 * the gateway's KV binding (the key `routes` is its `ROUTES` text binding), and `jsproxy.js`,
 * the bare proxy the gateway is compared with (`/pass/…` → `upstreamUrl/users/…`).
 */
export function writeSupportWorkers(dir, upstreamUrl) {
  writeFileSync(
    join(dir, "kv.js"),
    `export default { async fetch(req, env) {
     const key = decodeURIComponent(new URL(req.url).pathname.slice(1));
     return key === "routes" ? new Response(env.ROUTES) : new Response(null, { status: 404 });
   } };`,
  );
  writeFileSync(
    join(dir, "jsproxy.js"),
    `export default { fetch(req) {
     const u = new URL(req.url);
     return fetch("${upstreamUrl}/users" + u.pathname.slice("/pass".length) + u.search, req);
   } };`,
  );
}
