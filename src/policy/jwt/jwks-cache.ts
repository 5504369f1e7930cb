// Where the keys come from: inline JWKS parsed once per distinct text, and jwksUri sets fetched on first
// use, shared by concurrent requests, refreshed on a timer, and refetched (rate-limited) when a token
// names a kid the set lacks. A failed fetch never drops keys that were good.

import { AmbitError, describeError } from '../../errors/index.ts';
import type { Logger } from '../../log/index.ts';
import { JWT_ERRORS } from './errors.ts';
import { type KeySet, parseKeySet } from './keys.ts';

/** Istio's default JWKS refresh interval (PILOT_JWT_PUB_KEY_REFRESH_INTERVAL). */
export const DEFAULT_REFRESH_MS = 20 * 60_000;
/** Istio's default JWKS fetch timeout (JWTRule.timeout). */
export const DEFAULT_FETCH_TIMEOUT_MS = 5_000;
/** After a failed fetch with no keys yet, requests fail fast for this long instead of each refetching (Envoy's failed_refetch_duration). */
export const FAILED_REFETCH_MS = 1_000;
/** At most one refetch per set for an unknown kid in this long, so random kids cannot make us hammer the issuer. */
export const KID_REFETCH_MS = 60_000;
/** A key set larger than this is refused: real sets are a few KiB. */
export const MAX_JWKS_BYTES = 1024 * 1024;
/** Distinct inline JWKS texts kept parsed; more are parsed again when used. */
const MAX_INLINE = 256;

export interface JwksStatus {
  uri: string;
  ok: boolean;
  keys?: number;
  fetchedAt?: string;
  error?: string;
}

interface RemoteSet {
  uri: string;
  keys?: KeySet;
  keyCount?: number;
  fetchedAt?: number;
  ok: boolean;
  error?: string;
  inflight?: Promise<void>;
  lastAttemptAt?: number;
  lastKidRefetchAt?: number;
  lastUsedAt: number;
  /** The fetch timeout the rule naming this set asked for last. */
  timeoutMs: number;
  timer?: NodeJS.Timeout;
}

export interface JwksCacheOptions {
  now: () => number;
  log: Logger;
  refreshMs: number;
  fetch: typeof fetch;
}

export class JwksCache {
  readonly #opts: JwksCacheOptions;
  readonly #inline = new Map<string, KeySet | undefined>();
  readonly #remote = new Map<string, RemoteSet>();
  readonly #closing = new AbortController();

  constructor(opts: JwksCacheOptions) {
    this.#opts = opts;
  }

  /** The usable keys of an inline JWKS, parsed once per distinct text. */
  inline(text: string): KeySet | undefined {
    if (this.#inline.has(text)) return this.#inline.get(text);
    const set = parseKeySet(text);
    if (this.#inline.size >= MAX_INLINE) this.#inline.delete(this.#inline.keys().next().value!);
    this.#inline.set(text, set);
    return set;
  }

  /** The keys of a jwksUri, fetching them first if none were ever fetched; undefined when there are none. */
  async remote(uri: string, timeoutMs: number): Promise<KeySet | undefined> {
    const set = this.#entry(uri, timeoutMs);
    if (set.keys) return set.keys;
    if (!set.inflight) {
      const now = this.#opts.now();
      const recentFailure = set.lastAttemptAt !== undefined && now - set.lastAttemptAt < FAILED_REFETCH_MS;
      if (recentFailure) return undefined;
      this.#fetch(set, timeoutMs);
    }
    await set.inflight;
    return set.keys;
  }

  /** Refetch a set because a token names a kid it lacks (at most once per KID_REFETCH_MS); the keys after. */
  async refetchForKid(uri: string, timeoutMs: number): Promise<KeySet | undefined> {
    const set = this.#entry(uri, timeoutMs);
    const now = this.#opts.now();
    if (!set.inflight) {
      if (set.lastKidRefetchAt !== undefined && now - set.lastKidRefetchAt < KID_REFETCH_MS) return set.keys;
      set.lastKidRefetchAt = now;
      this.#fetch(set, timeoutMs);
    }
    await set.inflight;
    return set.keys;
  }

  status(): JwksStatus[] {
    return [...this.#remote.values()].map((s) => ({
      uri: s.uri,
      ok: s.ok,
      ...(s.keyCount === undefined ? {} : { keys: s.keyCount }),
      ...(s.fetchedAt === undefined ? {} : { fetchedAt: new Date(s.fetchedAt).toISOString() }),
      ...(s.error === undefined ? {} : { error: s.error }),
    }));
  }

  close(): void {
    this.#closing.abort();
    for (const set of this.#remote.values()) clearInterval(set.timer);
    this.#remote.clear();
  }

  #entry(uri: string, timeoutMs: number): RemoteSet {
    let set = this.#remote.get(uri);
    if (!set) {
      set = { uri, ok: false, lastUsedAt: this.#opts.now(), timeoutMs };
      this.#remote.set(uri, set);
      if (!this.#closing.signal.aborted) {
        set.timer = setInterval(() => this.#refresh(uri), this.#opts.refreshMs);
        set.timer.unref();
      }
    }
    set.lastUsedAt = this.#opts.now();
    set.timeoutMs = timeoutMs;
    return set;
  }

  /** A set nobody asked for during a whole interval is dropped rather than refetched forever. */
  #refresh(uri: string): void {
    const set = this.#remote.get(uri);
    if (!set || set.inflight) return;
    if (this.#opts.now() - set.lastUsedAt > this.#opts.refreshMs) {
      clearInterval(set.timer);
      this.#remote.delete(uri);
      return;
    }
    this.#fetch(set, set.timeoutMs);
  }

  #fetch(set: RemoteSet, timeoutMs: number): void {
    set.lastAttemptAt = this.#opts.now();
    set.inflight = this.#load(set.uri, timeoutMs)
      .then(
        (keys) => {
          set.keys = keys.set;
          set.keyCount = keys.count;
          set.fetchedAt = this.#opts.now();
          set.ok = true;
          delete set.error;
        },
        (err: unknown) => {
          set.ok = false;
          set.error = describeError(err);
          this.#opts.log.warn(
            { err, uri: set.uri, keptKeys: set.keyCount ?? 0 },
            set.keys ? 'JWKS refresh failed; keeping the last good keys' : 'JWKS fetch failed',
          );
        },
      )
      .finally(() => {
        delete set.inflight;
      });
  }

  async #load(uri: string, timeoutMs: number): Promise<{ set: KeySet; count: number }> {
    const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), this.#closing.signal]);
    let text: string;
    try {
      const res = await this.#opts.fetch(uri, { signal, headers: { accept: 'application/json' } });
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new Error(`answered HTTP ${res.status}`);
      }
      text = await readLimited(res, MAX_JWKS_BYTES);
    } catch (err) {
      throw new AmbitError(
        JWT_ERRORS.JWKS_FETCH,
        `fetching JWKS from ${uri} failed: ${describeError(err)}; check that the issuer's key URL is reachable from the waypoint`,
        { cause: err, detail: { uri } },
      );
    }
    const set = parseKeySet(text);
    if (!set) {
      throw new AmbitError(
        JWT_ERRORS.JWKS_INVALID,
        `the JWKS at ${uri} holds no usable public key (RSA, EC P-256/384/521 or Ed25519); check jwksUri`,
        { detail: { uri } },
      );
    }
    return { set, count: set.keys.length };
  }
}

async function readLimited(res: Response, limit: number): Promise<string> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.byteLength;
    if (size > limit) throw new Error(`body is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
