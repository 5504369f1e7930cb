// Simulated proxies for the control-plane benchmark: joined nodes, each a real XdsClient over gRPC
// with TLS on 127.0.0.1 and its own node credential, recording when a watched change has fully
// arrived and how many resource bytes each proxy received. The proxies run either in the calling
// thread or in a worker thread, so the control plane's event loop can be measured without them.

import { Worker } from 'node:worker_threads';
import type { ControlPlane } from '../../src/control/index.ts';
import {
  CaClient,
  CONTROL_CHANNEL_OPTIONS,
  controlPlaneCredentials,
  type NodeCredential,
  TYPE,
  type TypeUrl,
  XdsClient,
} from '../../src/xds/index.ts';

/** One resource a change must bring: the proxy holds it once its JSON body contains `contains`. */
export interface Expectation {
  type: TypeUrl;
  name: string;
  contains: string;
}

/** When each proxy held every expected value (process.hrtime, ns) and the resource bytes it received. */
export interface Arrival {
  doneAt: bigint[];
  bytes: number[];
}

export interface ProxyFleet {
  readonly nodes: readonly string[];
  /** Resource body bytes each proxy received for its first full sync. */
  readonly initialBytes: readonly number[];
  /**
   * Arms every proxy for one change. Resolves once armed (make the change after that), with `arrived`:
   * resolves once every proxy holds the change and has written its ACK.
   */
  expect(expectations: readonly Expectation[]): Promise<{ arrived: Promise<Arrival> }>;
  stop(): Promise<void>;
}

export interface ProxyTarget {
  address: string;
  trustDomain: string;
}

interface Proxy {
  node: string;
  client: XdsClient;
  bytes: number;
  pending: Set<string>;
  doneAt: bigint | undefined;
}

const SUBSCRIBED: TypeUrl[] = [TYPE.workload, TYPE.service, TYPE.authorization, TYPE.trustBundle];
const keyOf = (type: TypeUrl, name: string) => `${type}\u0000${name}`;

/** Joins `node` with a fresh token, as a node agent does. */
export async function joinNode(cp: ControlPlane, node: string): Promise<NodeCredential> {
  const { token } = await cp.tokens.issue(node);
  const ca = new CaClient({
    address: cp.grpcAddress,
    trustDomain: cp.ca.trustDomain,
    trustBundlePem: cp.ca.bundle.toPem(),
  });
  try {
    return await ca.join(token, node);
  } finally {
    ca.close();
  }
}

/** Joins `count` nodes named `<prefix>-0…`, one at a time. */
export async function joinNodes(cp: ControlPlane, prefix: string, count: number): Promise<NodeCredential[]> {
  const creds: NodeCredential[] = [];
  for (let i = 0; i < count; i++) creds.push(await joinNode(cp, `${prefix}-${i}`));
  return creds;
}

/** Proxies in this thread. */
export class LocalFleet implements ProxyFleet {
  private readonly proxies: Proxy[] = [];
  private expectations = new Map<string, string>();
  private remaining = 0;
  private onAllDone: (() => void) | undefined;
  initialBytes: number[] = [];

  /** Starts one proxy per credential; resolves when every proxy has synced every type. */
  static async start(target: ProxyTarget, creds: readonly NodeCredential[]): Promise<LocalFleet> {
    const fleet = new LocalFleet();
    try {
      for (const cred of creds) fleet.add(target, cred);
      await Promise.all(fleet.proxies.map((p) => p.client.whenSynced()));
      fleet.initialBytes = fleet.proxies.map((p) => p.bytes);
      return fleet;
    } catch (err) {
      await fleet.stop();
      throw err;
    }
  }

  get nodes(): string[] {
    return this.proxies.map((p) => p.node);
  }

  async expect(expectations: readonly Expectation[]): Promise<{ arrived: Promise<Arrival> }> {
    return { arrived: this.arm(expectations) };
  }

  /** Arms synchronously; the promise resolves when every proxy holds the change. */
  arm(expectations: readonly Expectation[]): Promise<Arrival> {
    if (this.onAllDone) return Promise.reject(new Error('a change is already being watched'));
    this.expectations = new Map(expectations.map((e) => [keyOf(e.type, e.name), e.contains]));
    this.remaining = this.proxies.length;
    for (const p of this.proxies) {
      p.bytes = 0;
      p.pending = new Set(this.expectations.keys());
      p.doneAt = undefined;
    }
    return new Promise((resolve) => {
      this.onAllDone = () => {
        this.onAllDone = undefined;
        resolve({ doneAt: this.proxies.map((p) => p.doneAt!), bytes: this.proxies.map((p) => p.bytes) });
      };
    });
  }

