// The etcd store: resources as JSON under a key prefix in etcd (v3 API), mirrored in memory from a
// watch so reads stay synchronous, as the embedded store's are. Every replica of the control plane
// keeps its own mirror of the same keys; etcd's revision is the store's revision and a resource's
// mod_revision its resourceVersion.
//
// Commits are optimistic and serial across replicas: each one is a transaction that also rewrites a
// marker key and only succeeds if the marker is as this replica last saw it, so a commit is built on
// every earlier one wherever it was made (a replica that lost the race catches up and builds again).
// The marker holds the commit's id, so a transaction that succeeded although its answer was lost (a
// retry after a timeout) is recognised as ours instead of being built twice.
//
// A watch that falls behind compaction (etcd cancels it) is replaced by a full relist, whose difference
// from the mirror is told to listeners as one change set; a lost connection resumes from the last
// revision seen.

import { randomUUID } from 'node:crypto';
import { ConsecutiveBreaker, circuitBreaker, handleWhen, noop } from 'cockatiel';
import { Etcd3, type IKeyValue, isRecoverableError, type Namespace, type Watcher } from 'etcd3';
import { AmbitError, describeError } from '../../errors/index.ts';
import { logger } from '../../log/index.ts';
import { CONTROL_ERRORS } from '../errors.ts';
import { EtcdReplicas } from './etcd-replicas.ts';
import { MirroredStore } from './mirror.ts';
import type { ReplicaSelf, Replicas } from './replicas.ts';
import { DEFAULT_ETCD_PREFIX } from './settings.ts';
import { type Change, type Store, type StoredObject, type StoredResource, stamp } from './types.ts';

const log = logger('store');

export interface EtcdStoreOptions {
  /** Client URLs of the etcd members, `http://host:2379` or `https://…`. */
  endpoints: string[];
  /** Where the store's keys live (default `/ambit`): resources under `<prefix>/resources/`. */
  prefix?: string;
  /** PEM: the CA that signed the members' certificates, and this client's pair for mutual TLS. */
  tls?: { caPem: string; certPem?: string; keyPem?: string };
  /** How long one request to etcd may take before it is refused (default 5 s). */
  requestTimeoutMs?: number;
  /** How long `open` keeps trying an etcd that does not answer (default 30 s). */
  startTimeoutMs?: number;
  /** How many times a commit that lost the race to another replica is built again (default 20). */
  maxAttempts?: number;
  /** Operations etcd takes in one transaction (its `--max-txn-ops`, default 128). */
  maxTxnOps?: number;
}

const RESOURCES = 'resources/';
/** A commit that another replica's beat: built again on the newer store. */
const LOST_RACE = Symbol('lost race');
/** How many times a commit etcd did not make (a member down) is sent again before the caller is told. */
const NOT_MADE_RETRIES = 4;
const MARKER = 'commit';

/** The part of the store's state a commit's compare reads. */
interface MarkerState {
  /** The marker's mod_revision; 0 while absent. */
  rev: number;
  value: string;
}

/** An error of a request that never reached etcd: no connection could be made to the member. */
function neverSent(err: unknown): boolean {
  return /ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|No connection established/.test(describeError(err));
}

function unavailable(what: string, endpoints: readonly string[], cause: unknown): AmbitError {
  return new AmbitError(
    CONTROL_ERRORS.STORE_UNAVAILABLE,
    `${what}: etcd at ${endpoints.join(', ')} did not answer (${describeError(cause)}); with a quorum of members up this clears by itself`,
    { cause },
  );
}

export class EtcdStore extends MirroredStore {
  private readonly client: Etcd3;
  private readonly ns: Namespace;
  private readonly opts: Required<Omit<EtcdStoreOptions, 'tls'>>;
  private readonly waiters = new Set<{ rev: number; done: () => void }>();
  private marker: MarkerState = { rev: 0, value: '' };
  private watcher: Watcher | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private relisting: Promise<void> | undefined;
  /**
   * Commits of this replica whose answer is pending, by id → the revision their marker was seen at (0:
   * not yet). Kept until the commit returns, so a transaction whose answer was lost is recognised as
   * made even after other replicas' commits have overwritten the marker.
   */
  private readonly inflight = new Map<string, number>();

