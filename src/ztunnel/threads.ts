// A ztunnel on several cores: worker threads beside the main thread, each with a ztunnel of its own that
// listens on the same ports (SO_REUSEPORT; the kernel spreads new connections over the threads). The
// main thread keeps the one config stream and the one link to the CA and relays them: every delta it
// applied goes to every thread, in order; a thread's certificate signing requests go out through the
// main thread's source. A thread that dies is started again, caught up from what the main thread holds.
// The thread's side is `worker-thread.ts`; the messages between them are below.

import { Worker } from 'node:worker_threads';
import {
  AggregatorRegistry,
  type MetricObjectWithValues,
  type MetricValue,
  type Registry,
} from 'prom-client';
import { AmbitError, describeError } from '../errors/index.ts';
import type { CertificateSource, SpiffeId } from '../identity/index.ts';
import type { Logger } from '../log/index.ts';
import type { ConnectionView } from '../proxy/index.ts';
import type { Delta, TypeUrl } from '../xds/index.ts';
import { ZTUNNEL_ERRORS } from './errors.ts';
import type { ConnectionLimits } from './limits.ts';
import type { ZtunnelOptions, ZtunnelPorts } from './options.ts';

/** What a thread's ztunnel is built from: the main thread's options that cross a thread boundary. */
export interface ThreadOptions
  extends Pick<
    ZtunnelOptions,
    | 'node'
    | 'capture'
    | 'bindAddress'
    | 'socks5'
    | 'maxConnections'
    | 'connectTimeoutMs'
    | 'idleTimeoutMs'
    | 'drainMs'
    | 'nodeAddresses'
  > {
  thread: number;
  /** The ports the main thread bound (a test's 0 became a real port). */
  ports: ZtunnelPorts;
  /** This thread's share of each limit. */
  limits: ConnectionLimits;
}

export type ToThread =
  | { t: 'delta'; type: TypeUrl; delta: Delta }
  | { t: 'synced' }
  | { t: 'addresses'; addresses: string[] }
  | { t: 'signed'; id: number; chain?: string[]; error?: string }
  | { t: 'ask'; id: number; what: ThreadQuestion }
  | { t: 'stop' };

export type FromThread =
  | { t: 'ready' }
  | { t: 'sign'; id: number; identity: SpiffeId; csr: string }
  | { t: 'answer'; id: number; value: unknown }
  | { t: 'stopped' };

export type ThreadQuestion = 'metrics' | 'connections' | 'connectionCount';

/** Where the thread's entry is: beside this file in the sources, `ztunnel-worker.js` in the build. */
const ENTRY = import.meta.url.endsWith('.ts')
  ? new URL('./worker-thread.ts', import.meta.url)
  : new URL('./ztunnel-worker.js', import.meta.url);

/** How long the main thread waits for a thread's answer to a question (metrics, connections). */
const ANSWER_MS = 5_000;
/** A thread that misses this many answers in a row is taken as hung and ended (then started again). */
const MISSED_ANSWERS = 3;
/** Restarts back off from 0.5 s to 30 s; a thread up this long starts again without waiting. */
const RESTART_MS = { initial: 500, max: 30_000, healthy: 30_000 };

/** Each limit split over `threads` (rounded up: a thread never gets 0). */
export function shareOf(limits: ConnectionLimits, threads: number): ConnectionLimits {
  const share = (n: number) => Math.ceil(n / threads);
  return {
    maxConnections: share(limits.maxConnections),
    maxConnectionsPerSource: share(limits.maxConnectionsPerSource),
    maxHandshakes: share(limits.maxHandshakes),
    maxHandshakesPerSource: share(limits.maxHandshakesPerSource),
  };
}

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/**
 * Metrics of several registries as one: what the threads also count (the TCP metrics) summed by their
 * labels; what only the main thread has (Node's process metrics) as it is.
 */
export async function mergedMetrics(main: Registry, others: unknown[]): Promise<Registry> {
  const threads = others as MetricsJson[];
  const shared = new Set(threads.flatMap((metrics) => metrics.map((m) => m.name)));
  // Kept whole: the aggregator would drop a metric marked 'omit' (process_start_time_seconds).
  const own = (await main.getMetricsAsJSON()).map((m) =>
    shared.has(m.name) ? m : { ...m, aggregator: 'first' as const },
  ) as MetricsJson;
  return AggregatorRegistry.aggregate([own, ...threads]);
}

