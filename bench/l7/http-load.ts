// Runs inside the client pod: an open-loop HTTP/1.1 load generator (wrk2 is not installed, and
// h2load's --rate paces connections, not requests), for one server (the L7 benchmark) or several (the
// overhead benchmark). CONNS_PER_TARGET keep-alive connections to each of TARGETS (`host:port`, comma-
// separated), `GET /` scheduled at a fixed total RATE (request i is due at start + i/RATE, round-robin
// over every connection, so each server gets RATE / targets); a connection sends its next request only
// after the previous response, and latency runs from the *scheduled* time, so a stall delays every
// request queued behind it and is counted (no coordinated omission). The first WARMUP_MS of requests are
// sent but not recorded. A response other than 200, or a request lost with its connection, counts as
// failed (the connection is opened again). Prints one JSON line: {requests, completed, failed,
// connectionErrors, firstFailure, seconds, perTarget, latencies}, every recorded sample in ms. Each
// HEADER (`Name: value`) is sent with every request.
// Usage: node http-load.ts RATE CONNS_PER_TARGET WARMUP_MS DURATION_MS TARGETS [HEADER...]

import { connect, type Socket } from 'node:net';
import { openLoop } from '../open-loop.ts';
import { parseResponse } from './http-response.ts';

const [rate = '', connsPerTarget = '', warmupMs = '', durationMs = '', targetList = '', ...headers] =
  process.argv.slice(2);
const targets = targetList.split(',').filter((t) => t !== '');
if (targets.length === 0)
  throw new Error('usage: http-load.ts RATE CONNS_PER_TARGET WARMUP_MS DURATION_MS TARGETS [HEADER...]');
for (const h of headers) {
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+: [^\r\n]*$/.test(h)) throw new Error(`not a header line: ${h}`);
}
const extraHeaders = headers.map((h) => `${h}\r\n`).join('');
const interval = 1000 / Number(rate);
const total = Math.round(((Number(warmupMs) + Number(durationMs)) / 1000) * Number(rate));

interface Lane {
  target: number;
  host: string;
  port: number;
  request: Buffer;
  socket: Socket;
  due: number[];
  inflight?: number;
  buffer: Buffer;
}

const latencies: number[] = [];
const perTarget = targets.map(() => 0);
let completed = 0;
let failed = 0;
let connectionErrors = 0;
let firstFailure: string | undefined;
let start = 0;
let finish: () => void = () => {};
const done = new Promise<void>((resolve) => {
  finish = resolve;
});

function fail(why: string): void {
  failed++;
  firstFailure ??= why;
}

function sendNext(lane: Lane): void {
  if (lane.inflight !== undefined || lane.due.length === 0 || lane.socket.connecting) return;
  lane.inflight = lane.due.shift()!;
  lane.socket.write(lane.request);
}

function answered(lane: Lane, ok: boolean): void {
  const scheduled = lane.inflight!;
  if (ok && scheduled >= start + Number(warmupMs)) latencies.push(performance.now() - scheduled);
  if (ok) perTarget[lane.target]!++;
  lane.inflight = undefined;
  if (++completed === total) finish();
  sendNext(lane);
}

function onData(lane: Lane, d: Buffer): void {
  lane.buffer = lane.buffer.length === 0 ? d : Buffer.concat([lane.buffer, d]);
  for (;;) {
    const r = parseResponse(lane.buffer);
    if (!r || lane.inflight === undefined) return;
    lane.buffer = lane.buffer.subarray(r.length);
    if (r.status !== 200) fail(`HTTP ${r.status} from ${lane.host}:${lane.port}`);
    answered(lane, r.status === 200);
  }
}

function open(lane: Lane): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: lane.host, port: lane.port, noDelay: true });
    lane.socket = socket;
    lane.buffer = Buffer.alloc(0);
    socket.once('connect', () => {
      resolve();
      sendNext(lane);
    });
    socket.on('data', (d: Buffer) => onData(lane, d));
    socket.once('error', (err) => {
      reject(err);
      connectionErrors++;
      firstFailure ??= `connection to ${lane.host}:${lane.port}: ${err.message}`;
    });
    // A closed connection loses its request in flight (failed) and is opened again for the rest.
    socket.once('close', () => {
      if (lane.socket !== socket || completed === total) return;
      if (lane.inflight !== undefined) {
        fail(`connection to ${lane.host}:${lane.port} closed with a request in flight`);
        answered(lane, false);
      }
      setTimeout(() => open(lane).catch(() => {}), 10);
    });
  });
}

// Lanes in round-robin order over the targets (target 0's first, target 1's first, …), so consecutive
// requests go to different servers and each server gets an equal share.
const lanes: Lane[] = [];
for (let k = 0; k < Number(connsPerTarget); k++) {
  for (const [target, hostPort] of targets.entries()) {
    const colon = hostPort.lastIndexOf(':');
    const host = hostPort.slice(0, colon);
    const port = Number(hostPort.slice(colon + 1));
    lanes.push({
      target,
      host,
      port,
      request: Buffer.from(
        `GET / HTTP/1.1\r\nHost: ${hostPort}\r\nUser-Agent: ambit-bench\r\n${extraHeaders}\r\n`,
      ),
      socket: undefined as unknown as Socket,
      due: [],
      buffer: Buffer.alloc(0),
    });
  }
}
await Promise.all(lanes.map(open));

start = openLoop(lanes, total, interval, sendNext);
const deadline = setTimeout(finish, Number(warmupMs) + Number(durationMs) + 15_000);
await done;
clearTimeout(deadline);
const seconds = (performance.now() - start) / 1000;
for (const lane of lanes) lane.socket.destroy();

console.log(
  JSON.stringify({
    requests: total,
    completed,
    failed,
    connectionErrors,
    firstFailure,
    seconds,
    perTarget,
    latencies: latencies.map((x) => Math.round(x * 1000) / 1000),
  }),
);
