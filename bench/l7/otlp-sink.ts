// Runs inside a lab pod: an OTLP/HTTP trace collector for the L7 benchmark that only counts. Decoding
// and printing every span (as test/helpers/otlp.ts does) would load the cores the waypoint shares with
// ~8,000 JSON lines a second at saturation; this walks the protobuf just deep enough to count spans by kind.
// POST /v1/traces takes an ExportTraceServiceRequest and answers an empty ExportTraceServiceResponse;
// GET /stats answers {exports, spans, server, client, bytes, malformed}; POST /reset zeroes them.
// Usage: node otlp-sink.ts HOST PORT

import { createServer } from 'node:http';

const [host = '', port = ''] = process.argv.slice(2);

const stats = { exports: 0, spans: 0, server: 0, client: 0, bytes: 0, malformed: 0 };

/** opentelemetry-proto field numbers on the path to a span's kind. */
const RESOURCE_SPANS = 1;
const SCOPE_SPANS = 2;
const SPANS = 2;
const SPAN_KIND = 6;
const KIND_SERVER = 2;
const KIND_CLIENT = 3;

function varint(b: Buffer, at: number): [value: number, next: number] {
  let value = 0;
  let shift = 0;
  for (;;) {
    if (at >= b.length) throw new Error('truncated varint');
    const byte = b[at++]!;
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return [value, at];
    shift += 7;
  }
}

/** Calls `each(field, start, end)` for every length-delimited field of the message in b[start, end). */
function fields(b: Buffer, start: number, end: number, each: (field: number, s: number, e: number) => void) {
  let at = start;
  while (at < end) {
    const [tag, next] = varint(b, at);
    at = next;
    const wire = tag & 7;
    if (wire === 0) at = varint(b, at)[1];
    else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === 2) {
      const [length, body] = varint(b, at);
      at = body + length;
      if (at > end) throw new Error('truncated field');
      each(Math.floor(tag / 8), body, at);
    } else throw new Error(`wire type ${wire}`);
  }
}

/** The span's kind (0 when unset). */
function kindOf(b: Buffer, start: number, end: number): number {
  let at = start;
  while (at < end) {
    const [tag, next] = varint(b, at);
    at = next;
    const wire = tag & 7;
    if (wire === 0) {
      const [value, after] = varint(b, at);
      if (Math.floor(tag / 8) === SPAN_KIND) return value;
      at = after;
    } else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === 2) {
      const [length, body] = varint(b, at);
      at = body + length;
    } else throw new Error(`wire type ${wire}`);
  }
  return 0;
}

function count(b: Buffer): void {
  fields(b, 0, b.length, (f, s, e) => {
    if (f !== RESOURCE_SPANS) return;
    fields(b, s, e, (f2, s2, e2) => {
      if (f2 !== SCOPE_SPANS) return;
      fields(b, s2, e2, (f3, s3, e3) => {
        if (f3 !== SPANS) return;
        stats.spans++;
        const kind = kindOf(b, s3, e3);
        if (kind === KIND_SERVER) stats.server++;
        else if (kind === KIND_CLIENT) stats.client++;
      });
    });
  });
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (d: Buffer) => chunks.push(d));
  req.on('end', () => {
    if (req.method === 'GET' && req.url === '/stats') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
      return;
    }
    if (req.method === 'POST' && req.url === '/reset') {
      for (const k of Object.keys(stats) as Array<keyof typeof stats>) stats[k] = 0;
      res.writeHead(204).end();
      return;
    }
    if (req.method !== 'POST' || req.url !== '/v1/traces') {
      res.writeHead(404).end();
      return;
    }
    const body = Buffer.concat(chunks);
    stats.exports++;
    stats.bytes += body.length;
    try {
      count(body);
    } catch {
      stats.malformed++;
    }
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
});
server.listen(Number(port), host, () => console.log(`otlp sink on ${host}:${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