class Thread {
  worker: Worker | undefined;
  ready = false;
  /** When it last became ready (performance.now()). */
  upSince = 0;
  restartMs = RESTART_MS.initial;
  /** Answers missed in a row. */
  missed = 0;
  timer: NodeJS.Timeout | undefined;
  /** Who waits for it to be ready; rejected when it ends before it ever was (at start). */
  readonly waiting = new Set<{ resolve: () => void; reject: (err: Error) => void }>();
}

export class WorkerThreads {
  private readonly threads: Thread[];
  /** Every resource the main thread holds, as it came: a restarted thread starts from it. */
  private readonly held = new Map<TypeUrl, Map<string, unknown>>();
  private synced = false;
  /** Once every thread was ready once: from then on, a thread that ends is started again. */
  private started = false;
  private stopping = false;
  private nextId = 0;
  private readonly answers = new Map<number, (value: unknown) => void>();
  private readonly opts: {
    count: number;
    options: () => Omit<ThreadOptions, 'thread'>;
    certificates: CertificateSource;
    log: Logger;
  };

  constructor(opts: WorkerThreads['opts']) {
    this.opts = opts;
    this.threads = Array.from({ length: opts.count - 1 }, () => new Thread());
  }

  /**
   * Starts the threads; resolves when each has its configuration and listens. Rejects when one ends
   * before it was ever ready (its entry missing, a failure at its start): a ztunnel that cannot start
   * the threads it was asked for does not start.
   */
  async start(): Promise<void> {
    for (let i = 0; i < this.threads.length; i++) this.spawn(i);
    await this.ready();
    this.started = true;
  }

  /** Resolves when every thread is ready (at once while stopping). */
  ready(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return Promise.all(
      this.threads.map((t) =>
        t.ready ? undefined : new Promise<void>((resolve, reject) => t.waiting.add({ resolve, reject })),
      ),
    ).then(() => {});
  }

  /** A delta the main thread applied: every thread applies it too. */
  forward(type: TypeUrl, delta: Delta): void {
    const held = this.held.get(type) ?? new Map<string, unknown>();
    this.held.set(type, held);
    // In mergeDelta's order: upserts, then removals.
    for (const u of delta.upserts) held.set(u.name, u.value);
    for (const name of delta.removed) held.delete(name);
    this.post({ t: 'delta', type, delta });
  }

  /** The main thread has every type once: the threads may start listening. */
  markSynced(): void {
    this.synced = true;
    this.post({ t: 'synced' });
  }

  setAddresses(addresses: string[]): void {
    this.post({ t: 'addresses', addresses });
  }

  /** Each live thread's answer (a thread that does not answer in time is left out, and logged). */
  async ask(what: ThreadQuestion): Promise<unknown[]> {
    const answers = await Promise.all(this.live().map((i) => this.askOne(i, what)));
    return answers.filter((a) => a !== undefined);
  }

  /** Each thread's connections, marked with the thread that carries them. */
  async connections(): Promise<Array<ConnectionView & { thread: number }>> {
    const live = this.live();
    const views = await Promise.all(
      live.map((i) => this.askOne(i, 'connections') as Promise<ConnectionView[] | undefined>),
    );
    return live.flatMap((i, k) => (views[k] ?? []).map((c) => ({ ...c, thread: i + 1 })));
  }

  /** Each thread drains as the main thread does (up to the drain deadline), then ends. */
  async stop(drainMs: number): Promise<void> {
    this.stopping = true;
    for (const t of this.threads) for (const w of t.waiting) w.resolve();
    await Promise.all(
      this.threads.map(async (t) => {
        clearTimeout(t.timer);
        const w = t.worker;
        if (!w) return;
        const ended = new Promise<void>((resolve) => w.once('exit', () => resolve()));
        w.postMessage({ t: 'stop' } satisfies ToThread);
        const deadline = setTimeout(() => void w.terminate(), drainMs + 2_000);
        await ended;
        clearTimeout(deadline);
      }),
    );
  }

