// Runs inside the client pod: an open-loop load generator for a TCP echo. CONNS persistent
// connections, requests of SIZE bytes scheduled at a fixed total RATE (request i is due at
// start + i/RATE, round-robin over the connections); a request waits for SIZE bytes back before the
// next one on its connection goes out. Latency runs from the *scheduled* time, so a stall delays
// every request queued behind it and shows up (no coordinated omission). The first WARMUP_MS of
// requests are sent but not recorded. Prints {requests, completed, seconds, latencies, sendLate} with
// every recorded sample in ms (the caller pools runs and takes percentiles).
// Usage: node echo-load.ts HOST PORT RATE CONNS SIZE WARMUP_MS DURATION_MS

import { connect, type Socket } from 'node:net';
import { openLoop } from '../open-loop.ts';

const [host = '', port = '', rate = '', conns = '', size = '', warmupMs = '', durationMs = ''] =
  process.argv.slice(2);
const perSecond = Number(rate);
const bytes = Number(size);
const interval = 1000 / perSecond;
const total = Math.round(((Number(warmupMs) + Number(durationMs)) / 1000) * perSecond);
const payload = Buffer.alloc(bytes, 0x62);

interface Lane {
  socket: Socket;
  due: number[];
  inflight?: { scheduled: number; sent: number };
  pending: number;
}

const latencies: number[] = [];
const sendLate: number[] = [];
let completed = 0;
let start = 0;
let finish: () => void = () => {};
const done = new Promise<void>((resolve) => {
  finish = resolve;
});

function sendNext(lane: Lane): void {
  if (lane.inflight || lane.due.length === 0) return;
  const scheduled = lane.due.shift()!;
  const sent = performance.now();
  lane.inflight = { scheduled, sent };
  lane.socket.write(payload);
}

function onData(lane: Lane, d: Buffer): void {
  lane.pending += d.length;
  while (lane.inflight && lane.pending >= bytes) {
    lane.pending -= bytes;
    const now = performance.now();
    const { scheduled, sent } = lane.inflight;
    if (scheduled >= start + Number(warmupMs)) {
      latencies.push(now - scheduled);
      sendLate.push(sent - scheduled);
    }
    lane.inflight = undefined;
    if (++completed === total) finish();
    sendNext(lane);
  }
}

const lanes: Lane[] = await Promise.all(
  Array.from(
    { length: Number(conns) },
    () =>
      new Promise<Lane>((resolve, reject) => {
        const socket = connect({ host, port: Number(port), noDelay: true });
        const lane: Lane = { socket, due: [], pending: 0 };
        socket.once('connect', () => resolve(lane));
        socket.once('error', reject);
        socket.on('data', (d: Buffer) => onData(lane, d));
      }),
  ),
);
for (const lane of lanes) {
  lane.socket.on('error', (err) => {
    console.error(`connection failed during the run: ${err.message}`);
    process.exit(1);
  });
}

start = openLoop(lanes, total, interval, sendNext);
const deadline = setTimeout(finish, Number(warmupMs) + Number(durationMs) + 15_000);
await done;
clearTimeout(deadline);
for (const lane of lanes) lane.socket.destroy();

const ms = (xs: number[]) => xs.map((x) => Math.round(x * 1000) / 1000);
console.log(
  JSON.stringify({
    requests: total,
    completed,
    seconds: (performance.now() - start) / 1000,
    latencies: ms(latencies),
    sendLate: ms(sendLate),
  }),
);