  async stop(): Promise<void> {
    for (const p of this.proxies) p.client.stop();
  }

  private add(target: ProxyTarget, cred: NodeCredential): void {
    const proxy: Proxy = {
      node: cred.node,
      bytes: 0,
      pending: new Set(),
      doneAt: undefined,
      client: new XdsClient({
        target: target.address,
        credentials: () => controlPlaneCredentials(target.trustDomain, cred.trustBundlePem, cred),
        channelOptions: CONTROL_CHANNEL_OPTIONS,
        node: { kind: 'ztunnel', name: cred.node },
        types: SUBSCRIBED,
        apply: (type, delta) => {
          for (const u of delta.upserts) {
            // The body on the wire is JSON.stringify of the value; parsing and re-serialising JSON
            // data gives the same bytes, so this is the body length the proxy was sent.
            const body = JSON.stringify(u.value);
            proxy.bytes += Buffer.byteLength(body);
            const key = keyOf(type, u.name);
            const wanted = this.expectations.get(key);
            if (wanted !== undefined && body.includes(wanted)) proxy.pending.delete(key);
          }
        },
        backoff: { initialMs: 50, maxMs: 500 },
      }),
    };
    // 'update' fires after the client has written its ACK for the response.
    proxy.client.on('update', () => {
      if (!this.onAllDone || proxy.doneAt !== undefined || proxy.pending.size > 0) return;
      proxy.doneAt = process.hrtime.bigint();
      if (--this.remaining === 0) this.onAllDone();
    });
    this.proxies.push(proxy);
    proxy.client.start();
  }
}

/** Messages between WorkerFleet and fleet-worker.ts. */
export type ToWorker =
  | { op: 'start'; target: ProxyTarget; creds: NodeCredential[] }
  | { op: 'expect'; expectations: Expectation[] }
  | { op: 'stop' };
export type FromWorker =
  | { op: 'started'; initialBytes: number[] }
  | { op: 'armed' }
  | { op: 'arrived'; arrival: Arrival }
  | { op: 'stopped' }
  | { op: 'failed'; error: string };

/** Proxies in a worker thread: the control plane's event loop does only the control plane's work. */
export class WorkerFleet implements ProxyFleet {
  private readonly worker: Worker;
  readonly nodes: string[];
  initialBytes: number[] = [];
  private waiting:
    | { op: FromWorker['op']; resolve: (m: FromWorker) => void; reject: (e: Error) => void }
    | undefined;

  private constructor(worker: Worker, nodes: string[]) {
    this.worker = worker;
    this.nodes = nodes;
    worker.on('message', (m: FromWorker) => {
      const w = this.waiting;
      this.waiting = undefined;
      if (m.op === 'failed') w?.reject(new Error(`proxy worker: ${m.error}`));
      else if (w?.op === m.op) w.resolve(m);
      else w?.reject(new Error(`proxy worker answered ${m.op}, expected ${w.op}`));
    });
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', (code) => this.fail(new Error(`proxy worker exited with code ${code}`)));
  }

  static async start(target: ProxyTarget, creds: NodeCredential[]): Promise<WorkerFleet> {
    const worker = new Worker(new URL('./fleet-worker.ts', import.meta.url));
    const fleet = new WorkerFleet(
      worker,
      creds.map((c) => c.node),
    );
    try {
      const m = await fleet.ask({ op: 'start', target, creds }, 'started');
      if (m.op === 'started') fleet.initialBytes = m.initialBytes;
      return fleet;
    } catch (err) {
      await worker.terminate();
      throw err;
    }
  }

  async expect(expectations: readonly Expectation[]): Promise<{ arrived: Promise<Arrival> }> {
    await this.ask({ op: 'expect', expectations: [...expectations] }, 'armed');
    const arrived = this.wait('arrived').then((m) => (m as Extract<FromWorker, { op: 'arrived' }>).arrival);
    arrived.catch(() => {}); // the caller awaits it; do not report it unhandled meanwhile
    return { arrived };
  }

  async stop(): Promise<void> {
    try {
      await this.ask({ op: 'stop' }, 'stopped');
    } finally {
      this.worker.removeAllListeners('exit');
      await this.worker.terminate();
    }
  }

  private ask(message: ToWorker, answer: FromWorker['op']): Promise<FromWorker> {
    const answered = this.wait(answer);
    this.worker.postMessage(message);
    return answered;
  }

  private wait(answer: FromWorker['op']): Promise<FromWorker> {
    if (this.waiting) return Promise.reject(new Error('the proxy worker is busy'));
    return new Promise((resolve, reject) => {
      this.waiting = { op: answer, resolve, reject };
    });
  }

  private fail(err: Error): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(err);
  }
}
