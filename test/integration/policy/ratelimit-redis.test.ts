// Global RateLimitPolicy rules against a real redis-server on 127.0.0.1: two limiters (two waypoint
// replicas) hold one limit together; Redis stopped, paused or absent gives fail-open or fail-closed
// answers as MeshConfig says, with a status that names the failure; a restarted Redis is used again.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@redis/client';
import {
  assertValid,
  type RateLimitBackend,
  type RateLimitPolicyResource,
} from '../../../src/config/index.ts';
import { logger } from '../../../src/log/index.ts';
import {
  RATELIMIT_ERRORS,
  RateLimiter,
  type RateLimitVerdict,
  type RequestAttributes,
} from '../../../src/policy/ratelimit/index.ts';
import { freePort } from '../../helpers/ports.ts';

const log = logger('ratelimit-redis-test');
/** Half a second into a window, so that a fixed clock keeps every check in one window. */
const NOW = 1_700_000_000_500;

const unhandled: unknown[] = [];
process.on('unhandledRejection', (err) => unhandled.push(err));

function redisInstalled(): void {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error)
    assert.fail(
      `redis-server is not installed (${probe.error.message}): the global rate-limit tests run a real Redis; install it (apt-get install redis-server), as CI does`,
    );
}

/** One redis-server on 127.0.0.1:port, without persistence; start it again on the same port after stop. */
class RedisServer {
  readonly port: number;
  readonly #dir: string;
  #child: ChildProcess | undefined;

  constructor(port: number, dir: string) {
    this.port = port;
    this.#dir = dir;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.#dir,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.#child = child;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) resolve();
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('error', reject);
      child.once('exit', (code) =>
        reject(new Error(`redis-server exited (${code}) before it was ready:\n${output}`)),
      );
    });
  }

  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
  }

  pause(): void {
    this.#child?.kill('SIGSTOP');
  }

  resume(): void {
    this.#child?.kill('SIGCONT');
  }
}

function policy(name: string, rules: unknown[]): RateLimitPolicyResource[] {
  return [
    assertValid({
      apiVersion: 'ambit.dev/v1alpha1',
      kind: 'RateLimitPolicy',
      metadata: { name, namespace: 'shop' },
      spec: { targetRefs: [{ group: '', kind: 'Service', name: 'web' }], global: { rules } },
    }) as RateLimitPolicyResource,
  ];
}

function req(headers: Record<string, string> = {}): RequestAttributes {
  return {
    method: 'GET',
    path: '/',
    host: 'web.shop.svc.cluster.local',
    headers,
    source: { principal: 'spiffe://cluster.local/ns/front/sa/web', ip: '198.18.1.10' },
    destination: { ip: '198.18.2.20', port: 8080 },
  };
}

const RLSE: RateLimitVerdict = { limited: true, status: 500, body: '', headers: {}, flags: 'RLSE' };

