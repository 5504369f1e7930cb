// The Redis that global rules share: one client per URL, created (and @redis/client loaded) only when
// a global rule is first checked. It reconnects by itself; while it is down a check fails at once
// instead of queueing, and a check never waits longer than its timeout. Every failure is an
// AmbitError the limiter turns into a fail-open or fail-closed answer; nothing here rejects unseen.

import { once } from 'node:events';
import type { RedisClientType } from '@redis/client';
import { AmbitError, describeError } from '../../errors/index.ts';
import type { Logger } from '../../log/index.ts';
import { RATELIMIT_ERRORS } from './errors.ts';

/** How long a check may wait for the very first connection, when its own timeout is shorter. */
const FIRST_CONNECT_MS = 1_000;
/** Reconnect backoff: 50 ms doubling up to 1 s, so a restarted Redis is used again within a second. */
const MAX_RECONNECT_DELAY_MS = 1_000;
/** Checks waiting on a stalled Redis are bounded; beyond this many the client refuses at once. */
const MAX_QUEUED_COMMANDS = 10_000;

export interface CounterIncrement {
  key: string;
  expireSeconds: number;
}

/** The URL with any password hidden, for status and logs. */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable Redis URL>';
  }
}

export class RedisCounter {
  readonly url: string;
  readonly #log: Logger;
  #client: RedisClientType | undefined;
  #starting: Promise<RedisClientType> | undefined;
  /** connecting: never ready yet, no error yet; down: failing until the next `ready`. */
  #state: 'connecting' | 'ready' | 'down' = 'connecting';
  #error: string | undefined;
  #closed = false;

  constructor(url: string, log: Logger) {
    this.url = url;
    this.#log = log;
  }

  status(): { url: string; ok: boolean; error?: string } {
    return {
      url: redactedUrl(this.url),
      ok: this.#state === 'ready',
      ...(this.#error === undefined ? {} : { error: this.#error }),
    };
  }

  /**
   * INCRBY 1 and EXPIRE for every key, in one MULTI/EXEC, within `timeoutMs`; the counts after the
   * increments, in order. Rejects with an AmbitError (unreachable, timeout, bad reply).
   */
  async increment(items: readonly CounterIncrement[], timeoutMs: number): Promise<number[]> {
    const abort = new AbortController();
    const limit = this.#state === 'connecting' ? Math.max(timeoutMs, FIRST_CONNECT_MS) : timeoutMs;
    const timer = setTimeout(() => abort.abort(), limit);
    try {
      const client = await this.#ready(abort.signal);
      const multi = client.multi();
      for (const { key, expireSeconds } of items) multi.incrBy(key, 1).expire(key, expireSeconds);
      const exec = multi.exec();
      // When the timeout wins the race, the reply (or its failure) arrives to no one.
      exec.catch(() => {});
      const replies = await Promise.race([exec, aborted(abort.signal)]);
      return counts(replies as unknown[], items.length);
    } catch (err) {
      throw this.#failure(err, abort.signal.aborted, limit);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client ?? (await this.#starting?.catch(() => undefined));
    this.#client = undefined;
    // destroy, not QUIT: a Redis that is down would hold a graceful close until its timeout.
    if (client?.isOpen) client.destroy();
  }

  async #ready(signal: AbortSignal): Promise<RedisClientType> {
    if (this.#closed) throw new Error('the rate limiter is closed');
    this.#starting ??= this.#start();
    const client = await Promise.race([this.#starting, aborted(signal)]);
    if (client.isReady) return client;
    if (this.#state === 'down') throw new Error(this.#error ?? 'not connected');
    await once(client, 'ready', { signal });
    return client;
  }

  async #start(): Promise<RedisClientType> {
    try {
      const { createClient } = await import('@redis/client');
      const client = createClient({
        url: this.url,
        disableOfflineQueue: true,
        commandsQueueMaxLength: MAX_QUEUED_COMMANDS,
        socket: {
          connectTimeout: FIRST_CONNECT_MS,
          reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, MAX_RECONNECT_DELAY_MS),
        },
      }) as RedisClientType;
      client.on('error', (err: unknown) => this.#down(err));
      client.on('ready', () => this.#up());
      this.#client = client;
      if (this.#closed) return client;
      // connect() retries by itself (reconnectStrategy); its rejection only means it was closed.
      client.connect().catch((err: unknown) => this.#down(err));
      return client;
    } catch (err) {
      this.#starting = undefined;
      this.#down(err);
      throw err;
    }
  }

  #up(): void {
    if (this.#state !== 'ready')
      this.#log.info({ redis: redactedUrl(this.url) }, 'global rate limits: connected to Redis');
    this.#state = 'ready';
    this.#error = undefined;
  }

  #down(err: unknown): void {
    if (this.#closed) return;
    const message = describeError(err) || 'connection failed';
    if (this.#state !== 'down')
      this.#log.warn(
        { redis: redactedUrl(this.url), err: message, code: RATELIMIT_ERRORS.REDIS_UNREACHABLE },
        'global rate limits cannot reach Redis; reconnecting (MeshConfig spec.rateLimit.failClosed decides whether requests pass meanwhile)',
      );
    this.#state = 'down';
    this.#error = message;
  }

  #failure(err: unknown, timedOut: boolean, limitMs: number): AmbitError {
    if (err instanceof AmbitError) return err;
    const where = redactedUrl(this.url);
    if (timedOut)
      return new AmbitError(
        RATELIMIT_ERRORS.REDIS_TIMEOUT,
        `Redis at ${where} did not answer within ${limitMs} ms; raise MeshConfig spec.rateLimit.timeout or check the Redis load`,
        { cause: err },
      );
    return new AmbitError(
      RATELIMIT_ERRORS.REDIS_UNREACHABLE,
      `Redis at ${where} cannot be reached (${describeError(err)}); check MeshConfig spec.rateLimit.backend.redis.url and that Redis is up`,
      { cause: err },
    );
  }
}

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(new Error('timed out'));
    else signal.addEventListener('abort', () => reject(new Error('timed out')), { once: true });
  });
}

/** The INCRBY replies of a MULTI of INCRBY/EXPIRE pairs. */
function counts(replies: unknown[], n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = replies[2 * i];
    if (typeof v !== 'number' || !Number.isInteger(v))
      throw new AmbitError(
        RATELIMIT_ERRORS.REDIS_BAD_REPLY,
        `Redis answered INCRBY with ${JSON.stringify(v)}, not a count; is the key used by something else?`,
      );
    out.push(v);
  }
  return out;
}
