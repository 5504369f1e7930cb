// SOCKS5 (RFC 1928) as explicit capture on 15080: a client that cannot be captured by the kernel
// (no root, no capture on the host) names its destination itself. Only CONNECT, only the
// "no authentication" method, and only IP literals: the mesh has no name resolution here.

import type { Socket } from 'node:net';
import { isIP } from 'node:net';
import { AmbitError } from '../errors/index.ts';
import { canonicalIp } from '../hbone/index.ts';
import { ZTUNNEL_ERRORS } from './errors.ts';
import type { Addr } from './plan.ts';

/** Reply codes the ztunnel uses (RFC 1928 §6). */
export const SOCKS_REPLY = {
  succeeded: 0,
  generalFailure: 1,
  notAllowed: 2,
  hostUnreachable: 4,
  connectionRefused: 5,
  commandNotSupported: 7,
  addressTypeNotSupported: 8,
} as const;

export interface SocksRequest {
  target: Addr;
  /** Sends the reply; on success the socket then carries the client's bytes. */
  reply(code: number): void;
}

/** Reads exactly `n` bytes (the handshake is tiny and strictly ordered). */
function reader(socket: Socket, timeoutMs: number) {
  let buffered = Buffer.alloc(0);
  let waiting: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  const fail = (e: Error) => {
    waiting?.reject(e);
    waiting = undefined;
  };
  const pump = () => {
    if (waiting && buffered.length >= waiting.n) {
      const out = buffered.subarray(0, waiting.n);
      buffered = buffered.subarray(waiting.n);
      const w = waiting;
      waiting = undefined;
      w.resolve(out);
    }
  };
  const onData = (d: Buffer) => {
    buffered = Buffer.concat([buffered, d]);
    pump();
  };
  const onEnd = () =>
    fail(new AmbitError(ZTUNNEL_ERRORS.SOCKS_PROTOCOL, 'the client closed during the SOCKS5 handshake'));
  const timer = setTimeout(
    () => fail(new AmbitError(ZTUNNEL_ERRORS.SOCKS_PROTOCOL, 'SOCKS5 handshake timed out')),
    timeoutMs,
  );
  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.once('error', fail);
  return {
    read: (n: number) =>
      new Promise<Buffer>((resolve, reject) => {
        waiting = { n, resolve, reject };
        pump();
      }),
    /** Stops reading and puts back anything read past the handshake. */
    done: () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', fail);
      socket.pause();
      if (buffered.length > 0) socket.unshift(buffered);
    },
  };
}

/** Runs the server side of the handshake up to the CONNECT request. Throws (and closes) on bad input. */
export async function acceptSocks5(socket: Socket, timeoutMs = 10_000): Promise<SocksRequest> {
  const r = reader(socket, timeoutMs);
  // Every refusal writes its answer and then closes the socket for good: a half-open socket we no
  // longer read would never see the client's FIN and would leak.
  const refuse = (code: number, message: string): never => {
    r.done();
    socket.write(Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]));
    socket.destroySoon();
    throw new AmbitError(ZTUNNEL_ERRORS.SOCKS_PROTOCOL, message);
  };
  try {
    const [version, nMethods] = await r.read(2);
    if (version !== 5) {
      r.done();
      socket.destroy();
      throw new AmbitError(ZTUNNEL_ERRORS.SOCKS_PROTOCOL, `not SOCKS5 (version byte ${version})`);
    }
    const methods = await r.read(nMethods!);
    if (!methods.includes(0)) {
      r.done();
      socket.write(Buffer.from([5, 0xff]));
      socket.destroySoon();
      throw new AmbitError(ZTUNNEL_ERRORS.SOCKS_PROTOCOL, 'the client offers no "no authentication" method');
    }
    socket.write(Buffer.from([5, 0]));
    const [, cmd, , atyp] = await r.read(4);
    if (cmd !== 1)
      refuse(SOCKS_REPLY.commandNotSupported, `SOCKS5 command ${cmd} is not supported; only CONNECT`);
    let address: string;
    if (atyp === 1) address = [...(await r.read(4))].join('.');
    else if (atyp === 4) {
      const b = await r.read(16);
      address = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16)).join(':');
    } else if (atyp === 3) {
      const [len] = await r.read(1);
      const name = (await r.read(len!)).toString('utf8');
      if (isIP(name) === 0)
        refuse(
          SOCKS_REPLY.addressTypeNotSupported,
          `SOCKS5 host names are not resolved ("${name}"); use an IP address`,
        );
      address = name;
    } else {
      return refuse(SOCKS_REPLY.addressTypeNotSupported, `SOCKS5 address type ${atyp} is unknown`);
    }
    const port = (await r.read(2)).readUInt16BE(0);
    if (port === 0) refuse(SOCKS_REPLY.generalFailure, 'SOCKS5 destination port 0');
    // One spelling per address: an IPv4-mapped IPv6 form must not slip past the IPv4 lookups.
    const ipv4 = canonicalIpv4(address);
    if (!ipv4)
      refuse(
        SOCKS_REPLY.addressTypeNotSupported,
        `SOCKS5 destination ${address} is not IPv4; the mesh is IPv4-only`,
      );
    r.done();
    return {
      target: { address: ipv4!, port },
      reply: (code) => {
        socket.write(Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]));
        if (code !== SOCKS_REPLY.succeeded) socket.destroySoon();
      },
    };
  } catch (err) {
    r.done();
    if (!socket.writableEnded) socket.destroy();
    throw err;
  }
}

/** The dotted-quad form of an IPv4 address, also when written as IPv4-mapped IPv6; undefined otherwise. */
export function canonicalIpv4(address: string): string | undefined {
  const ip = canonicalIp(address);
  return ip !== undefined && isIP(ip) === 4 ? ip : undefined;
}