describe('global rate limits in Redis', () => {
  let dir: string;
  let redis: RedisServer;
  const limiters: RateLimiter[] = [];

  /** A waypoint replica's limiter, reading MeshConfig spec.rateLimit from `settings`. */
  function replica(
    settings: Partial<RateLimitBackend> & { url?: string } = {},
    now?: () => number,
  ): RateLimiter {
    const { url = redis.url, ...rest } = settings;
    const backend: RateLimitBackend = { backend: { type: 'Redis', redis: { url } }, timeout: '2s', ...rest };
    const l = new RateLimiter({ log, backend: () => backend, ...(now ? { now } : {}) });
    limiters.push(l);
    return l;
  }

  before(async () => {
    redisInstalled();
    dir = await mkdtemp(join(tmpdir(), 'ambit-redis-'));
    redis = new RedisServer(await freePort(), dir);
    await redis.start();
  });

  after(async () => {
    for (const l of limiters) await l.close();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    assert.deepEqual(unhandled, [], 'no rejection went unhandled');
  });

  it('two replicas hold one limit of 10 per second together', async () => {
    const now = () => NOW;
    const [a, b] = [replica({}, now), replica({}, now)];
    const p = policy('shared', [{ limit: { requests: 10, unit: 'Second' } }]);
    const verdicts: RateLimitVerdict[] = [];
    for (let i = 0; i < 14; i++) verdicts.push(await (i % 2 === 0 ? a : b).check(p, req()));
    assert.deepEqual(
      verdicts.map((v) => v.limited),
      [...Array(10).fill(false), ...Array(4).fill(true)],
    );
    assert.deepEqual(verdicts[0], {
      limited: false,
      headers: { 'ratelimit-policy': '"shared/global-0";q=10;w=1', ratelimit: '"shared/global-0";r=9;t=1' },
    });
    assert.deepEqual(verdicts[10], {
      limited: true,
      status: 429,
      body: '',
      flags: 'RL',
      headers: {
        'x-envoy-ratelimited': 'true',
        'retry-after': '1',
        'ratelimit-policy': '"shared/global-0";q=10;w=1',
        ratelimit: '"shared/global-0";r=0;t=1',
      },
    });
    assert.deepEqual(a.status(), {
      redis: { url: `${redis.url}`, ok: true, failures: 0 },
      localBuckets: 0,
    });
  });

  it("keeps envoyproxy/ratelimit's key per rule, descriptor and window, expiring with the window", async () => {
    const l = replica({}, () => NOW);
    const p = policy('keys', [
      {
        clientSelectors: [{ headers: [{ name: 'x-user', type: 'Distinct' }] }],
        limit: { requests: 2, unit: 'Minute' },
      },
    ]);
    assert.equal((await l.check(p, req({ 'x-user': 'alice' }))).limited, false);
    const raw = createClient({ url: redis.url });
    raw.on('error', () => {});
    await raw.connect();
    try {
      const key = 'ambit_policy_shop/keys_rule_global-0_header.x-user_alice_1699999980';
      assert.equal(await raw.get(key), '1');
      const ttl = await raw.ttl(key);
      assert.ok(ttl > 0 && ttl <= 60, `TTL ${ttl}`);
    } finally {
      raw.destroy();
    }
    // Distinct values count apart: bob's first request is bob's first.
    const bob = await l.check(p, req({ 'x-user': 'bob' }));
    assert.equal(bob.headers.ratelimit, '"keys/global-0";r=1;t=40');
  });

  it('Redis stopped: fail-open passes, fail-closed refuses; once Redis is back, limits hold again', async () => {
    const now = () => NOW;
    const open = replica({ timeout: '500ms' }, now);
    const closed = replica({ timeout: '500ms', failClosed: true }, now);
    const loose = policy('loose', [{ limit: { requests: 1000, unit: 'Minute' } }]);
    assert.equal((await open.check(loose, req())).limited, false);
    assert.equal((await closed.check(loose, req())).limited, false);

    await redis.stop();
    assert.deepEqual(await open.check(loose, req()), { limited: false, headers: {}, failedOpen: true });
    assert.deepEqual(await closed.check(loose, req()), RLSE);
    const down = closed.status().redis!;
    assert.equal(down.ok, false);
    assert.match(down.error ?? '', new RegExp(RATELIMIT_ERRORS.REDIS_UNREACHABLE));
    assert.ok(down.failures >= 1);

    await redis.start();
    // The client reconnects by itself (backoff up to 1 s): wait for it, however long the machine takes.
    for (let i = 0; i < 150 && (await closed.check(loose, req())).limited; i++) await sleep(100);
    assert.equal(closed.status().redis!.ok, true);

    const tight = policy('after-restart', [{ limit: { requests: 3, unit: 'Minute' } }]);
    const verdicts: boolean[] = [];
    for (let i = 0; i < 5; i++)
      verdicts.push((await (i % 2 === 0 ? open : closed).check(tight, req())).limited);
    assert.deepEqual(verdicts, [false, false, false, true, true]);
  });

  it('Redis not answering within the timeout: the same choice, and a status naming the timeout', async () => {
    const open = replica({ timeout: '200ms' }, () => NOW);
    const closed = replica({ timeout: '200ms', failClosed: true }, () => NOW);
    const p = policy('slow', [{ limit: { requests: 1000, unit: 'Hour' } }]);
    assert.equal((await closed.check(p, req())).limited, false);
    assert.equal((await open.check(p, req())).limited, false);
    redis.pause();
    try {
      assert.deepEqual(await closed.check(p, req()), RLSE);
      assert.deepEqual(await open.check(p, req()), { limited: false, headers: {}, failedOpen: true });
      assert.match(closed.status().redis!.error ?? '', new RegExp(RATELIMIT_ERRORS.REDIS_TIMEOUT));
    } finally {
      redis.resume();
    }
    assert.equal((await closed.check(p, req())).limited, false);
    assert.equal(closed.status().redis!.ok, true);
  });

  it('Redis never reachable: fail-open by default, 500 RLSE when fail-closed', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const open = replica({ url, timeout: '200ms' });
    const closed = replica({ url, timeout: '200ms', failClosed: true });
    const p = policy('nowhere', [{ limit: { requests: 1, unit: 'Second' } }]);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await open.check(p, req()), { limited: false, headers: {}, failedOpen: true });
      assert.deepEqual(await closed.check(p, req()), RLSE);
    }
    const status = open.status().redis!;
    assert.equal(status.ok, false);
    assert.equal(status.failures, 3);
    assert.match(status.error ?? '', /ECONNREFUSED|cannot be reached/);
  });

  it('a password in the Redis URL never reaches the status', async () => {
    const l = replica({ url: `redis://:s3cret@127.0.0.1:${await freePort()}`, timeout: '200ms' });
    await l.check(policy('secret', [{ limit: { requests: 1, unit: 'Second' } }]), req());
    const text = JSON.stringify(l.status());
    assert.ok(!text.includes('s3cret'), text);
    assert.match(text, /\*\*\*/);
  });
});
