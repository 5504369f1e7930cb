// Simulated proxies for the control-plane benchmark: N joined nodes, each a real XdsClient over gRPC
// with TLS on 127.0.0.1 and its own node credential, recording when a watched change has fully
// arrived and how many resource bytes each proxy received.

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

/** One resource a change must bring, and how to tell that a proxy holds the new value. */
export interface Expectation {
  type: TypeUrl;
  name: string;
  holds: (value: unknown) => boolean;
}

interface Proxy {
  node: string;
  client: XdsClient;
  /** Resource body bytes received since the last `expect`. */
  bytes: number;
  pending: Set<string>;
  doneAt: bigint | undefined;
}

const SUBSCRIBED: TypeUrl[] = [TYPE.workload, TYPE.service, TYPE.authorization, TYPE.trustBundle];
const keyOf = (type: TypeUrl, name: string) => `${type}\u0000${name}`;

/** Joins `node` with a fresh token, as a node agent does. */
export async function joinNode(cp: ControlPlane, node: string): Promise<NodeCredential> {
  const { token } = cp.tokens.issue(node);
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

export class Fleet {
  private readonly proxies: Proxy[] = [];
  private expectations = new Map<string, Expectation>();
  private remaining = 0;
  private onAllDone: (() => void) | undefined;

  /** Joins `count` nodes named `<prefix>-0…` and starts one proxy each; resolves when all are synced. */
  static async start(cp: ControlPlane, prefix: string, count: number): Promise<Fleet> {
    const fleet = new Fleet();
    try {
      const creds: NodeCredential[] = [];
      for (let i = 0; i < count; i++) creds.push(await joinNode(cp, `${prefix}-${i}`));
      for (const cred of creds) fleet.add(cp, cred);
      await Promise.all(fleet.proxies.map((p) => p.client.whenSynced()));
      return fleet;
    } catch (err) {
      fleet.stop();
      throw err;
    }
  }

  get size(): number {
    return this.proxies.length;
  }

  get nodes(): string[] {
    return this.proxies.map((p) => p.node);
  }

  /** Resource body bytes each proxy received since the last `expect` (or since it started). */
  bytes(): number[] {
    return this.proxies.map((p) => p.bytes);
  }

  /**
   * Arms the fleet for one change: resolves with the moment (process.hrtime, ns) each proxy held every
   * expected value and had ACKed the response that completed it. Byte counters restart from zero.
   */
  expect(expectations: readonly Expectation[]): Promise<bigint[]> {
    if (this.onAllDone) throw new Error('a change is already being watched');
    this.expectations = new Map(expectations.map((e) => [keyOf(e.type, e.name), e]));
    this.remaining = this.proxies.length;
    for (const p of this.proxies) {
      p.bytes = 0;
      p.pending = new Set(this.expectations.keys());
      p.doneAt = undefined;
    }
    return new Promise((resolve) => {
      this.onAllDone = () => {
        this.onAllDone = undefined;
        resolve(this.proxies.map((p) => p.doneAt!));
      };
    });
  }

  stop(): void {
    for (const p of this.proxies) p.client.stop();
  }

  private add(cp: ControlPlane, cred: NodeCredential): void {
    const proxy: Proxy = {
      node: cred.node,
      bytes: 0,
      pending: new Set(),
      doneAt: undefined,
      client: new XdsClient({
        target: cp.grpcAddress,
        credentials: () => controlPlaneCredentials(cp.ca.trustDomain, cred.trustBundlePem, cred),
        channelOptions: CONTROL_CHANNEL_OPTIONS,
        node: { kind: 'ztunnel', name: cred.node },
        types: SUBSCRIBED,
        apply: (type, delta) => {
          for (const u of delta.upserts) {
            // The body on the wire is JSON.stringify of the value; parsing and re-serialising JSON
            // data gives the same bytes, so this is the body length the proxy was sent.
            proxy.bytes += Buffer.byteLength(JSON.stringify(u.value));
            const key = keyOf(type, u.name);
            if (this.expectations.get(key)?.holds(u.value)) proxy.pending.delete(key);
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
