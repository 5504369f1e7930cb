// What the control plane's replicas know of each other through their store: which replica holds a
// duty that must run once (the waypoint deployer), and what each one reports — the proxies connected
// to it and whether it can write the store. With the embedded store there is one replica, which holds
// every duty; with etcd, duties are held under an election lease and reports are keys bound to each
// replica's lease, so a replica that dies drops out of both within the lease's TTL.

import { z } from 'zod';

/** A replica's name: a key part in etcd, so letters, digits and `.:_[]-` only (a host:port fits). */
export const REPLICA_NAME = /^[A-Za-z0-9[][A-Za-z0-9.:_[\]-]{0,252}$/;
export const REPLICA_NAME_RULE =
  'a replica name is 1-253 letters, digits or . : _ [ ] - (a host:port fits), starting with a letter, digit or [';

/** A proxy's row in a replica's report (the config stream's view of one connected proxy). */
export const reportedProxy = z.object({
  id: z.string(),
  kind: z.string(),
  name: z.string(),
  identity: z.string(),
  connectedAt: z.string(),
  state: z.string(),
  types: z.record(
    z.string(),
    z.object({
      ackedVersion: z.string().optional(),
      sentVersion: z.string().optional(),
      sentAt: z.number().optional(),
      nack: z.object({ version: z.string(), error: z.string() }).optional(),
      resources: z.number(),
    }),
  ),
});
export type ReportedProxy = z.infer<typeof reportedProxy>;

/** Whether a replica can write the store: `ok`, or why not. */
export const storeHealth = z.object({
  kind: z.enum(['embedded', 'etcd']),
  writable: z.boolean(),
  error: z.string().optional(),
});
export type StoreHealth = z.infer<typeof storeHealth>;

/** What one replica says about itself. `at` is when it last said it (ISO time). */
export const replicaReport = z.object({
  replica: z.string().regex(REPLICA_NAME, REPLICA_NAME_RULE),
  /** The address proxies dial to reach it. */
  grpc: z.string(),
  duties: z.array(z.string()),
  store: storeHealth,
  proxies: z.array(reportedProxy),
  at: z.string(),
});
export type ReplicaReport = z.infer<typeof replicaReport>;

/** A duty only one replica may do at a time: `start` when this replica is given it, `stop` when it loses it. */
export interface Duty {
  start(): void;
  stop(): void;
}

/** This replica: its name, where proxies reach it, and the proxies connected to it now. */
export interface ReplicaSelf {
  name: string;
  grpc: string;
  proxies(): readonly ReportedProxy[];
}

export interface Replicas {
  /** This replica's name. */
  readonly self: string;
  /** Campaigns for `name` until closed; `duty` runs while this replica holds it (stopped on close). */
  lead(name: string, duty: Duty): void;
  /** Whether this replica holds `name` now: checked before each step of a duty. */
  holds(name: string): boolean;
  /** Every live replica's latest report, this one's first and current. */
  all(): ReplicaReport[];
  close(): Promise<void>;
}

/** This replica's report as of now. */
export function reportOf(self: ReplicaSelf, duties: Iterable<string>, store: StoreHealth): ReplicaReport {
  return {
    replica: self.name,
    grpc: self.grpc,
    duties: [...duties].sort(),
    store,
    proxies: [...self.proxies()],
    at: new Date().toISOString(),
  };
}

/** The lone replica of an embedded store: it holds every duty and is the only one to report. */
export class LocalReplicas implements Replicas {
  readonly self: string;
  private readonly me: ReplicaSelf;
  private readonly duties = new Map<string, Duty>();

  constructor(self: ReplicaSelf) {
    this.self = self.name;
    this.me = self;
  }

  lead(name: string, duty: Duty): void {
    this.duties.set(name, duty);
    duty.start();
  }

  holds(name: string): boolean {
    return this.duties.has(name);
  }

  all(): ReplicaReport[] {
    return [reportOf(this.me, this.duties.keys(), { kind: 'embedded', writable: true })];
  }

  async close(): Promise<void> {
    for (const duty of this.duties.values()) duty.stop();
    this.duties.clear();
  }
}
