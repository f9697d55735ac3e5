// The benchmark's upstream: a constant small JSON answer, in its own process so it does not
// share an event loop with the load generator.
import http from "node:http";

const body = JSON.stringify({ id: 42, name: "benchmark user", plan: "pro" });
const server = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2]), "127.0.0.1", () => process.send?.("ready"));
