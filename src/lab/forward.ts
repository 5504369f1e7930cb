// A Unix socket in front of a loopback TCP port of a lab namespace. The host has no route into the lab,
// but a socket file is reachable from any namespace: a process started in the lab's bridge namespace
// (`ambit lab forward`) lets the host's `ambit dashboard` and `ambit stat` reach the lab's Prometheus.

import { unlinkSync } from 'node:fs';
import { connect, createServer, isIP, type Server } from 'node:net';
import { AmbitError } from '../errors/index.ts';
import { LAB_ERRORS } from './errors.ts';

/** Listens on `socketPath` (0600, replacing a stale file) and pipes each connection to `host:port`. */
export function forwardUnixToTcp(socketPath: string, host: string, port: number): Promise<Server> {
  // Only ever to the namespace's own loopback.
  if (isIP(host) === 0 || !(host.startsWith('127.') || host === '::1'))
    throw new AmbitError(
      LAB_ERRORS.BAD_FORWARD,
      `a lab forward goes to a loopback address only, not "${host}"`,
    );
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new AmbitError(LAB_ERRORS.BAD_FORWARD, `a lab forward's port must be 1-65535, not "${port}"`);
  try {
    unlinkSync(socketPath);
  } catch {}
  const server = createServer((client) => {
    const upstream = connect({ host, port });
    // Each side's end is passed on once what it sent is written (pipe ends the other side); only an
    // error cuts both at once.
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const mask = process.umask(0o177);
    server.listen(socketPath, () => {
      process.umask(mask);
      resolve(server);
    });
  });
}
