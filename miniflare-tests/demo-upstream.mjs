// The demo upstream `make dev` starts: a tiny JSON service on 127.0.0.1 that the README's
// curl examples reach through the gateway.
//   GET  /users/{id}   -> a user document
//   *    /echo/...     -> what the upstream received (method, path, headers, body)
//   GET  /healthz      -> {"ok": true}
//   GET  /ws           -> a WebSocket that echoes every message (upgrade requests only)
// The same paths under /v2 are "version 2" (the demo-v2 upstream of routes.json): every JSON
// answer says which version served it in "served_by".

import http from "node:http";
import { WebSocketServer } from "ws";

const port = Number(process.argv[2] || 8788);

const server = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = Buffer.concat(chunks).toString();
  const url = new URL(req.url, "http://demo");
  const version = url.pathname.startsWith("/v2/") ? "v2" : "v1";
  if (version === "v2") url.pathname = url.pathname.slice(3);
  const json = (status, value) => {
    res.writeHead(status, { "content-type": "application/json", server: "demo-upstream/1.0" });
    res.end(JSON.stringify({ served_by: version, ...value }, null, 2) + "\n");
  };
  const user = url.pathname.match(/^\/users\/([^/]+)$/);
  if (user) return json(200, { id: decodeURIComponent(user[1]), name: `User ${user[1]}`, plan: "pro" });
  if (url.pathname.startsWith("/echo")) {
    return json(200, { method: req.method, path: url.pathname, query: url.search, headers: req.headers, body });
  }
  if (url.pathname === "/healthz") return json(200, { ok: true });
  json(404, { error: "no such demo resource" });
});

// WebSocket echo on /ws (and /v2/ws).
const sockets = new WebSocketServer({ noServer: true });
server.on("upgrade", (req, socket, head) => {
  const path = new URL(req.url, "http://demo").pathname;
  if (path !== "/ws" && path !== "/v2/ws") return socket.destroy();
  sockets.handleUpgrade(req, socket, head, (ws) => {
    ws.send("connected to the demo upstream: send anything, it comes back");
    ws.on("message", (data, binary) => ws.send(binary ? data : `echo: ${data}`, { binary }));
  });
});

server.listen(port, "127.0.0.1", () => console.log(`demo upstream on http://127.0.0.1:${port}`));
