// Runs inside the client pod: one TCP connection to a sink (`ambit sample sink`), writes with
// backpressure until `maxBytes` or `maxMs`, half-closes, and waits for the sink's byte count.
// Prints {sent, received, seconds}; seconds run from connect to the count, so every byte has landed.
// Usage: node stream.ts HOST PORT MAX_BYTES MAX_MS

import { connect } from 'node:net';

const [host = '', port = '', maxBytes = '', maxMs = ''] = process.argv.slice(2);
const limitBytes = Number(maxBytes);
const limitMs = Number(maxMs);
// The same bytes every time: the data path copies them, it never looks at them.
const chunk = Buffer.alloc(256 * 1024, 0x61);
let sent = 0;
let start = 0;
let reply = '';

const socket = connect({ host, port: Number(port), allowHalfOpen: true });
const pump = (): void => {
  while (sent < limitBytes && performance.now() - start < limitMs) {
    const piece = limitBytes - sent >= chunk.length ? chunk : chunk.subarray(0, limitBytes - sent);
    sent += piece.length;
    if (!socket.write(piece)) {
      socket.once('drain', pump);
      return;
    }
  }
  socket.end();
};
socket.on('connect', () => {
  start = performance.now();
  pump();
});
socket.on('data', (d: Buffer) => {
  reply += d.toString('latin1');
});
socket.on('end', () => {
  const seconds = (performance.now() - start) / 1000;
  console.log(JSON.stringify({ sent, received: Number(reply.trim()), seconds }));
});
socket.on('error', (err) => {
  console.error(`stream to ${host}:${port} failed after ${sent} bytes: ${err.message}`);
  process.exitCode = 1;
});
