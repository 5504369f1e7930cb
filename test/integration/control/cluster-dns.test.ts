// The control plane's cluster DNS (--dns-listen) on loopback: a Service's name answers its VIP once
// applied, a name under cluster.local that does not exist is NXDOMAIN, others are REFUSED (no upstream),
// and a Service deleted takes its name with it.

import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { test } from 'node:test';
import { decode, encode, RECURSION_DESIRED } from 'dns-packet';
import { adminFetch, startTestControl } from '../../helpers/mesh.ts';

const SERVICE = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', namespace: 'shop' },
  spec: { selector: { app: 'web' }, ports: [{ port: 80 }] },
};

async function ask(port: number, name: string): Promise<{ rcode: string; addresses: string[] }> {
  const socket = dgram.createSocket('udp4');
  try {
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer for ${name}`)), 5_000);
      socket.once('message', (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      socket.send(
        encode({ type: 'query', id: 7, flags: RECURSION_DESIRED, questions: [{ type: 'A', name }] }),
        port,
        '127.0.0.1',
      );
    });
    const p = decode(reply) as ReturnType<typeof decode> & { rcode: string };
    return { rcode: p.rcode, addresses: (p.answers ?? []).map((a) => String((a as { data: unknown }).data)) };
  } finally {
    socket.close();
  }
}

async function apply(cp: Parameters<typeof adminFetch>[0], path: string, body: unknown): Promise<void> {
  const r = await adminFetch(cp, path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(r.status, 200, await r.text());
}

test('cluster DNS follows the registry', async (t) => {
  const cp = await startTestControl(t, undefined, { dnsListen: '127.0.0.1:0' });
  assert.match(cp.dnsAddress ?? '', /^127\.0\.0\.1:\d+$/);
  const port = Number(cp.dnsAddress!.split(':')[1]);
  assert.equal((await ask(port, 'web.shop.svc.cluster.local')).rcode, 'NXDOMAIN', 'not applied yet');
  await apply(cp, '/ambit/v1/apply', { objects: [SERVICE] });
  let answer = await ask(port, 'web.shop.svc.cluster.local');
  for (let i = 0; i < 100 && answer.addresses.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 50)); // the registry derives after the commit (debounced)
    answer = await ask(port, 'web.shop.svc.cluster.local');
  }
  const vip = cp.mesh.registry.services.find((s) => s.name === 'web')?.vips[0];
  assert.ok(vip, 'the Service got a VIP');
  assert.deepEqual(answer, { rcode: 'NOERROR', addresses: [vip] });
  assert.equal((await ask(port, 'nosuch.shop.svc.cluster.local')).rcode, 'NXDOMAIN');
  assert.equal((await ask(port, 'example.org')).rcode, 'REFUSED', 'no upstream: nothing is asked elsewhere');
});
