// The certificate manager (the ztunnel's side of the CA): one certificate per identity needed on the node,
// fetched ahead of need or on demand, renewed at half life, retried with capped exponential backoff while the
// old certificate stays in use until it expires, dropped when no longer needed. Time comes from a Clock.

import { createPrivateKey } from 'node:crypto';
import { AmbitError, describeError } from '../errors/index.ts';
import { parseChain } from './certs.ts';
import { IDENTITY_ERRORS } from './errors.ts';
import { createCsr, generateKeyPair } from './keys.ts';
import type { SpiffeId } from './spiffe.ts';
import { spiffeIdOf, type TrustBundle, verifyChain } from './verify.ts';

/** Time and timers, injected so renewal timing is tested with a fake clock. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Where certificates come from: the CA client signs `csrPem` for `id` and returns the chain, leaf first. */
export interface CertificateSource {
  fetch(id: SpiffeId, csrPem: string): Promise<string[]>;
}

export type CertState = 'fetching' | 'valid' | 'renewing' | 'expired' | 'failed';

export interface WorkloadCertificate {
  id: SpiffeId;
  /** Leaf first. */
  chain: string[];
  privateKeyPem: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

/** One row of the ztunnel's `/certs` admin endpoint. */
export interface CertStatus {
  identity: SpiffeId;
  state: CertState;
  serial?: string;
  notBefore?: string;
  notAfter?: string;
  /** When the next renewal or retry is due. */
  nextAttempt?: string;
  attempts: number;
  lastError?: string;
}

export interface CertificateManagerOptions {
  source: CertificateSource;
  clock?: Clock;
  /** When set, every fetched chain must verify against it. */
  trustBundle?: () => TrustBundle;
  /** Fraction of the lifetime after which a certificate is renewed (0.5: half life). */
  renewFraction?: number;
  initialBackoffMs?: number;
  /** Istio's ztunnel caps its backoff at 150 s. */
  maxBackoffMs?: number;
}

interface Entry {
  id: SpiffeId;
  cert?: WorkloadCertificate;
  fetching?: Promise<WorkloadCertificate>;
  timer?: unknown;
  nextAttempt?: number;
  failures: number;
  lastError?: string;
  /** True while a failed fetch is backing off and there is no usable certificate. */
  backingOff: boolean;
}

export class CertificateManager {
  private readonly source: CertificateSource;
  private readonly clock: Clock;
  private readonly trustBundle: (() => TrustBundle) | undefined;
  private readonly renewFraction: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly entries = new Map<SpiffeId, Entry>();
  private closed = false;

  constructor(options: CertificateManagerOptions) {
    this.source = options.source;
    this.clock = options.clock ?? systemClock;
    this.trustBundle = options.trustBundle;
    this.renewFraction = options.renewFraction ?? 0.5;
    this.initialBackoffMs = options.initialBackoffMs ?? 1000;
    this.maxBackoffMs = options.maxBackoffMs ?? 150_000;
  }

  /**
   * Declares the identities this node needs (those with a workload on it). New ones are fetched ahead of need;
   * ones no longer listed are dropped with their timers.
   */
  want(ids: Iterable<SpiffeId>): void {
    const wanted = new Set(ids);
    for (const id of [...this.entries.keys()]) if (!wanted.has(id)) this.drop(id);
    for (const id of wanted) if (!this.entries.has(id)) this.start(this.track(id));
  }

  /** Forgets one identity: its timers stop and a fetch in flight is discarded. */
  drop(id: SpiffeId): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    if (entry.timer !== undefined) this.clock.clearTimeout(entry.timer);
    this.entries.delete(id);
  }

  /** The current certificate when it is valid now, else undefined. Never waits. */
  current(id: SpiffeId): WorkloadCertificate | undefined {
    const cert = this.entries.get(id)?.cert;
    return cert !== undefined && this.usable(cert) ? cert : undefined;
  }

  /**
   * A valid certificate for `id`, fetching it now if needed (on demand). While the CA is failing and there is
   * no valid certificate, it fails fast with the last error instead of adding load; retries go on in the background.
   */
  async get(id: SpiffeId): Promise<WorkloadCertificate> {
    this.assertOpen();
    const entry = this.entries.get(id) ?? this.track(id);
    const cert = this.current(id);
    if (cert !== undefined) return cert;
    if (entry.fetching !== undefined) return entry.fetching;
    if (entry.backingOff) {
      throw new AmbitError(
        IDENTITY_ERRORS.CERT_UNAVAILABLE,
        `no valid certificate for ${id}: the CA could not be reached (${entry.lastError}); retrying at ${new Date(entry.nextAttempt ?? 0).toISOString()}`,
        { detail: { identity: id } },
      );
    }
    return this.start(entry);
  }

  /** State per identity, for the `/certs` admin endpoint. */
  status(): CertStatus[] {
    return [...this.entries.values()]
      .map((e) => {
        const row: CertStatus = { identity: e.id, state: this.stateOf(e), attempts: e.failures };
        if (e.cert !== undefined) {
          row.serial = e.cert.serial;
          row.notBefore = e.cert.notBefore.toISOString();
          row.notAfter = e.cert.notAfter.toISOString();
        }
        if (e.nextAttempt !== undefined) row.nextAttempt = new Date(e.nextAttempt).toISOString();
        if (e.lastError !== undefined) row.lastError = e.lastError;
        return row;
      })
      .sort((a, b) => a.identity.localeCompare(b.identity));
  }