  /** The indices of the threads that are up. */
  private live(): number[] {
    return this.threads.flatMap((t, i) => (t.ready && t.worker ? [i] : []));
  }

  /**
   * One thread's answer, or undefined after ANSWER_MS. A thread that misses MISSED_ANSWERS in a row is
   * taken as hung (its listeners would keep taking a share of new connections) and ended: it starts again.
   */
  private askOne(index: number, what: ThreadQuestion): Promise<unknown> {
    const t = this.threads[index]!;
    const w = t.worker;
    if (!w) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.answers.delete(id);
        t.missed++;
        this.opts.log.warn(
          { what, thread: index + 1, missed: t.missed },
          'a worker thread did not answer in time',
        );
        if (t.missed >= MISSED_ANSWERS && t.worker === w) void w.terminate();
        resolve(undefined);
      }, ANSWER_MS);
      timer.unref();
      this.answers.set(id, (value) => {
        clearTimeout(timer);
        t.missed = 0;
        resolve(value);
      });
      w.postMessage({ t: 'ask', id, what } satisfies ToThread);
    });
  }

  private post(message: ToThread): void {
    for (const t of this.threads) t.worker?.postMessage(message);
  }

  private spawn(index: number): void {
    if (this.stopping) return;
    const t = this.threads[index]!;
    const thread = index + 1;
    const worker = new Worker(ENTRY, {
      workerData: { ...this.opts.options(), thread } satisfies ThreadOptions,
      // The thread's own output (its log lines) goes where the main thread's goes.
      stdout: false,
      stderr: false,
    });
    t.worker = worker;
    t.ready = false;
    t.missed = 0;
    // Catch-up: what the main thread holds, type by type, before anything newer (messages keep their order).
    for (const [type, held] of this.held) {
      const delta: Delta = { upserts: [...held].map(([name, value]) => ({ name, value })), removed: [] };
      worker.postMessage({ t: 'delta', type, delta } satisfies ToThread);
    }
    if (this.synced) worker.postMessage({ t: 'synced' } satisfies ToThread);
    worker.on('message', (m: FromThread) => this.onMessage(t, worker, thread, m));
    worker.on('error', (err) =>
      this.opts.log.error({ err: describeError(err), thread }, 'a worker thread failed'),
    );
    worker.on('exit', (code) => {
      if (t.worker !== worker) return;
      const wasUp = t.ready ? performance.now() - t.upSince : 0;
      t.worker = undefined;
      t.ready = false;
      if (this.stopping) return;
      if (!this.started) {
        // At start: the ztunnel fails rather than wait for ever.
        const err = new AmbitError(
          ZTUNNEL_ERRORS.THREAD_FAILED,
          `worker thread ${thread} ended (exit code ${code}) before it was ready`,
        );
        for (const w of t.waiting) w.reject(err);
        t.waiting.clear();
        return;
      }
      if (wasUp >= RESTART_MS.healthy) t.restartMs = RESTART_MS.initial;
      this.opts.log.error(
        { thread, code, restartInMs: t.restartMs },
        'a worker thread ended; starting it again',
      );
      t.timer = setTimeout(() => this.spawn(index), t.restartMs);
      t.timer.unref();
      t.restartMs = Math.min(t.restartMs * 2, RESTART_MS.max);
    });
  }

  private onMessage(t: Thread, worker: Worker, thread: number, m: FromThread): void {
    switch (m.t) {
      case 'ready':
        t.ready = true;
        t.upSince = performance.now();
        for (const w of t.waiting) w.resolve();
        t.waiting.clear();
        this.opts.log.debug({ thread }, 'worker thread ready');
        return;
      case 'sign': {
        // The answer goes to the worker that asked, never to the one that replaced it (ids start again).
        const reply = (answer: ToThread) => {
          if (t.worker === worker) worker.postMessage(answer);
        };
        this.opts.certificates.fetch(m.identity, m.csr).then(
          (chain) => reply({ t: 'signed', id: m.id, chain }),
          (err) => reply({ t: 'signed', id: m.id, error: describeError(err) }),
        );
        return;
      }
      case 'answer': {
        const answer = this.answers.get(m.id);
        this.answers.delete(m.id);
        answer?.(m.value);
        return;
      }
      case 'stopped':
        return;
    }
  }
}
