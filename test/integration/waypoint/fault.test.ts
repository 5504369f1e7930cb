// Fault injection at the waypoint's HTTP core on loopback: an HTTPFault named by a route's ExtensionRef
// filter delays or aborts requests as Envoy's fault filter does (body `fault filter abort`, flags DI/FI);
// a filter that names nothing answers 500 and never reaches the backend.

import assert from 'node:assert/strict';
import * as http from 'node:http';
import { describe, test } from 'node:test';
import { assertValid, type HTTPFaultResource } from '../../../src/config/index.ts';
import { eventually, forwardTo, harness, listen, request, table } from './http-harness.ts';

const fault = (name: string, spec: Record<string, unknown>): HTTPFaultResource =>
  assertValid({
    apiVersion: 'ambit.dev/v1alpha1',
    kind: 'HTTPFault',
    metadata: { name, namespace: 'shop' },
    spec,
  }) as HTTPFaultResource;

const FAULTS = new Map([
  ['shop/abort', fault('abort', { abort: { httpStatus: 503, percentage: { value: 100 } } })],
  ['shop/delay', fault('delay', { delay: { fixedDelay: '300ms', percentage: { value: 100 } } })],
]);

const ref = (name: string) => ({ group: 'ambit.dev', kind: 'HTTPFault', name, namespace: 'shop' });

describe('waypoint fault injection', () => {
  test('abort, delay and an unresolvable filter, as Envoy answers them', async (t) => {
    let served = 0;
    const backend = http.createServer((_req, res) => {
      served++;
      res.end('ok');
    });
    const port = await listen(t, backend);
    const h = await harness(t, {
      routes: table((req) =>
        forwardTo('shop/web', 80, req, { extensionRefs: req.path === '/ok' ? [] : [ref(req.path.slice(1))] }),
      ),
      endpoints: { 'shop/web': [port] },
      faults: (ns, name) => FAULTS.get(`${ns}/${name}`),
    });
    const aborted = await request(h.port, { path: '/abort' });
    assert.equal(aborted.status, 503);
    assert.equal(aborted.body, 'fault filter abort');
    assert.equal(served, 0, 'an aborted request never reaches the backend');

    const delayed = await request(h.port, { path: '/delay' });
    assert.equal(delayed.status, 200);
    assert.equal(served, 1, 'a delayed request is then served');

    const missing = await request(h.port, { path: '/missing' });
    assert.equal(missing.status, 500, 'a filter that names nothing answers 500 (Gateway API)');
    assert.equal(served, 1);

    await eventually(() => h.access.length === 3);
    const flags = Object.fromEntries(h.access.map((l) => [l.path, l.flags]));
    assert.deepEqual(flags, { '/abort': 'FI', '/delay': 'DI', '/missing': '-' });
  });
});
