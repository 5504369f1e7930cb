// Refusals over the caps: the connection and handshake slots, and what a refusal costs (a counter, an
// access-log line, and a warning at most every 10 s, so a flood cannot flood the log).

import type { Logger } from '../log/index.ts';
import type { ConnectionTable } from '../proxy/index.ts';
import type { ConnectionRecord, TcpLabels } from '../telemetry/index.ts';
import { Admission, type ConnectionLimits, OVERFLOW_FLAG } from './limits.ts';

export type Capped = 'connections' | 'handshakes';

export function overLimit(what: Capped, source: string): string {
  return `over the ${what} limit (${source} or the node is at its cap)`;
}

const WARN_EVERY_MS = 10_000;

export class Overload {
  /** Proxied connections, per source workload (outbound) or source address (inbound). */
  readonly connectionSlots: Admission;
  /** TLS handshakes in progress on 15008, per source address. */
  readonly handshakeSlots: Admission;
  private readonly limits: ConnectionLimits;
  private readonly connections: ConnectionTable<unknown>;
  private readonly log: Logger;
  private refusedSinceWarning = 0;
  private lastRefusalWarning = 0;

  constructor(limits: ConnectionLimits, connections: ConnectionTable<unknown>, log: Logger) {
    this.limits = limits;
    this.connections = connections;
    this.log = log;
    this.connectionSlots = new Admission(limits.maxConnections, limits.maxConnectionsPerSource);
    this.handshakeSlots = new Admission(limits.maxHandshakes, limits.maxHandshakesPerSource);
  }

  /** Counts a connection refused over a cap: opened and closed with flag UO, one access-log line. */
  refuse(labels: TcpLabels, record: ConnectionRecord, what: Capped, source: string): void {
    this.connections.refused(labels, { ...record, flags: OVERFLOW_FLAG, error: overLimit(what, source) });
    this.warn(what, source);
  }

  warn(what: Capped, source: string): void {
    this.refusedSinceWarning += 1;
    const now = Date.now();
    if (now - this.lastRefusalWarning >= WARN_EVERY_MS) {
      this.log.warn(
        {
          refused: this.refusedSinceWarning,
          last: { what, source },
          connections: { inUse: this.connectionSlots.inUse, top: this.connectionSlots.top(3) },
          handshakes: { inUse: this.handshakeSlots.inUse, top: this.handshakeSlots.top(3) },
          limits: this.limits,
        },
        'refusing connections over the limits (response_flags UO)',
      );
      this.lastRefusalWarning = now;
      this.refusedSinceWarning = 0;
    }
  }
}
