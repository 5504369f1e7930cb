// The replicas of a control plane on etcd, as they see each other. Each replica holds a lease (TTL a
// few seconds, kept alive by the client) and writes its report under `members/<name>` bound to it,
// once a second; it reads everyone's reports at the same pace. Duties are etcd elections (the
// concurrency recipe of etcd's Go client): the replica whose campaign key is oldest holds the duty
// until its lease ends, so a killed leader is replaced within the TTL. These keys live beside the
// store's prefix (`<prefix>-replicas/`), never under it, so the resource watch never sees them.

import type { Campaign, Etcd3, Lease, Namespace } from 'etcd3';
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

export interface EtcdReplicasOptions {
  /** Seconds a dead replica's report and duties outlive it (default 5). */
  ttlSeconds?: number;
  /** How often the report is written and the others' read (default 1 s). */
  intervalMs?: number;
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
  private readonly held = new Set<string>();
  private readonly campaigns = new Map<string, Campaign>();
  private readonly retries = new Set<NodeJS.Timeout>();
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

  lead(name: string, duty: Duty): void {
    if (this.closed) return;
    const campaign = this.ns.election(name, this.ttl).campaign(this.self);
    this.campaigns.set(name, campaign);
    campaign.on('elected', () => {
      if (this.closed || this.campaigns.get(name) !== campaign) return;
      this.held.add(name);
      log.info({ duty: name, replica: this.self }, 'this replica holds the duty');
      duty.start();
    });
    campaign.on('error', (err: unknown) => {
      if (this.campaigns.get(name) !== campaign) return;
      this.campaigns.delete(name);
      if (this.held.delete(name)) {
        log.warn({ duty: name, err: describeError(err) }, 'this replica lost the duty; campaigning again');
        duty.stop();
      } else log.debug({ duty: name, err: describeError(err) }, 'campaign failed; trying again');
      campaign.resign().catch(() => {});
      if (this.closed) return;
      const retry = setTimeout(() => {
        this.retries.delete(retry);
        this.lead(name, duty);
      }, 1_000);
      retry.unref();
      this.retries.add(retry);
    });
  }

  all(): ReplicaReport[] {
    const own = reportOf(this.me, this.held, this.health);
    return [own, ...this.others.filter((r) => r.replica !== this.self)];
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    for (const t of this.retries) clearTimeout(t);
    const campaigns = [...this.campaigns.values()];
    this.campaigns.clear();
    this.held.clear();
    // Resigning and revoking let the others take over at once instead of after the TTL.
    await Promise.allSettled([...campaigns.map((c) => c.resign()), this.lease?.revoke()]);
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
      const report = reportOf(this.me, this.held, this.health);
      await this.lease.put(`${MEMBERS}${this.self}`).value(JSON.stringify(report));
      this.health = { kind: 'etcd', writable: true };
      this.others = parseReports(await this.ns.getAll().prefix(MEMBERS).strings());
    } catch (err) {
      this.health = { kind: 'etcd', writable: false, error: describeError(err) };
    } finally {
      this.ticking = false;
    }
  }
}

/** The reports that parse; another writer's junk under the prefix is skipped with a warning. */
function parseReports(values: Record<string, string>): ReplicaReport[] {
  const out: ReplicaReport[] = [];
  for (const [key, text] of Object.entries(values)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const result = replicaReport.safeParse(parsed);
    if (result.success) out.push(result.data);
    else log.warn({ key }, 'a replica report in etcd does not parse; skipping it');
  }
  return out.sort((a, b) => (a.replica < b.replica ? -1 : 1));
}
