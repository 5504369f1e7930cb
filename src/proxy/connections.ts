// The connection table: every proxied connection a proxy holds, in one place. It meters each one
// (Istio's TCP counters), writes its one access-log line, and cuts connections on demand (a policy
// change, a workload that left, shutdown), so no path counts, logs or closes on its own.

import type { Logger } from '../log/index.ts';
import { type ConnectionRecord, logConnection, type TcpLabels, type TcpMetrics } from '../telemetry/index.ts';

/** What the admin's `/connections` shows of a connection. */
export interface ConnectionView {
  id: number;
  direction: 'inbound' | 'outbound';
  src: string;
  dst: string;
  workload?: string;
  peerIdentity?: string;
  startedAt: string;
}

/** A tracked connection: its view, how to cut it, and what the proxy asks of it (`M`) when state changes. */
export interface TrackedConnection<M> extends ConnectionView {
  abort: (why: Error) => void;
  meta: M;
}

/** Bytes of a connection as the metrics count them: from the client (request) and to it (response). */
export interface ConnectionBytes {
  fromClient: number;
  toClient: number;
}

const NO_BYTES: ConnectionBytes = { fromClient: 0, toClient: 0 };

export class ConnectionTable<M> {
  private readonly open = new Map<number, TrackedConnection<M>>();
  private nextId = 0;

  private readonly tcp: TcpMetrics;
  private readonly accessLog: Logger;

  constructor(tcp: TcpMetrics, accessLog: Logger) {
    this.tcp = tcp;
    this.accessLog = accessLog;
  }

  get size(): number {
    return this.open.size;
  }

  /**
   * A connection starts carrying bytes: counted opened (when it is metered: `labels`; passthrough is not)
   * and given its id for `track` and `finish`.
   */
  opened(labels: TcpLabels | undefined): number {
    if (labels) this.tcp.open(labels);
    return ++this.nextId;
  }

  track(id: number, connection: Omit<TrackedConnection<M>, 'id'>): void {
    this.open.set(id, { id, ...connection });
  }

  untrack(id: number): void {
    this.open.delete(id);
  }

  /** A tracked connection ended: forgotten, counted closed with its bytes, and its access-log line. */
  finish(id: number, labels: TcpLabels | undefined, bytes: ConnectionBytes, record: ConnectionRecord): void {
    this.open.delete(id);
    this.closed(labels, bytes, record);
  }

  /** A connection ended that was counted opened elsewhere: counted closed, and its access-log line. */
  closed(labels: TcpLabels | undefined, bytes: ConnectionBytes, record: ConnectionRecord): void {
    if (labels) this.tcp.close(labels, bytes);
    logConnection(this.accessLog, record);
  }

  /**
   * A connection refused or failed before it was proxied: counted opened and closed with the record's
   * flags as `response_flags` (when metered), and its access-log line.
   */
  refused(labels: TcpLabels | undefined, record: ConnectionRecord, bytes: ConnectionBytes = NO_BYTES): void {
    const flagged = labels ? { ...labels, response_flags: record.flags } : undefined;
    if (flagged) this.tcp.open(flagged);
    this.closed(flagged, bytes, record);
  }

  /**
   * Cuts every connection `cut` selects, with the error `why` gives it, and forgets it (its splice still
   * reports it closed); returns those it cut.
   */
  cutWhere(cut: (c: TrackedConnection<M>) => boolean, why: () => Error): TrackedConnection<M>[] {
    const gone: TrackedConnection<M>[] = [];
    for (const c of this.open.values()) {
      if (!cut(c)) continue;
      c.abort(why());
      this.open.delete(c.id);
      gone.push(c);
    }
    return gone;
  }

  /** Cuts whatever is still open (the end of a drain); each connection reports its own close. */
  cutAll(why: () => Error): void {
    for (const c of this.open.values()) c.abort(why());
  }

  view(): ConnectionView[] {
    return [...this.open.values()].map(({ abort: _a, meta: _m, ...rest }) => rest);
  }
}