  private constructor(client: Etcd3, opts: EtcdStoreOptions) {
    super();
    this.client = client;
    this.opts = {
      endpoints: opts.endpoints,
      prefix: opts.prefix ?? DEFAULT_ETCD_PREFIX,
      requestTimeoutMs: opts.requestTimeoutMs ?? 5_000,
      startTimeoutMs: opts.startTimeoutMs ?? 30_000,
      maxAttempts: opts.maxAttempts ?? 20,
      maxTxnOps: opts.maxTxnOps ?? 128,
    };
    this.ns = client.namespace(`${this.opts.prefix.replace(/\/+$/, '')}/`);
  }

  /** Connects, loads every resource under the prefix and starts following it; retries until etcd answers. */
  static async open(opts: EtcdStoreOptions): Promise<EtcdStore> {
    if (opts.endpoints.length === 0)
      throw new AmbitError(CONTROL_ERRORS.STORE_UNAVAILABLE, 'the etcd store needs at least one endpoint');
    const timeout = opts.requestTimeoutMs ?? 5_000;
    const client = new Etcd3({
      hosts: opts.endpoints,
      dialTimeout: timeout,
      // A deadline for each request; none for streams (the watch, lease keep-alives), which live on, and
      // HTTP/2 pings to find a member that vanished without closing its connection (etcd accepts one
      // every 5 s at most: its --grpc-keepalive-min-time).
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeout }),
      grpcOptions: { 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000 },
      // A member that failed three times in a row is skipped for a second (the client's default is five),
      // so writes resume soon after a member or the quorum is back.
      faultHandling: {
        // No retries inside the client: a transaction resent after a lost answer would fail its compare
        // and be taken for another replica's win; the store retries itself, knowing what it sent.
        global: noop,
        host: () =>
          circuitBreaker(handleWhen(isRecoverableError), {
            halfOpenAfter: 1_000,
            breaker: new ConsecutiveBreaker(3),
          }),
      },
      ...(opts.tls
        ? {
            credentials: {
              rootCertificate: Buffer.from(opts.tls.caPem),
              ...(opts.tls.certPem ? { certChain: Buffer.from(opts.tls.certPem) } : {}),
              ...(opts.tls.keyPem ? { privateKey: Buffer.from(opts.tls.keyPem) } : {}),
            },
          }
        : {}),
    });
    const store = new EtcdStore(client, opts);
    const deadline = Date.now() + store.opts.startTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await store.load();
        break;
      } catch (err) {
        if (Date.now() >= deadline) {
          client.close();
          throw unavailable('cannot open the store', opts.endpoints, err);
        }
        log.warn(
          { attempt, endpoints: opts.endpoints, err: describeError(err) },
          'etcd does not answer yet; retrying',
        );
        await new Promise((r) => setTimeout(r, Math.min(2_000, 200 * attempt)));
      }
    }
    store.follow();
    log.info(
      {
        endpoints: opts.endpoints,
        prefix: store.opts.prefix,
        revision: store.revision,
        resources: store.mirror.size,
      },
      'store opened (etcd)',
    );
    return store;
  }

  commit(build: (store: Store) => Change[]): Promise<{ rev: number; changes: Change[] }> {
    const next = this.queue.then(() => this.commitNow(build));
    this.queue = next.catch(() => {});
    return next;
  }

  /** Replicas that share duties and reports through etcd (close them before the store). */
  override replicas(self: ReplicaSelf): Replicas {
    return new EtcdReplicas(this.client, this.opts.prefix, self);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    await this.watcher?.cancel().catch(() => {});
    this.mirror.close();
    for (const w of this.waiters) w.done();
    this.client.close();
  }

  private async commitNow(build: (store: Store) => Change[]): Promise<{ rev: number; changes: Change[] }> {
    let rechecked = false;
    let notMade = 0;
    for (let attempt = 1; attempt <= this.opts.maxAttempts; attempt++) {
      if (this.closed) throw new AmbitError(CONTROL_ERRORS.STORE_CLOSED, 'the store is closed');
      const built = this.marker.rev;
      let changes: Change[];
      try {
        changes = build(this);
      } catch (err) {
        // A refusal decided on a mirror that may lag another replica's commit: decide again on the newest.
        if (!rechecked && (await this.catchUpWithEtcd(built))) {
          rechecked = true;
          continue;
        }
        throw err;
      }
      if (changes.length === 0) {
        if (!rechecked && (await this.catchUpWithEtcd(built))) {
          rechecked = true;
          continue;
        }
        return { rev: this.revision, changes };
      }
      if (changes.length + 1 > this.opts.maxTxnOps)
        throw new AmbitError(
          CONTROL_ERRORS.STORE_TOO_LARGE,
          `this change writes ${changes.length} resources in one transaction, and etcd takes at most ${this.opts.maxTxnOps} operations in one (its --max-txn-ops, 128 by default; tell Ambit a larger one with --etcd-max-txn-ops): apply in smaller batches, or raise both`,
        );
      const id = randomUUID();
      this.inflight.set(id, 0);
      try {
        const rev = await this.transact(id, changes);
        if (typeof rev === 'number')
          return {
            rev,
            changes: changes.map((c) => (c.op === 'put' ? { ...c, resource: stamp(c.resource, rev) } : c)),
          };
        if (rev !== LOST_RACE) {
          // Not made (a member that is down, the client not yet past it): another member may take it.
          if (++notMade > NOT_MADE_RETRIES)
            throw unavailable('the change was not made', this.opts.endpoints, rev.notMade);
          await new Promise((r) => setTimeout(r, 100 * notMade));
          continue;
        }
      } finally {
        this.inflight.delete(id);
      }
      log.debug({ attempt }, 'another replica committed first; building the change again');
    }
    throw new AmbitError(
      CONTROL_ERRORS.STORE_CONFLICT,
      `the change lost ${this.opts.maxAttempts} races in a row to other control-plane replicas (or this replica's view of the store is stuck behind); try again`,
    );
  }

  /**
   * Sends one commit as a transaction guarded by the marker this replica saw; its revision once the
   * mirror holds it, LOST_RACE when another replica committed first, or `notMade` when etcd says (by a
   * linearizable read of the marker) that it was not made although it could not be sent or answered.
   */
  private async transact(
    id: string,
    changes: readonly Change[],
  ): Promise<number | typeof LOST_RACE | { notMade: unknown }> {
    const guard = this.marker.rev;
    const ops = changes.map((c) =>
      c.op === 'put'
        ? this.ns.put(RESOURCES + c.resource.key).value(JSON.stringify(unstamped(c.resource.object)))
        : this.ns.delete().key(RESOURCES + c.key),
    );
    try {
      const res = await this.ns
        .if(MARKER, 'Mod', '==', guard)
        .then(...ops, this.ns.put(MARKER).value(id))
        .commit();
      if (!res.succeeded) {
        // Another replica's commit moved the marker: build again once the mirror holds it.
        await this.catchUpWithEtcd();
        return LOST_RACE;
      }
      const revision = Number(res.header.revision);
      await this.caughtUp(revision);
      return revision;
    } catch (err) {
      if (!isRecoverableError(err as Error))
        throw new AmbitError(CONTROL_ERRORS.STORE_WRITE, `etcd refused the change: ${describeError(err)}`, {
          cause: err,
        });
      // The answer was lost: the transaction may or may not have been applied. Its marker says, once
      // the mirror has caught up with etcd. The read, too, may meet the member that is down before the client moves past it.
      let moved: boolean | undefined;
      for (let i = 1; i <= NOT_MADE_RETRIES && moved === undefined && !this.closed; i++) {
        moved = await this.catchUpWithEtcd(guard).then(
          (m) => m,
          () => undefined,
        );
        if (moved === undefined) await new Promise((r) => setTimeout(r, 100 * i));
      }
      const seen = this.inflight.get(id) ?? 0;
      if (seen > 0) return seen;
      // Not made, for sure: it never left (no connection to the member), and etcd's marker has not moved
      // since (had it moved, the commit that moved it could be this one, seen only through a relist).
      if (moved === false && neverSent(err)) return { notMade: err };
      throw unavailable(
        'the change was not confirmed (it may or may not have been made: read it back)',
        this.opts.endpoints,
        err,
      );
    }
  }

  /**
   * Reads the marker from etcd (a linearizable read: every commit of every replica rewrites it) and waits
   * until the mirror holds it; true when etcd holds a commit after the marker revision `since`.
   */
  private async catchUpWithEtcd(since = this.marker.rev): Promise<boolean> {
    const res = await this.ns.get(MARKER).exec();
    const rev = Number(res.kvs[0]?.mod_revision ?? 0);
    if (rev <= since) return false;
    await this.caughtUp(rev);
    return true;
  }

  /** Resolves once the mirror has seen revision `rev` (or after the request timeout: the write stands). */
  private caughtUp(rev: number): Promise<void> {
    if (this.revision >= rev || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = {
        rev,
        done: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        // A watch on a member cut off from the others stays open and silent: read everything again
        // and watch anew (through whichever member answers).
        log.warn({ want: rev, have: this.revision }, 'the store watch is behind; relisting');
        this.relist();
        waiter.done();
      }, this.opts.requestTimeoutMs);
      this.waiters.add(waiter);
    });
  }

  /**
   * Reads every resource and the marker at one revision into the mirror (the first load, or a relist),
   * telling listeners what differs from what the mirror held.
   */
  private async load(): Promise<void> {
    const res = await this.ns.getAll().exec();
    const rev = Number(res.header.revision);
    // An answer older than what the watch already delivered would roll the mirror back.
    if (rev < this.revision) return;
    const fresh = new Map<string, StoredResource>();
    let marker: MarkerState = { rev: 0, value: '' };
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      if (key === MARKER) marker = { rev: Number(kv.mod_revision), value: kv.value.toString() };
      else if (key.startsWith(RESOURCES)) {
        const resource = this.decode(kv);
        if (resource) fresh.set(resource.key, resource);
      }
    }
    const changes: Change[] = [];
    for (const previous of this.mirror.list())
      if (!fresh.has(previous.key)) changes.push({ op: 'delete', key: previous.key, previous });
    for (const [key, resource] of fresh)
      if (this.mirror.get(key)?.rev !== resource.rev) changes.push({ op: 'put', resource });
    this.marker = marker;
    this.mirror.apply(Math.max(this.revision, rev), changes);
    this.advance(this.revision);
  }

  /** Starts the watch from the revision after the mirror's. */
  private follow(): void {
    if (this.closed) return;
    const watcher = this.ns
      .watch()
      .prefix('')
      .startRevision(String(this.revision + 1))
      .watcher();
    this.watcher = watcher;
    // The client resumes a broken watch from the revision of the last answer's header, which can be
    // past events not yet delivered (etcd answers "created" at its current revision and catches up
    // after): the resume point is the mirror's own, set after the client's own bookkeeping runs.
    const resumeFromMirror = () => {
      watcher.request.start_revision = String(this.revision + 1);
    };
    watcher.on('data', (res) => {
      if (watcher !== this.watcher) return;
      try {
        this.onEvents(res.events ?? []);
      } catch (err) {
        log.error({ err }, 'the store watch could not apply a change; relisting');
        this.relist();
      }
      resumeFromMirror();
    });
    watcher.on('connected', resumeFromMirror);
    watcher.on('disconnected', (err) => {
      resumeFromMirror();
      log.warn({ err: describeError(err) }, 'lost the etcd watch; resuming from the last revision seen');
    });
    watcher.on('error', (err) => {
      if (this.closed || watcher !== this.watcher) return;
      // Canceled by etcd, most often because the revision to resume from was compacted away.
      log.warn({ err: describeError(err) }, 'the etcd watch ended; relisting');
      this.relist();
    });
  }

  /** Reads everything again and tells listeners what differs (after a compaction, a canceled watch). */
  private relist(): void {
    if (this.relisting || this.closed) return;
    const old = this.watcher;
    this.watcher = undefined;
    void old?.cancel().catch(() => {});
    this.relisting = (async () => {
      for (let attempt = 1; !this.closed; attempt++) {
        try {
          await this.load();
          this.follow();
          return;
        } catch (err) {
          log.warn({ attempt, err: describeError(err) }, 'relisting the store failed; retrying');
          await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * attempt)));
        }
      }
    })().finally(() => {
      this.relisting = undefined;
    });
  }

  /** One watch response: its events grouped by the revision (the transaction) that made them. */
  private onEvents(events: ReadonlyArray<{ type: string; kv: IKeyValue }>): void {
    let group: Change[] = [];
    let groupRev = 0;
    const flush = () => {
      if (groupRev > this.revision) {
        this.mirror.apply(groupRev, group);
        this.advance(groupRev);
      }
      group = [];
    };
    for (const e of events) {
      const rev = Number(e.kv.mod_revision);
      if (rev !== groupRev) {
        flush();
        groupRev = rev;
      }
      if (rev <= this.revision) continue; // already in the mirror (a relist read it)
      const key = e.kv.key.toString();
      const deleted = e.type === 'Delete';
      if (key === MARKER) {
        this.marker = deleted ? { rev: 0, value: '' } : { rev, value: e.kv.value.toString() };
        if (this.inflight.has(this.marker.value)) this.inflight.set(this.marker.value, rev);
        continue;
      }
      if (!key.startsWith(RESOURCES)) continue;
      const name = key.slice(RESOURCES.length);
      if (deleted) {
        const previous = this.mirror.get(name);
        if (previous) group.push({ op: 'delete', key: name, previous });
      } else {
        const resource = this.decode(e.kv);
        if (resource) group.push({ op: 'put', resource });
      }
    }
    flush();
  }

  /** Moves the revision forward and wakes the commits waiting for it. */
  private advance(rev: number): void {
    this.mirror.advance(rev);
    for (const w of [...this.waiters]) if (w.rev <= this.revision) w.done();
  }

  /** A stored resource from its key-value; one that is not JSON of an object is logged and skipped. */
  private decode(kv: IKeyValue): StoredResource | undefined {
    const key = kv.key.toString().slice(RESOURCES.length);
    try {
      const object = JSON.parse(kv.value.toString()) as StoredObject;
      if (typeof object !== 'object' || object === null || typeof object.metadata !== 'object')
        throw new Error('not a resource');
      return stamp({ key, rev: Number(kv.mod_revision), object }, Number(kv.mod_revision));
    } catch (err) {
      log.error(
        { key, prefix: this.opts.prefix, err: describeError(err) },
        'a key under the store prefix is not a resource; ignoring it (was it written by something else?)',
      );
      return undefined;
    }
  }
}

/** The object as written to etcd: its resourceVersion is the key's mod_revision, not part of the value. */
function unstamped(object: StoredObject): StoredObject {
  const { resourceVersion: _rv, ...metadata } = object.metadata;
  return { ...object, metadata: metadata as StoredObject['metadata'] };
}
