// Runs inside the client pod: opens COUNT connections to a TCP echo (at most CONCURRENCY opening at
// once), proves each is live by echoing one byte, prints {open, echoed, failed, firstError}, then
// holds them for HOLD_MS (0: close at once) or until SIGTERM, and closes them all.
// Usage: node hold.ts HOST PORT COUNT CONCURRENCY HOLD_MS

import { connect, type Socket } from 'node:net';

const [host = '', port = '', count = '', concurrency = '', holdMs = ''] = process.argv.slice(2);
const total = Number(count);
const sockets: Socket[] = [];
let echoed = 0;
let failed = 0;
let firstError: string | undefined;

function openOne(): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ host, port: Number(port) });
    sockets.push(s);
    const fail = (why: string) => {
      failed++;
      firstError ??= why;
      s.destroy();
      resolve();
    };
    const timer = setTimeout(() => fail('no echo within 10 s'), 10_000);
    s.once('error', (err) => {
      clearTimeout(timer);
      fail(err.message);
    });
    s.once('connect', () => s.write('x'));
    s.once('data', (d: Buffer) => {
      clearTimeout(timer);
      if (d.toString() === 'x') echoed++;
      resolve();
    });
  });
}

let next = 0;
async function worker(): Promise<void> {
  while (next < total) {
    next++;
    await openOne();
  }
}
await Promise.all(Array.from({ length: Math.min(Number(concurrency), total) }, worker));
const open = sockets.filter((s) => !s.destroyed).length;
console.log(JSON.stringify({ open, echoed, failed, firstError }));

const closeAll = () => {
  for (const s of sockets) s.destroy();
  process.exit(0);
};
process.on('SIGTERM', closeAll);
setTimeout(closeAll, Number(holdMs));
