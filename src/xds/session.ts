// One proxy's stream, seen from the control plane, free of any transport: what the proxy holds
// (ACKed), what is in flight, what it refused (NACK). At most one response per type is in flight;
// snapshots that arrive meanwhile are coalesced, so a slow proxy costs one pending diff, never a queue.

import { randomBytes } from 'node:crypto';
import { diff, type Snapshot, type TypeDelta, type TypeUrl } from './snapshot.ts';
import type { DeltaRequest, DeltaResponse, XdsNode } from './types.ts';

export interface TypeStatus {
  /** Snapshot version of the last response the proxy ACKed. */
  ackedVersion: string | undefined;
  /** Snapshot version of the response in flight, if any. */
  sentVersion: string | undefined;
  sentAt: number | undefined;
  /** The proxy's error for the last response it NACKed, until it ACKs a later one. */
  nack: { version: string; error: string } | undefined;
  resources: number;
}

export type ProxySyncState = 'SYNCED' | 'STALE' | 'NACKED';

interface TypeState {
  held: Map<string, string>;
  inflight:
    | { nonce: string; version: string; upserts: Map<string, string>; removed: string[]; at: number }
    | undefined;
  status: TypeStatus;
}

export class StreamSession {
  readonly id: string;
  readonly connectedAt = new Date().toISOString();
  node: XdsNode | undefined;
  private readonly types = new Map<TypeUrl, TypeState>();
  private snapshot: Snapshot;
  private readonly send: (response: DeltaResponse) => void;
  private readonly now: () => number;

  constructor(id: string, snapshot: Snapshot, send: (response: DeltaResponse) => void, now = Date.now) {
    this.id = id;
    this.snapshot = snapshot;
    this.send = send;
    this.now = now;
  }

  /** Handles one request from the proxy: subscribe (with versions it holds), ACK or NACK. */
  onRequest(req: DeltaRequest): void {
    if (req.node && !this.node) this.node = req.node;
    let state = this.types.get(req.typeUrl);
    if (!state) {
      state = {
        held: new Map(Object.entries(req.initialResourceVersions ?? {})),
        inflight: undefined,
        status: {
          ackedVersion: undefined,
          sentVersion: undefined,
          sentAt: undefined,
          nack: undefined,
          resources: 0,
        },
      };
      this.types.set(req.typeUrl, state);
      this.push(req.typeUrl, state);
      return;
    }
    const inflight = state.inflight;
    if (!req.responseNonce || !inflight || req.responseNonce !== inflight.nonce) return; // stale or duplicate
    state.inflight = undefined;
    state.status.sentVersion = undefined;
    state.status.sentAt = undefined;
    if (req.errorDetail) {
      // NACK: the proxy keeps its last good state; so do we, and we wait for the next snapshot.
      state.status.nack = { version: inflight.version, error: req.errorDetail };
      return;
    }
    for (const [name, version] of inflight.upserts) state.held.set(name, version);
    for (const name of inflight.removed) state.held.delete(name);
    state.status.ackedVersion = inflight.version;
    state.status.nack = undefined;
    state.status.resources = state.held.size;
    // Already at the current snapshot: nothing can differ, so skip walking the whole type again.
    if (inflight.version !== this.snapshot.version) this.push(req.typeUrl, state);
  }

  /** A new snapshot: push to every subscribed type that has nothing in flight. */
  onSnapshot(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    for (const [type, state] of this.types) {
      if (!state.inflight) this.push(type, state);
    }
  }

  status(): { node: XdsNode | undefined; state: ProxySyncState; types: Record<string, TypeStatus> } {
    const types: Record<string, TypeStatus> = {};
    let state: ProxySyncState = 'SYNCED';
    for (const [type, s] of this.types) {
      types[type] = { ...s.status };
      if (s.status.nack) state = 'NACKED';
      else if (state === 'SYNCED' && (s.inflight || s.status.ackedVersion !== this.snapshot.version))
        state = 'STALE';
    }
    return { node: this.node, state, types };
  }

  /** The delta from what the proxy holds: precomputed when it holds the previous snapshot, else a diff. */
  private deltaFor(type: TypeUrl, state: TypeState): TypeDelta {
    const previous = this.snapshot.previous;
    const desired = this.snapshot.types.get(type);
    const changes = previous?.changes.get(type);
    if (changes && state.status.ackedVersion === previous?.version) {
      const upserts = changes.upserts.flatMap((name) => {
        const r = desired?.get(name);
        return r ? [{ name, version: r.version, body: r.body }] : [];
      });
      return { upserts, removed: changes.removed.filter((name) => state.held.has(name)) };
    }
    return diff(state.held, desired);
  }

  private push(type: TypeUrl, state: TypeState): void {
    // After a NACK, do not resend the same snapshot: it would be refused again.
    if (state.status.nack?.version === this.snapshot.version) return;
    const delta = this.deltaFor(type, state);
    const first = state.status.ackedVersion === undefined;
    if (delta.upserts.length === 0 && delta.removed.length === 0) {
      if (!first) {
        state.status.ackedVersion = this.snapshot.version;
        return;
      }
      // The first answer is sent even when empty, so the proxy knows it is synced.
    }
    const nonce = randomBytes(8).toString('hex');
    state.inflight = {
      nonce,
      version: this.snapshot.version,
      upserts: new Map(delta.upserts.map((u) => [u.name, u.version])),
      removed: delta.removed,
      at: this.now(),
    };
    state.status.sentVersion = this.snapshot.version;
    state.status.sentAt = state.inflight.at;
    this.send({
      typeUrl: type,
      systemVersionInfo: this.snapshot.version,
      resources: delta.upserts,
      removedResources: delta.removed,
      nonce,
    });
  }
}
