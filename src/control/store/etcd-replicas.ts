// The replicas of a control plane on etcd, as they see each other. Each replica holds a lease (TTL a
// few seconds, kept alive by the client) and writes its report under `members/<name>` bound to it,
// once a second; it reads everyone's reports at the same pace. A duty is an election as in etcd's
// concurrency recipe: each candidate keeps a key `election/<duty>/<name>` bound to its lease, and the
// one whose key was created first (the lowest create revision, read linearizably) holds the duty, so
// a killed holder is replaced within the TTL and one that shuts down at once (its lease revoked).
// Candidates look once a second, with the report, rather than watch (a watch left waiting would keep
// a stopping process alive). These keys live beside the store's prefix (`<prefix>-replicas/`), never
// under it, so the resource watch never sees them.
//
// A holder that cannot reach etcd gives its duties up after half the TTL, before etcd can end its
// lease and another can be first (at one TTL), so two replicas never hold a duty at once.

import type { Etcd3, Lease, Namespace } from 'etcd3';
import { describeError } from '../../errors/index.ts';
import { logger } from '../../log/index.ts';
import {
  type Duty,
  type ReplicaReport,
  type ReplicaSelf,
  type Replicas,
  replicaReport,
  reportOf,
  type StoreHealth,
} from './replicas.ts';

const log = logger('replicas');

const MEMBERS = 'members/';
const ELECTION = 'election/';

export interface EtcdReplicasOptions {
  /** Seconds a dead replica's report and duties outlive it (default 5). */
  ttlSeconds?: number;
  /** How often the report is written and the others' read (default 1 s). */
  intervalMs?: number;
}

interface Held {
  duty: Duty;
  /** True between `start` and `stop`. */
  on: boolean;
}

export class EtcdReplicas implements Replicas {
  readonly self: string;
  private readonly me: ReplicaSelf;
  private readonly ns: Namespace;
  private readonly ttl: number;
  private readonly timer: NodeJS.Timeout;
  private lease: Lease | undefined;
  private others: ReplicaReport[] = [];
  private health: StoreHealth = { kind: 'etcd', writable: false, error: 'not written yet' };
  /** When this replica last wrote to etcd (ms). */
  private lastWrite = Date.now();
  private readonly duties = new Map<string, Held>();
  /** Keys whose bad report was logged, with the value logged (each is logged once). */
  private readonly warned = new Map<string, string>();
  private ticking = false;
  private closed = false;

  constructor(client: Etcd3, prefix: string, self: ReplicaSelf, opts: EtcdReplicasOptions = {}) {
    this.self = self.name;
    this.me = self;
    this.ns = client.namespace(`${prefix.replace(/\/+$/, '')}-replicas/`);
    this.ttl = opts.ttlSeconds ?? 5;
    this.timer = setInterval(() => void this.tick(), opts.intervalMs ?? 1_000);
    this.timer.unref();
    void this.tick();
  }

  holds(name: string): boolean {
    return this.duties.get(name)?.on === true;
  }

  lead(name: string, duty: Duty): void {
    if (this.closed) return;
    this.duties.set(name, { duty, on: false });
    void this.tick();
  }

  all(): ReplicaReport[] {
    const own = reportOf(this.me, this.heldNames(), this.health);
    return [own, ...this.others.filter((r) => r.replica !== this.self)];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const held of this.duties.values()) this.stop(held);
    // Revoking the lease drops the report and the candidacies: another replica takes over at once.
    await this.lease?.revoke().catch(() => {});
  }

  private heldNames(): string[] {
    return [...this.duties].filter(([, h]) => h.on).map(([name]) => name);
  }

  private stop(held: Held): void {
    if (!held.on) return;
    held.on = false;
    held.duty.stop();
  }

  /** Writes this replica's report under its lease and reads everyone's. */
  private async tick(): Promise<void> {
    if (this.ticking || this.closed) return;
    this.ticking = true;
    try {
      if (!this.lease) {
        const lease = this.ns.lease(this.ttl);
        lease.on('lost', () => {
          if (this.lease === lease) this.lease = undefined;
        });
        this.lease = lease;
      }
      const lease = this.lease;
      const report = reportOf(this.me, this.heldNames(), this.health);
      await lease.put(`${MEMBERS}${this.self}`).value(JSON.stringify(report));
      this.lastWrite = Date.now();
      this.health = { kind: 'etcd', writable: true };
      this.others = this.parseReports(await this.ns.getAll().prefix(MEMBERS).strings());
      for (const [name, held] of this.duties) {
        const prefix = `${ELECTION}${name}/`;
        await lease.put(`${prefix}${this.self}`).value(this.self);
        const first = await this.ns.getAll().prefix(prefix).sort('Create', 'Ascend').limit(1).keys();
        if (this.closed || this.duties.get(name) !== held) return;
        const holder = first[0]?.slice(prefix.length);
        if (holder === this.self && !held.on) {
          held.on = true;
          log.info({ duty: name, replica: this.self }, 'this replica holds the duty');
          held.duty.start();
        } else if (holder !== this.self && held.on) {
          log.warn({ duty: name, holder }, 'another replica holds the duty now; this one stops');
          this.stop(held);
        }
      }
    } catch (err) {
      if (this.closed) return;
      this.health = { kind: 'etcd', writable: false, error: describeError(err) };
      const silent = Date.now() - this.lastWrite;
      // Cut off from etcd for half the TTL: another replica may be first at one TTL, so stop before.
      if (silent > (this.ttl * 1000) / 2)
        for (const [name, held] of this.duties)
          if (held.on) {
            log.warn(
              { duty: name, err: describeError(err) },
              'cut off from etcd: this replica gives the duty up',
            );
            this.stop(held);
          }
      // Reports that can no longer be refreshed say nothing true about the others.
      if (silent > this.ttl * 1000 * 2) this.others = [];
    } finally {
      this.ticking = false;
    }
  }

  /** The reports that parse and sit under their own name; anything else is skipped, logged once. */
  private parseReports(values: Record<string, string>): ReplicaReport[] {
    const out: ReplicaReport[] = [];
    for (const [key, text] of Object.entries(values)) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      const result = replicaReport.safeParse(parsed);
      const name = key.slice(MEMBERS.length);
      const why = !result.success
        ? 'does not parse'
        : result.data.replica !== name
          ? `names another replica ("${result.data.replica}")`
          : name === this.self && result.data.grpc !== this.me.grpc
            ? `is another replica's under this replica's name (at ${result.data.grpc}): give each replica its own --replica-name`
            : undefined;
      if (why === undefined) {
        if (name !== this.self) out.push(result.data!);
        continue;
      }
      if (this.warned.get(key) !== text) {
        this.warned.set(key, text);
        log.warn({ key }, `a replica report in etcd ${why}; skipping it`);
      }
    }
    return out.sort((a, b) => (a.replica < b.replica ? -1 : 1));
  }
}
