// The proxy runtime's connection table and drain, without sockets: what is metered, logged, cut and
// shown, and that a drain waits for open work, then forces what is left.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Registry } from 'prom-client';
import type { Logger } from '../../../src/log/index.ts';
import { ConnectionTable, drain } from '../../../src/proxy/index.ts';
import { type ConnectionRecord, TcpMetrics } from '../../../src/telemetry/index.ts';

function table() {
  const registry = new Registry();
  const lines: Array<{ level: string; record: ConnectionRecord }> = [];
  const log = {
    info: (record: ConnectionRecord) => lines.push({ level: 'info', record }),
    warn: (record: ConnectionRecord) => lines.push({ level: 'warn', record }),
  } as unknown as Logger;
  const t = new ConnectionTable<{ keep: boolean }>(new TcpMetrics(registry), log);
  const count = async (name: string, flags = '-') => {
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
    const values = (m as { values?: Array<{ value: number; labels: Record<string, string> }> })?.values ?? [];
    return values.filter((v) => v.labels.response_flags === flags).reduce((a, v) => a + v.value, 0);
  };
  return { t, lines, count };
}

const RECORD: ConnectionRecord = {
  direction: 'outbound',
  src: { addr: '198.18.1.2:1' },
  dst: { addr: '198.18.2.2:2' },
  bytes_sent: 0,
  bytes_recv: 0,
  duration_ms: 0,
  flags: '-',
};
const LABELS = { reporter: 'source' as const, connection_security_policy: 'mutual_tls' };

describe('proxy connection table', () => {
  test('a connection is metered at open and close, logged once, and shown while open', async () => {
    const { t, lines, count } = table();
    const id = t.opened(LABELS);
    t.track(id, {
      direction: 'outbound',
      src: 'a',
      dst: 'b',
      startedAt: 'now',
      meta: { keep: true },
      abort: () => {},
    });
    assert.deepEqual(t.view(), [{ id, direction: 'outbound', src: 'a', dst: 'b', startedAt: 'now' }]);
    t.finish(id, LABELS, { fromClient: 3, toClient: 4 }, { ...RECORD, bytes_sent: 3 });
    assert.equal(t.size, 0);
    assert.equal(await count('istio_tcp_connections_opened_total'), 1);
    assert.equal(await count('istio_tcp_connections_closed_total'), 1);
    assert.equal(await count('istio_tcp_received_bytes_total'), 3);
    assert.equal(lines.length, 1);
  });

  test('a refusal is opened and closed with its flags, and an unmetered one only logged', async () => {
    const { t, lines, count } = table();
    t.refused(LABELS, { ...RECORD, flags: 'DENY', error: 'denied' });
    t.refused(undefined, { ...RECORD, flags: 'NR', error: 'no route' });
    assert.equal(await count('istio_tcp_connections_opened_total', 'DENY'), 1);
    assert.equal(await count('istio_tcp_connections_closed_total', 'DENY'), 1);
    assert.equal(await count('istio_tcp_connections_opened_total', 'NR'), 0);
    assert.deepEqual(
      lines.map((l) => [l.level, l.record.flags]),
      [
        ['warn', 'DENY'],
        ['warn', 'NR'],
      ],
    );
  });

  test('cutWhere aborts and forgets the selected connections, each with its own error', () => {
    const { t } = table();
    const aborted: Array<[number, Error]> = [];
    for (const keep of [true, false, false]) {
      const id = t.opened(undefined);
      const abort = (why: Error) => aborted.push([id, why]);
      t.track(id, { direction: 'inbound', src: 's', dst: 'd', startedAt: 't', meta: { keep }, abort });
    }
    const cut = t.cutWhere(
      (c) => !c.meta.keep,
      () => new Error('gone'),
    );
    assert.deepEqual(
      cut.map((c) => c.id),
      [2, 3],
    );
    assert.equal(aborted.length, 2);
    assert.notEqual(aborted[0]?.[1], aborted[1]?.[1]);
    assert.equal(t.size, 1);
  });
});

describe('drain', () => {
  test('waits for open work to finish and forces nothing', async () => {
    let open = 2;
    setTimeout(() => (open = 0), 60);
    let forced = false;
    await drain(
      () => open,
      5_000,
      () => (forced = true),
    );
    assert.equal(forced, false);
  });

  test('forces what is still open at the deadline', async () => {
    let forced = false;
    const draining = drain(
      () => 1,
      120,
      () => (forced = true),
    );
    assert.equal(forced, false, 'nothing is forced before the deadline');
    await draining;
    assert.equal(forced, true);
  });
});
