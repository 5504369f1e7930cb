// A worker thread's side of a ztunnel on several cores (`threads.ts`): a ztunnel of its own on the main
// thread's ports, fed by the main thread's relay of the config stream and signing its certificates
// through the main thread. It answers the main thread's questions (metrics, connections) and drains on
// its word. This file is the thread's entry (in the build: dist/daemons/ztunnel-worker.js).

import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { describeError } from '../errors/index.ts';
import type { SpiffeId } from '../identity/index.ts';
import { logger } from '../log/index.ts';
import { trimMemoryWhenQuiet } from '../proxy/index.ts';
import type { Delta, TypeUrl } from '../xds/index.ts';
import type { ConfigFeed, ThreadLink } from './options.ts';
import type { FromThread, ThreadOptions, ThreadQuestion, ToThread } from './threads.ts';
import { Ztunnel } from './ztunnel.ts';

type FeedWiring = Parameters<ThreadLink['feed']>[0];

/** The config stream as the main thread relays it: the deltas it applied, in its order. */
class RelayedFeed implements ConfigFeed {
  readonly connected = true;
  readonly peer = 'the main thread';
  readonly lastError = undefined;
  private synced = false;
  private readonly waiting = new Set<() => void>();
  private readonly wiring: FeedWiring;

  constructor(wiring: FeedWiring) {
    this.wiring = wiring;
  }

  start(): void {}
  stop(): void {}

  versions(): Record<string, Record<string, string>> {
    return {};
  }

  whenSynced(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((resolve) => this.waiting.add(resolve));
  }

  apply(type: TypeUrl, delta: Delta): void {
    if (this.wiring.types.includes(type)) this.wiring.apply(type, delta);
  }

  markSynced(): void {
    this.synced = true;
    for (const r of this.waiting) r();
    this.waiting.clear();
  }
}

function run(port: MessagePort, options: ThreadOptions): void {
  const log = logger('ztunnel').child({ node: options.node, thread: options.thread });
  const post = (m: FromThread) => port.postMessage(m);
  let feed: RelayedFeed | undefined;
  let nextId = 0;
  const signing = new Map<number, { resolve: (chain: string[]) => void; reject: (err: Error) => void }>();
  const z = new Ztunnel({
    ...options,
    control: {
      thread: options.thread,
      feed: (wiring) => {
        feed = new RelayedFeed(wiring);
        return feed;
      },
    },
    certificates: {
      fetch: (identity: SpiffeId, csr: string) =>
        new Promise<string[]>((resolve, reject) => {
          const id = nextId++;
          signing.set(id, { resolve, reject });
          post({ t: 'sign', id, identity, csr });
        }),
    },
  });
  // The main thread's trim compacts its own heap only: each thread gives back its own heap's pages
  // when the process goes quiet after a burst (AMBIT_MEMORY_TRIM=off leaves them, as it does the main's).
  const stopTrim = process.env.AMBIT_MEMORY_TRIM === 'off' ? () => {} : trimMemoryWhenQuiet();
  port.on('message', (m: ToThread) => {
    switch (m.t) {
      case 'delta':
        try {
          feed?.apply(m.type, m.delta);
        } catch (err) {
          // The main thread applied it: a thread that cannot is a bug. Rather than carry on with a state of
          // its own, the thread ends, and the main thread starts it again from what it holds.
          log.error(
            { err: describeError(err), type: m.type },
            'a worker thread could not apply a delta; ending it',
          );
          process.exit(1);
        }
        return;
      case 'synced':
        feed?.markSynced();
        return;
      case 'addresses':
        z.setNodeAddresses(m.addresses);
        return;
      case 'signed': {
        const pending = signing.get(m.id);
        signing.delete(m.id);
        if (m.chain) pending?.resolve(m.chain);
        else pending?.reject(new Error(m.error ?? 'the main thread could not have the certificate signed'));
        return;
      }
      case 'ask':
        answer(z, m.what).then(
          (value) => post({ t: 'answer', id: m.id, value }),
          (err) => {
            log.error({ err: describeError(err), what: m.what }, 'a worker thread could not answer');
            post({ t: 'answer', id: m.id, value: undefined });
          },
        );
        return;
      case 'stop':
        stopTrim();
        z.stop().then(() => {
          post({ t: 'stopped' });
          port.close();
          process.exit(0); // in a worker thread: ends this thread only
        });
        return;
    }
  });
  z.start().then(
    () => post({ t: 'ready' }),
    (err) => {
      log.error({ err: describeError(err) }, 'a worker thread could not start');
      process.exit(1);
    },
  );
}

async function answer(z: Ztunnel, what: ThreadQuestion): Promise<unknown> {
  if (what === 'metrics') return z.metrics.getMetricsAsJSON();
  if (what === 'connectionCount') return z.connectionCount;
  return z.connectionsView();
}

if (parentPort) run(parentPort, workerData as ThreadOptions);
