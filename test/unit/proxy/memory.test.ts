import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { addon } from '../../../src/os/index.ts';
import { memoryFreed, memoryReport, trimMemoryWhenQuiet } from '../../../src/proxy/index.ts';

describe('giving memory back after a burst', () => {
  it('the addon trims the C allocator and says whether it released anything', () => {
    assert.equal(typeof addon().trimMemory(), 'boolean');
  });

  it('trims once the process is quiet and has grown, and never after stop', async () => {
    const trims: Array<[number, number]> = [];
    const stop = trimMemoryWhenQuiet({
      intervalMs: 20,
      quietCpuShare: 1, // any interval counts as quiet
      minGrowthBytes: 0,
      minGapMs: 0,
      onTrim: (before, after) => trims.push([before, after]),
    });
    try {
      for (let i = 0; i < 100 && trims.length === 0; i++) await sleep(20);
      assert.ok(trims.length > 0, 'a quiet process that grew is trimmed');
      assert.ok(trims.every(([before, after]) => before > 0 && after > 0));
    } finally {
      stop();
    }
    const seen = trims.length;
    await sleep(100);
    assert.equal(trims.length, seen, 'no trim after stop');
  });

  it('trims once per burst: not again while quiet, again after the next busy stretch', async () => {
    const trims: number[] = [];
    // 50 ms intervals: a trim's collection finishing on V8's helper threads (seen to spill past the one
    // interval the loop skips after a trim on a loaded CI host with 20 ms ones) stays under the threshold.
    const stop = trimMemoryWhenQuiet({
      intervalMs: 50,
      quietCpuShare: 0.5, // busy: more than 25 ms of CPU in 50 ms
      minGrowthBytes: 0,
      minGapMs: 0,
      onTrim: (before) => trims.push(before),
    });
    try {
      for (let i = 0; i < 100 && trims.length === 0; i++) await sleep(20);
      assert.equal(trims.length, 1, 'start-up counts as a burst');
      await sleep(200);
      assert.equal(trims.length, 1, 'no burst, no trim');
      const until = performance.now() + 100;
      while (performance.now() < until); // a busy stretch: the event loop is blocked, the CPU used
      for (let i = 0; i < 100 && trims.length === 1; i++) await sleep(20);
      assert.equal(trims.length, 2, 'the next quiet interval after the burst trims');
    } finally {
      stop();
    }
  });

  it('trims again while quiet once memoryFreed says something large was let go', async () => {
    const trims: number[] = [];
    // Every interval counts as quiet: only start-up and memoryFreed can bring a trim.
    const options = { intervalMs: 50, quietCpuShare: 1, minGrowthBytes: 0, minGapMs: 0 };
    const stop = trimMemoryWhenQuiet({ ...options, onTrim: (before) => trims.push(before) });
    try {
      for (let i = 0; i < 100 && trims.length === 0; i++) await sleep(20);
      await sleep(200);
      assert.equal(trims.length, 1, 'after start-up, nothing freed: no trim');
      memoryFreed(); // a pool closed the spare connections a burst opened
      for (let i = 0; i < 100 && trims.length === 1; i++) await sleep(20);
      assert.equal(trims.length, 2, 'the next quiet interval after memoryFreed trims');
    } finally {
      stop();
    }
  });

  it('returns the pages V8 kept after a burst, without giving the process a global gc', async () => {
    let garbage: unknown[] | null = [];
    for (let i = 0; i < 10_000; i++)
      garbage.push(Array.from({ length: 50 }, (_, j) => ({ j, s: `x${i}.${j}` })));
    garbage = null;
    const trims: Array<[number, number]> = [];
    const stop = trimMemoryWhenQuiet({
      intervalMs: 20,
      quietCpuShare: 1,
      minGrowthBytes: 0,
      minGapMs: 0,
      onTrim: (before, after) => trims.push([before, after]),
    });
    try {
      for (let i = 0; i < 100 && trims.length === 0; i++) await sleep(20);
      const [before, after] = trims[0]!;
      assert.ok(before - after > 16 * 1024 * 1024, `released ${(before - after) >> 20} MiB`);
      assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined');
    } finally {
      stop();
    }
  });

  for (const [what, quietCpuShare, minGrowthBytes] of [
    ['a busy process', 0, 0], // no interval is ever quiet
    ['a process that has not grown', 1, Number.MAX_SAFE_INTEGER],
  ] as const) {
    it(`leaves ${what} alone`, async () => {
      const trims: number[] = [];
      const stop = trimMemoryWhenQuiet({
        intervalMs: 20,
        quietCpuShare,
        minGrowthBytes,
        minGapMs: 0,
        onTrim: (before) => trims.push(before),
      });
      try {
        await sleep(200);
        assert.deepEqual(trims, []);
      } finally {
        stop();
      }
    });
  }

  it('reports where the resident set goes', () => {
    const m = memoryReport();
    assert.ok(m.rss > 0 && m.rssAnon > 0 && m.rssFile > 0);
    // RSS is anonymous + file-backed + shared memory; read at slightly different moments.
    assert.ok(Math.abs(m.rssAnon + m.rssFile - m.rss) < m.rss / 4, JSON.stringify(m));
    assert.ok(m.heap.used <= m.heap.total);
    assert.ok(m.heap.spaces.old_space !== undefined && m.heap.spaces.old_space.used > 0);
    assert.ok(m.code.bytecode > 0);
    assert.ok(m.malloc !== undefined && m.malloc.inUse > 0 && m.malloc.free >= 0, 'glibc reports its heap');
    assert.equal(m.build, 'sources', 'the tests run from the TypeScript sources');
  });
});