  /** Resolves once no fetch is in flight (tests use it after advancing a fake clock). */
  async idle(): Promise<void> {
    for (;;) {
      const pending = [...this.entries.values()].map((e) => e.fetching).filter((p) => p !== undefined);
      if (pending.length === 0) return;
      await Promise.allSettled(pending);
    }
  }

  /** Stops every timer and forgets every certificate. */
  close(): void {
    this.closed = true;
    for (const id of [...this.entries.keys()]) this.drop(id);
  }

  private assertOpen(): void {
    if (this.closed)
      throw new AmbitError(IDENTITY_ERRORS.MANAGER_CLOSED, 'the certificate manager was closed');
  }

  private usable(cert: WorkloadCertificate): boolean {
    const now = this.clock.now();
    return now >= cert.notBefore.getTime() && now < cert.notAfter.getTime();
  }

  private stateOf(e: Entry): CertState {
    const valid = e.cert !== undefined && this.usable(e.cert);
    if (e.cert !== undefined && !valid && this.clock.now() >= e.cert.notAfter.getTime()) {
      return e.fetching !== undefined ? 'fetching' : 'expired';
    }
    if (e.fetching !== undefined) return valid ? 'renewing' : 'fetching';
    if (valid) return e.failures > 0 ? 'renewing' : 'valid';
    return e.failures > 0 ? 'failed' : 'fetching';
  }

  private track(id: SpiffeId): Entry {
    this.assertOpen();
    const entry: Entry = { id, failures: 0, backingOff: false };
    this.entries.set(id, entry);
    return entry;
  }

  private schedule(entry: Entry, at: number): void {
    if (entry.timer !== undefined) this.clock.clearTimeout(entry.timer);
    entry.nextAttempt = at;
    entry.timer = this.clock.setTimeout(
      () => {
        entry.timer = undefined;
        if (this.entries.get(entry.id) === entry && entry.fetching === undefined) {
          this.start(entry).catch(() => {
            // Recorded on the entry; the next retry is already scheduled.
          });
        }
      },
      Math.max(0, at - this.clock.now()),
    );
  }

  private start(entry: Entry): Promise<WorkloadCertificate> {
    if (entry.fetching !== undefined) return entry.fetching;
    if (entry.timer !== undefined) {
      this.clock.clearTimeout(entry.timer);
      entry.timer = undefined;
    }
    entry.nextAttempt = undefined;
    const attempt = this.fetchOnce(entry.id).then(
      (cert) => {
        if (this.entries.get(entry.id) !== entry) return cert; // dropped meanwhile: discard
        entry.fetching = undefined;
        entry.cert = cert;
        entry.failures = 0;
        entry.backingOff = false;
        entry.lastError = undefined;
        const life = cert.notAfter.getTime() - cert.notBefore.getTime();
        this.schedule(entry, cert.notBefore.getTime() + life * this.renewFraction);
        return cert;
      },
      (err: unknown) => {
        if (this.entries.get(entry.id) === entry) {
          entry.fetching = undefined;
          entry.failures++;
          entry.lastError = describeError(err);
          const delay = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** (entry.failures - 1));
          entry.backingOff = entry.cert === undefined || !this.usable(entry.cert);
          this.schedule(entry, this.clock.now() + delay);
        }
        throw new AmbitError(
          IDENTITY_ERRORS.CERT_UNAVAILABLE,
          `cannot get a certificate for ${entry.id}: ${describeError(err)}`,
          {
            cause: err,
            detail: { identity: entry.id },
          },
        );
      },
    );
    entry.fetching = attempt;
    // A background attempt nobody awaits must not become an unhandled rejection.
    attempt.catch(() => {});
    return attempt;
  }

  private async fetchOnce(id: SpiffeId): Promise<WorkloadCertificate> {
    const pair = await generateKeyPair();
    const chainPems = await this.source.fetch(id, await createCsr(id, pair.keys));
    const chain = parseChain(chainPems);
    const leaf = chain[0];
    if (leaf === undefined) {
      throw new AmbitError(IDENTITY_ERRORS.WRONG_CERT, `the CA returned no certificate for ${id}`);
    }
    const got = this.trustBundle
      ? verifyChain(chain, this.trustBundle(), { now: new Date(this.clock.now()) }).id
      : spiffeIdOf(leaf);
    if (got !== id) {
      throw new AmbitError(
        IDENTITY_ERRORS.WRONG_CERT,
        `asked the CA for ${id} but it returned a certificate for ${got}`,
      );
    }
    if (!leaf.checkPrivateKey(createPrivateKey(pair.privateKeyPem))) {
      throw new AmbitError(
        IDENTITY_ERRORS.WRONG_CERT,
        `the certificate returned for ${id} is not for the key this node generated`,
      );
    }
    return {
      id,
      chain: chain.map((c) => c.toString()),
      privateKeyPem: pair.privateKeyPem,
      serial: leaf.serialNumber.toLowerCase(),
      notBefore: leaf.validFromDate,
      notAfter: leaf.validToDate,
    };
  }
}
