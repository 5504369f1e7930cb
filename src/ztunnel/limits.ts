// How much one ztunnel holds at once: proxied connections (in all and per source) and TLS handshakes in
// progress on 15008 (in all and per source address). Defaults derive from the process's descriptor limit
// so that the sum stays below it, and a source's share stays well below the whole: one pod can fill its
// own share, never the node's.

import { readFileSync } from 'node:fs';
import { AmbitError } from '../errors/index.ts';
import { ZTUNNEL_ERRORS } from './errors.ts';

export interface ConnectionLimits {
  /** Proxied connections open at once, every direction together (each holds up to two descriptors). */
  maxConnections: number;
  /** Per source: a source workload outbound (15001, SOCKS5), a source address inbound (15008 streams, 15006). */
  maxConnectionsPerSource: number;
  /** TLS handshakes in progress on 15008 at once (accepted sockets that have not yet proved who they are). */
  maxHandshakes: number;
  /** The same, per source address (a peer node's ztunnel, or anything that can reach 15008). */
  maxHandshakesPerSource: number;
}

/** The response flag of a connection refused over a limit: Envoy's "upstream overflow" (Istio's ztunnel has none). */
export const OVERFLOW_FLAG = 'UO';

/** The soft RLIMIT_NOFILE this process runs with (Node cannot set it: `prlimit` or `ulimit -n` does, before exec). */
export function fileDescriptorLimit(limitsText?: string): number {
  const text = limitsText ?? readFileSync('/proc/self/limits', 'utf8');
  const soft = /^Max open files\s+(\S+)/m.exec(text)?.[1];
  if (soft === undefined) return 1024; // not Linux, or no procfs: assume the common default
  return soft === 'unlimited' ? 2 ** 20 : Number(soft);
}

/**
 * The defaults for a descriptor limit: a reserve for listeners, HBONE sessions, the control plane, logs;
 * handshakes (one descriptor each) next; two descriptors per proxied connection for the rest. A source gets
 * an eighth of the connections and a quarter of the handshakes (a peer node's pooled connections come from
 * one address, so its share of handshakes is larger).
 */
export function defaultLimits(fdLimit: number): ConnectionLimits {
  const reserve = Math.min(1024, Math.floor(fdLimit / 4));
  const maxHandshakes = Math.max(1, Math.min(1024, Math.floor(fdLimit / 16)));
  const maxConnections = Math.max(1, Math.floor((fdLimit - reserve - maxHandshakes) / 2));
  return withShares(maxConnections, maxHandshakes);
}

function withShares(maxConnections: number, maxHandshakes: number): ConnectionLimits {
  return {
    maxConnections,
    maxConnectionsPerSource: Math.max(1, Math.floor(maxConnections / 8)),
    maxHandshakes,
    maxHandshakesPerSource: Math.max(1, Math.floor(maxHandshakes / 4)),
  };
}

/**
 * The defaults overridden by `given` (a share not given is derived from its whole); refuses (AMBIT_ERR_ZTUNNEL_BAD_LIMIT) a value that is not a positive
 * integer, a per-source cap above its whole, or a sum of descriptors that does not fit under the limit.
 */
export function resolveLimits(
  given: Partial<ConnectionLimits> | undefined,
  fdLimit: number,
): ConnectionLimits {
  const d = defaultLimits(fdLimit);
  // A per-source share not given is derived from its whole, given or not.
  const limits = {
    ...withShares(given?.maxConnections ?? d.maxConnections, given?.maxHandshakes ?? d.maxHandshakes),
    ...given,
  };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new AmbitError(
        ZTUNNEL_ERRORS.BAD_LIMIT,
        `limit ${name} must be a positive integer, got ${JSON.stringify(value)}`,
        { detail: { limit: name, value } },
      );
    }
  }
  if (
    limits.maxConnectionsPerSource > limits.maxConnections ||
    limits.maxHandshakesPerSource > limits.maxHandshakes
  ) {
    throw new AmbitError(
      ZTUNNEL_ERRORS.BAD_LIMIT,
      'a per-source limit is above its whole (maxConnectionsPerSource ≤ maxConnections, maxHandshakesPerSource ≤ maxHandshakes)',
      { detail: limits },
    );
  }
  const needed = limits.maxConnections * 2 + limits.maxHandshakes;
  if (needed >= fdLimit) {
    throw new AmbitError(
      ZTUNNEL_ERRORS.BAD_LIMIT,
      `${limits.maxConnections} connections (2 descriptors each) and ${limits.maxHandshakes} handshakes need ${needed} descriptors, and the process may open ${fdLimit}: raise its limit (prlimit --nofile, ulimit -n) or lower the caps`,
      { detail: { ...limits, fdLimit } },
    );
  }
  return limits;
}

/** Slots in use, in all and per key; a slot is refused when either is at its cap. */
export class Admission {
  private total = 0;
  private readonly byKey = new Map<string, number>();
  private readonly max: number;
  private readonly perKey: number;

  constructor(max: number, perKey: number) {
    this.max = max;
    this.perKey = perKey;
  }

  /** Takes a slot for `key`; false (nothing taken) when `key` or the whole is at its cap. */
  tryAcquire(key: string): boolean {
    const n = this.byKey.get(key) ?? 0;
    if (n >= this.perKey || this.total >= this.max) return false;
    this.byKey.set(key, n + 1);
    this.total += 1;
    return true;
  }

  /** Gives back a slot taken with `tryAcquire(key)`; call it exactly once per slot. */
  release(key: string): void {
    const n = this.byKey.get(key);
    if (n === undefined) return;
    if (n <= 1) this.byKey.delete(key);
    else this.byKey.set(key, n - 1);
    this.total -= 1;
  }

  /** A release for one slot that is safe to call from several close paths. */
  releaser(key: string): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.release(key);
    };
  }

  get inUse(): number {
    return this.total;
  }

  /** The keys holding the most slots, for the admin endpoint. */
  top(n = 10): Array<{ key: string; inUse: number }> {
    return [...this.byKey]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([key, inUse]) => ({ key, inUse }));
  }
}
