// The waypoint's HTTP core alone, in this process: CPU per request of `HttpProxy` (routing, the request
// gate's fast path, forwarding, Istio's four request metrics, the access log) without TLS or HTTP/2
// tunnels around it. Clients and the backend run here too, so the proxy's share is the difference
// between the same load through the proxy and straight to the backend, each run alternately.
//
//   npx node bench/l7/core-cost.ts [--requests 20000] [--conns 16] [--rounds 3] [--cpu-prof]
//
// Connections are in-memory pairs (client ↔ proxy); the backend is an HTTP server on 127.0.0.1.

import * as http from 'node:http';
import * as net from 'node:net';
import { type Duplex, duplexPair } from 'node:stream';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { Registry } from 'prom-client';
import { logger } from '../../src/log/index.ts';
import { compileRoutes } from '../../src/routing/index.ts';
import { RequestMetrics } from '../../src/telemetry/index.ts';
import { type ConnectionMeta, HttpProxy } from '../../src/waypoint/index.ts';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    conns: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '3' },
  },
  allowPositionals: false,
});
const REQUESTS = Number(values.requests);
const CONNS = Number(values.conns);
const ROUNDS = Number(values.rounds);

const REQUEST = Buffer.from(
  'GET /api/items?id=7 HTTP/1.1\r\nhost: web.shop\r\nuser-agent: bench\r\naccept: */*\r\n\r\n',
);

/** Sends `n` requests one after another over `conn` (keep-alive), waiting for each answer. */
function closedLoop(conn: Duplex, n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let left = n;
    let buffered = '';
    conn.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/content-length: *(\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        buffered = buffered.slice(end + 4 + length);
        if (--left === 0) {
          conn.destroy();
          resolve();
          return;
        }
        conn.write(REQUEST);
      }
    });
    conn.on('error', reject);
    conn.write(REQUEST);
  });
}

async function main(): Promise<void> {
  const backend = http.createServer({ keepAlive: true }, (_req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end('ok\n');
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const port = (backend.address() as net.AddressInfo).port;
  const registry = new Registry();
  const proxy = new HttpProxy({
    routes: (() => {
      const table = compileRoutes({ httpRoutes: [], grpcRoutes: [], services: () => undefined });
      return () => table;
    })(),
    endpoints: () => [
      {
        address: '127.0.0.1',
        port,
        identity: 'spiffe://cluster.local/ns/shop/sa/web',
        labels: { workload: 'web-v1', namespace: 'shop', app: 'web', version: 'v1' },
      },
    ],
    connect: (endpoint) =>
      new Promise((resolve, reject) => {
        const s = net.connect({ host: endpoint.address, port: endpoint.port, noDelay: true });
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      }),
    metrics: new RequestMetrics(registry),
    log: logger('bench'),
    // As the waypoint's: JSON lines, buffered, here to /dev/null.
    accessLog: pino(
      { base: { pid: process.pid } },
      pino.destination({ dest: '/dev/null', sync: false, minLength: 8192 }),
    ).child({
      component: 'access',
    }),
  });
  const meta: ConnectionMeta = {
    service: 'shop/web',
    port: 80,
    protocol: 'http',
    address: '198.19.0.9',
    source: {
      principal: 'spiffe://cluster.local/ns/shop/sa/client',
      ip: '198.18.1.2',
      workload: 'client',
      namespace: 'shop',
      app: 'client',
      version: 'v1',
    },
  };
  const perConn = Math.ceil(REQUESTS / CONNS);

  const viaProxy = async () => {
    await Promise.all(
      Array.from({ length: CONNS }, () => {
        const [client, server] = duplexPair();
        void proxy.serveConnection(server, meta);
        return closedLoop(client, perConn);
      }),
    );
  };
  const direct = async () => {
    await Promise.all(
      Array.from({ length: CONNS }, async () => {
        const s = net.connect({ host: '127.0.0.1', port, noDelay: true });
        await new Promise((r) => s.once('connect', r));
        return closedLoop(s, perConn);
      }),
    );
  };
  const cpuOf = async (run: () => Promise<void>) => {
    const before = process.cpuUsage();
    const t0 = performance.now();
    await run();
    const used = process.cpuUsage(before);
    return { cpuUs: used.user + used.system, wallMs: performance.now() - t0 };
  };
  await viaProxy(); // warm-up
  await direct();
  const rows: Array<{ proxied: number; direct: number }> = [];
  for (let r = 0; r < ROUNDS; r++) {
    const a = await cpuOf(viaProxy);
    const b = await cpuOf(direct);
    rows.push({ proxied: a.cpuUs / (perConn * CONNS), direct: b.cpuUs / (perConn * CONNS) });
  }
  for (const [i, r] of rows.entries())
    console.log(
      `round ${i + 1}: ${r.proxied.toFixed(1)} µs CPU a request through the core, ${r.direct.toFixed(1)} direct: the core's share ${(r.proxied - r.direct).toFixed(1)} µs`,
    );
  proxy.close();
  backend.close();
}

await main();
