// Worker threads' arithmetic and merging: each thread's share of the caps, the option's range, and the
// main thread's /metrics summing what every thread counted.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Counter, Gauge, Registry } from 'prom-client';
import { MAX_WORKER_THREADS, workerThreadsOption, ZTUNNEL_ERRORS } from '../../../src/ztunnel/index.ts';
import { mergedMetrics, shareOf } from '../../../src/ztunnel/threads.ts';

describe('worker threads', () => {
  test('the option: 1 by default, whole numbers from 1 to the maximum, anything else refused', () => {
    assert.equal(workerThreadsOption(undefined), 1);
    assert.equal(workerThreadsOption(4), 4);
    assert.equal(workerThreadsOption(MAX_WORKER_THREADS), MAX_WORKER_THREADS);
    for (const bad of [0, -1, 1.5, MAX_WORKER_THREADS + 1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => workerThreadsOption(bad),
        (e: any) => e.code === ZTUNNEL_ERRORS.BAD_WORKER_THREADS && e.message.includes(String(bad)),
      );
    }
    // A flag's text: digits only, named in the error with what was given.
    assert.equal(workerThreadsOption('2', '--worker-threads'), 2);
    for (const bad of ['0', 'abc', '1e1', '-1', '', ' 2', '65', '2.0']) {
      assert.throws(
        () => workerThreadsOption(bad, '--worker-threads'),
        (e: any) =>
          e.code === ZTUNNEL_ERRORS.BAD_WORKER_THREADS &&
          e.message.startsWith('--worker-threads must be') &&
          e.message.endsWith(`got ${JSON.stringify(bad)}`),
      );
    }
  });

  test('each thread holds its share of each cap, rounded up, never 0', () => {
    const limits = {
      maxConnections: 1000,
      maxConnectionsPerSource: 125,
      maxHandshakes: 3,
      maxHandshakesPerSource: 1,
    };
    assert.deepEqual(shareOf(limits, 1), limits);
    assert.deepEqual(shareOf(limits, 2), {
      maxConnections: 500,
      maxConnectionsPerSource: 63,
      maxHandshakes: 2,
      maxHandshakesPerSource: 1,
    });
    assert.deepEqual(shareOf(limits, 8).maxHandshakes, 1);
  });

  test("the main thread's metrics sum every thread's series by their labels", async () => {
    const registry = (value: number, extra?: number) => {
      const r = new Registry();
      const c = new Counter({
        name: 'istio_tcp_connections_opened_total',
        help: 'x',
        labelNames: ['reporter'],
        registers: [r],
      });
      c.inc({ reporter: 'source' }, value);
      if (extra !== undefined) c.inc({ reporter: 'destination' }, extra);
      return r;
    };
    const main = registry(3, 1);
    const threads = [await registry(4).getMetricsAsJSON(), await registry(5, 2).getMetricsAsJSON()];
    const text = await (await mergedMetrics(main, threads)).metrics();
    assert.match(text, /istio_tcp_connections_opened_total\{reporter="source"\} 12\n/);
    assert.match(text, /istio_tcp_connections_opened_total\{reporter="destination"\} 3\n/);
  });

  test('what only the main thread has is kept as it is, even what the aggregator would omit', async () => {
    const main = new Registry();
    new Gauge({ name: 'process_start_time_seconds', help: 'x', registers: [main], aggregator: 'omit' }).set(
      1234,
    );
    new Counter({ name: 'istio_tcp_connections_opened_total', help: 'x', registers: [main] }).inc(1);
    const thread = new Registry();
    new Counter({ name: 'istio_tcp_connections_opened_total', help: 'x', registers: [thread] }).inc(2);
    const text = await (await mergedMetrics(main, [await thread.getMetricsAsJSON()])).metrics();
    assert.match(text, /^process_start_time_seconds 1234$/m);
    assert.match(text, /^istio_tcp_connections_opened_total 3$/m);
  });
});
