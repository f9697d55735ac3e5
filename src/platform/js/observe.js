// The completion point's output: the access line through `console.log` and the data point
// into the Analytics Engine dataset, both written in Rust; and the client facts the line reads.

// The runtime's console renders an object for its local output with an inspector written in
// JS, which costs more than the rest of the request's logging together; this symbol (honoured
// by that inspector, ignored by serialisation) hands it the line as already written.
const INSPECT = Symbol.for("nodejs.util.inspect.custom");

/**
 * Logs an access line as an object, so that Workers Logs and tail consumers get its members as
 * fields; local output (wrangler dev, workerd) shows it as the one-line JSON it is.
 */
function logAccess(line) {
  const record = JSON.parse(line);
  // A plain assignment keeps the parsed object's fast shape (defineProperty cost ~6 µs more per
  // line in an interleaved A/B); serialisation skips symbol-keyed members either way.
  record[INSPECT] = () => line;
  console.log(record);
}

/** Writes a data point into the Analytics Engine dataset `binding`: 0 written, 1 missing, 2 refused. */
function writePoint(env, binding, point) {
  const dataset = env[binding];
  if (!dataset || typeof dataset.writeDataPoint !== "function") return 1;
  try {
    dataset.writeDataPoint(JSON.parse(point));
    return 0;
  } catch {
    return 2;
  }
}

/**
 * The completion point's output, in one crossing: the access line ("" for none) and the data
 * point ("" for none). Returns `writePoint`'s code, 0 when there is no point.
 */
export function emit(env, binding, line, point) {
  if (line) logAccess(line);
  return point ? writePoint(env, binding, point) : 0;
}

/** User-Agent, cf.country, cf.asn, cf.colo, then the named request headers ("1"+value or "0"). */
export function log_facts(request, names) {
  const cf = request.cf || {};
  const h = request.headers;
  const out = [h.get("user-agent") ?? "", cf.country ?? "", cf.asn ?? "", cf.colo ?? ""];
  if (names) for (const name of names.split("\n")) {
    const v = h.get(name);
    out.push(v === null ? "0" : "1" + v);
  }
  return out.join("\r");
}
