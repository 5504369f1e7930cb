// A minimal SOCKS5 client for tests: CONNECT through a ztunnel's 15080 from a given local address
// (the source workload's address on loopback).

import * as net from 'node:net';

export function socksConnect(
  proxy: { host: string; port: number },
  target: { address: string; port: number },
  localAddress: string,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: proxy.host, port: proxy.port, localAddress, allowHalfOpen: true });
    let stage = 0;
    let buf = Buffer.alloc(0);
    s.once('error', reject);
    s.on('connect', () => s.write(Buffer.from([5, 1, 0])));
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (stage === 0 && buf.length >= 2) {
        buf = buf.subarray(2);
        stage = 1;
        const req = Buffer.alloc(10);
        req.set([5, 1, 0, 1]);
        for (const [i, octet] of target.address.split('.').entries()) req.writeUInt8(Number(octet), 4 + i);
        req.writeUInt16BE(target.port, 8);
        s.write(req);
      }
      if (stage === 1 && buf.length >= 10) {
        s.off('data', onData);
        const code = buf[1];
        const rest = buf.subarray(10);
        if (code !== 0) {
          s.destroy();
          reject(Object.assign(new Error(`SOCKS5 reply ${code}`), { socksReply: code }));
          return;
        }
        s.off('error', reject);
        if (rest.length > 0) s.unshift(rest);
        resolve(s);
      }
    };
    s.on('data', onData);
  });
}

/** Sends `payload`, half-closes, and collects everything until the other side ends. */
export function roundTrip(s: net.Socket, payload: string | Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
    s.end(payload);
  });
}
