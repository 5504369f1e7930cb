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
import { describeError } from '../errors/index.ts';
import type { CertificateSource, SpiffeId } from '../identity/index.ts';
import type { Logger } from '../log/index.ts';
import type { ConnectionView } from '../proxy/index.ts';
import type { Delta, TypeUrl } from '../xds/index.ts';
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

export type ThreadQuestion = 'metrics' | 'connections';

/** Where the thread's entry is: beside this file in the sources, `ztunnel-worker.js` in the build. */
const ENTRY = import.meta.url.endsWith('.ts')
  ? new URL('./worker-thread.ts', import.meta.url)
  : new URL('./ztunnel-worker.js', import.meta.url);

/** How long the main thread waits for a thread's answer to a question (metrics, connections). */
const ANSWER_MS = 5_000;
const RESTART_MS = { initial: 500, max: 30_000 };

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

/** Metrics of several registries as one: counters and histograms summed by their labels. */
export async function mergedMetrics(main: Registry, others: unknown[]): Promise<Registry> {
  const all = [
    await main.getMetricsAsJSON(),
    ...(others as Array<MetricObjectWithValues<MetricValue<string>>[]>),
  ];
  return AggregatorRegistry.aggregate(all);
}

class Thread {
  worker: Worker | undefined;
  ready = false;
  restartMs = RESTART_MS.initial;
  timer: NodeJS.Timeout | undefined;
  readonly waiting = new Set<() => void>();
}

export class WorkerThreads {
  private readonly threads: Thread[];
  /** Every resource the main thread holds, as it came: a restarted thread starts from it. */
  private readonly held = new Map<TypeUrl, Map<string, unknown>>();
  private synced = false;
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

  /** Starts the threads; resolves when each has its configuration and listens. */
  async start(): Promise<void> {
    for (let i = 0; i < this.threads.length; i++) this.spawn(i);
    await this.ready();
  }

  ready(): Promise<void> {
    return Promise.all(
      this.threads.map((t) => (t.ready ? undefined : new Promise<void>((r) => t.waiting.add(r)))),
    ).then(() => {});
  }

  /** A delta the main thread applied: every thread applies it too. */
  forward(type: TypeUrl, delta: Delta): void {
    const held = this.held.get(type) ?? new Map<string, unknown>();
    this.held.set(type, held);
    for (const name of delta.removed) held.delete(name);
    for (const u of delta.upserts) held.set(u.name, u.value);
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
    for (const t of this.threads) for (const r of t.waiting) r();
  }

  /** The indices of the threads that are up. */
  private live(): number[] {
    return this.threads.flatMap((t, i) => (t.ready && t.worker ? [i] : []));
  }

  private askOne(index: number, what: ThreadQuestion): Promise<unknown> {
    const w = this.threads[index]?.worker;
    if (!w) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.answers.delete(id);
        this.opts.log.warn({ what, thread: index + 1 }, 'a worker thread did not answer in time');
        resolve(undefined);
      }, ANSWER_MS);
      this.answers.set(id, (value) => {
        clearTimeout(timer);
        resolve(value);
      });
      w.postMessage({ t: 'ask', id, what } satisfies ToThread);
    });
  }

  private post(message: ToThread): void {
    for (const t of this.threads) t.worker?.postMessage(message);
  }

  private spawn(index: number): void {
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
    // Catch-up: what the main thread holds, type by type, before anything newer (messages keep their order).
    for (const [type, held] of this.held) {
      const delta: Delta = { upserts: [...held].map(([name, value]) => ({ name, value })), removed: [] };
      worker.postMessage({ t: 'delta', type, delta } satisfies ToThread);
    }
    if (this.synced) worker.postMessage({ t: 'synced' } satisfies ToThread);
    worker.on('message', (m: FromThread) => this.onMessage(t, thread, m));
    worker.on('error', (err) =>
      this.opts.log.error({ err: describeError(err), thread }, 'a worker thread failed'),
    );
    worker.on('exit', (code) => {
      if (t.worker !== worker) return;
      t.worker = undefined;
      t.ready = false;
      if (this.stopping) return;
      this.opts.log.error(
        { thread, code, restartInMs: t.restartMs },
        'a worker thread ended; starting it again',
      );
      t.timer = setTimeout(() => this.spawn(index), t.restartMs);
      t.timer.unref();
      t.restartMs = Math.min(t.restartMs * 2, RESTART_MS.max);
    });
  }

  private onMessage(t: Thread, thread: number, m: FromThread): void {
    switch (m.t) {
      case 'ready':
        t.ready = true;
        t.restartMs = RESTART_MS.initial;
        for (const r of t.waiting) r();
        t.waiting.clear();
        this.opts.log.debug({ thread }, 'worker thread ready');
        return;
      case 'sign':
        this.opts.certificates.fetch(m.identity, m.csr).then(
          (chain) => t.worker?.postMessage({ t: 'signed', id: m.id, chain } satisfies ToThread),
          (err) =>
            t.worker?.postMessage({ t: 'signed', id: m.id, error: describeError(err) } satisfies ToThread),
        );
        return;
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
