// The SOCKS5 handshake on loopback: the CONNECT target, one spelling per IPv4 address, refusals that
// answer and then really close (a half-open socket we no longer read would leak).

import assert from 'node:assert/strict';
import * as net from 'node:net';
import { describe, test } from 'node:test';
import { acceptSocks5, canonicalIpv4 } from '../../../src/ztunnel/socks5.ts';

/** Runs one handshake: the server side's result (target or error) and whether its socket closed. */
async function handshake(
  request: Buffer,
): Promise<{ target?: { address: string; port: number }; error?: string; reply: Buffer; closed: boolean }> {
  let closed = false;
  let result: { target?: { address: string; port: number }; error?: string } = {};
  let server: net.Server | undefined;
  const done = new Promise<void>((resolve) => {
    // A socket the server never closes is the bug this guards against: give up after a while.
    const timer = setTimeout(() => {
      server?.close();
      server?.unref();
      resolve();
    }, 3_000);
    server = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('close', () => {
        closed = true;
        clearTimeout(timer);
        server?.close();
        resolve();
      });
      acceptSocks5(s, 2_000).then(
        (r) => {
          result = { target: r.target };
          r.reply(0);
          s.destroy();
        },
        (err: Error) => {
          result = { error: err.message };
        },
      );
    });
    server.listen(0, '127.0.0.1', () => {
      const { port } = (server as net.Server).address() as net.AddressInfo;
      const c = net.connect(port, '127.0.0.1');
      c.unref();
      const chunks: Buffer[] = [];
      c.on('data', (d: Buffer) => chunks.push(d));
      c.on('error', () => {});
      c.on('close', () => Object.assign(result, { reply: Buffer.concat(chunks) }));
      c.write(Buffer.concat([Buffer.from([5, 1, 0]), request]));
      c.end(); // the client leaves cleanly; the server must still close its side
    });
  });
  await done;
  await new Promise((r) => setTimeout(r, 20));
  return { reply: Buffer.alloc(0), ...result, closed };
}

const ipv6 = (hex: string) => Buffer.from(hex.replace(/:/g, ''), 'hex');

describe('SOCKS5 handshake', () => {
  test('CONNECT to an IPv4 address, and the same address written as IPv4-mapped IPv6', async () => {
    const v4 = await handshake(Buffer.from([5, 1, 0, 1, 198, 18, 2, 2, 0x1f, 0x90]));
    assert.deepEqual(v4.target, { address: '198.18.2.2', port: 8080 });
    const mapped = await handshake(
      Buffer.concat([
        Buffer.from([5, 1, 0, 4]),
        ipv6('0000:0000:0000:0000:0000:ffff:c612:0202'),
        Buffer.from([0x1f, 0x90]),
      ]),
    );
    assert.deepEqual(mapped.target, { address: '198.18.2.2', port: 8080 });
    const named = Buffer.from('::ffff:198.18.2.2');
    const asName = await handshake(
      Buffer.concat([Buffer.from([5, 1, 0, 3, named.length]), named, Buffer.from([0x1f, 0x90])]),
    );
    assert.deepEqual(asName.target, { address: '198.18.2.2', port: 8080 });
  });

  test('refusals answer with the reason code and close the socket', async () => {
    const cases: Array<[string, Buffer, number]> = [
      ['BIND is not supported', Buffer.from([5, 2, 0, 1, 198, 18, 2, 2, 0, 80]), 7],
      ['an unknown command', Buffer.from([5, 9, 0, 1, 198, 18, 2, 2, 0, 80]), 7],
      [
        'real IPv6',
        Buffer.concat([
          Buffer.from([5, 1, 0, 4]),
          ipv6('2001:0002:0000:0000:0000:0000:0000:0001'),
          Buffer.from([0, 80]),
        ]),
        8,
      ],
      [
        'a host name',
        Buffer.concat([Buffer.from([5, 1, 0, 3, 7]), Buffer.from('example'), Buffer.from([0, 80])]),
        8,
      ],
    ];
    for (const [name, request, code] of cases) {
      const r = await handshake(request);
      assert.ok(r.error, name);
      assert.equal(r.reply[3], code, name); // after the method selection [5, 0]
      assert.equal(r.closed, true, `${name}: the server-side socket must close`);
    }
  });

  test('canonical IPv4 spelling', () => {
    const cases: Array<[string, string | undefined]> = [
      ['1.2.3.4', '1.2.3.4'],
      ['::ffff:1.2.3.4', '1.2.3.4'],
      ['0:0:0:0:0:ffff:102:304', '1.2.3.4'],
      ['::FFFF:0102:0304', '1.2.3.4'],
      ['2001:2::1', undefined],
      ['::1', undefined],
      ['not an address', undefined],
    ];
    for (const [input, want] of cases) assert.equal(canonicalIpv4(input), want, input);
  });
});
