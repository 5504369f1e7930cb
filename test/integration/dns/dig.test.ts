// The server as a real resolver client sees it: dig over UDP and TCP, and dig's own retry over TCP
// after a truncated answer. Loopback only; skipped, loudly, where dig is not installed (CI installs
// dnsutils).

import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { type TestContext, test } from 'node:test';
import { promisify } from 'node:util';
import { DnsServer, NameTable } from '../../../src/dns/index.ts';

const run = promisify(execFile);

function digInstalled(): boolean {
  try {
    execFileSync('dig', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const skip = digInstalled()
  ? false
  : 'dig is not installed (apt-get install dnsutils): the dig tests did NOT run';
if (skip) console.warn(`\n*** ${skip} ***\n`);

const MANY = Array.from({ length: 60 }, (_, i) => `198.19.2.${i + 1}`);
const table = new NameTable(
  [
    { name: 'httpbin.foo.svc.cluster.local', ipv4: ['198.19.0.10'], ipv6: ['2001:2::10'] },
    { name: 'many.foo.svc.cluster.local', ipv4: MANY, ipv6: [] },
  ],
  { authoritativeZones: ['cluster.local'] },
);
const upstreamTable = new NameTable([{ name: 'outside.test', ipv4: ['198.18.9.9'], ipv6: [] }]);

async function serve(
  t: TestContext,
  names: NameTable,
  upstreams: Array<{ host: string; port: number }> = [],
) {
  const server = new DnsServer({ host: '127.0.0.1', port: 0, table: () => names, upstreams });
  await server.start();
  t.after(() => server.close());
  return server;
}

/** dig's whole output, one try, a short wait: a server that does not answer fails the test instead of hanging it. */
async function dig(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('dig', [`@127.0.0.1`, '-p', String(port), '+tries=1', '+time=3', ...args]);
  return stdout;
}

function status(out: string): string | undefined {
  return /status: (\w+)/.exec(out)?.[1];
}

test('dig: A, AAAA, NXDOMAIN and NODATA over UDP', { skip }, async (t) => {
  const server = await serve(t, table);
  assert.equal((await dig(server.port, 'httpbin.foo.svc.cluster.local', '+short')).trim(), '198.19.0.10');
  assert.equal(
    (await dig(server.port, 'AAAA', 'httpbin.foo.svc.cluster.local', '+short')).trim(),
    '2001:2::10',
  );
  const nx = await dig(server.port, 'nope.foo.svc.cluster.local');
  assert.equal(status(nx), 'NXDOMAIN');
  assert.match(nx, /flags: qr aa rd;/);
  const nodata = await dig(server.port, 'AAAA', 'many.foo.svc.cluster.local');
  assert.equal(status(nodata), 'NOERROR');
  assert.match(nodata, /ANSWER: 0,/);
});

test('dig +tcp, and dig falling back to TCP after a truncated UDP answer', { skip }, async (t) => {
  const server = await serve(t, table);
  const viaTcp = await dig(server.port, '+tcp', 'httpbin.foo.svc.cluster.local');
  assert.equal(status(viaTcp), 'NOERROR');
  assert.match(viaTcp, /\(TCP\)/);
  const fallback = await dig(server.port, 'many.foo.svc.cluster.local');
  assert.match(fallback, /Truncated, retrying in TCP mode/);
  assert.match(fallback, /ANSWER: 60,/);
  const short = await dig(server.port, 'many.foo.svc.cluster.local', '+short');
  assert.deepEqual(short.trim().split('\n').sort(), [...MANY].sort());
});

test('dig through a forwarding server to an upstream, and REFUSED with none', { skip }, async (t) => {
  const upstream = await serve(t, upstreamTable);
  const front = await serve(t, table, [{ host: '127.0.0.1', port: upstream.port }]);
  const out = await dig(front.port, 'outside.test');
  assert.equal(status(out), 'NOERROR');
  assert.match(out, /flags: qr aa rd ra;/);
  assert.match(out, /outside\.test\.\s+\d+\s+IN\s+A\s+198\.18\.9\.9/);
  assert.equal((await dig(front.port, '+tcp', 'outside.test', '+short')).trim(), '198.18.9.9');
  const alone = await serve(t, table);
  assert.equal(status(await dig(alone.port, 'outside.test')), 'REFUSED');
});
