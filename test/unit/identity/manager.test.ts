import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CertificateAuthority, createRootCa } from '../../../src/control/ca/index.ts';
import { hasCode } from '../../../src/errors/index.ts';
import {
  CertificateManager,
  type CertificateSource,
  type SpiffeId,
  workloadId,
} from '../../../src/identity/index.ts';
import { FakeClock } from './fake-clock.ts';
import { newCa, TD } from './helpers.ts';

const A = workloadId(TD, 'default', 'a');
const B = workloadId(TD, 'default', 'b');
const C = workloadId(TD, 'default', 'c');

/** A real CA behind a switch that makes it unreachable, recording when each request arrived. */
class SwitchableCa implements CertificateSource {
  up = true;
  calls: Array<{ id: SpiffeId; at: number; ok: boolean }> = [];
  readonly ca: CertificateAuthority;
  readonly clock: FakeClock;
  readonly ttlSeconds: number;
  constructor(ca: CertificateAuthority, clock: FakeClock, ttlSeconds: number) {
    this.ca = ca;
    this.clock = clock;
    this.ttlSeconds = ttlSeconds;
  }
  async fetch(id: SpiffeId, csrPem: string): Promise<string[]> {
    this.calls.push({ id, at: this.clock.now(), ok: this.up });
    if (!this.up) throw new Error('connect ECONNREFUSED 127.0.0.1:15010');
    return (await this.ca.sign(csrPem, { ttlSeconds: this.ttlSeconds })).chain;
  }
}

async function setup(ttlSeconds = 100, options: { maxBackoffMs?: number } = {}) {
  const clock = new FakeClock();
  const material = await createRootCa({ trustDomain: TD, now: new Date(clock.now() - 3600_000) });
  const ca = await newCa({ material, now: () => clock.now(), policy: { backdateSeconds: 0 } });
  const source = new SwitchableCa(ca, clock, ttlSeconds);
  const manager = new CertificateManager({
    source,
    clock,
    trustBundle: () => ca.bundle,
    initialBackoffMs: 1000,
    maxBackoffMs: options.maxBackoffMs ?? 8000,
  });
  return { clock, ca, source, manager };
}

/** Advances to the next timer and waits for what it started. */
async function step(clock: FakeClock, manager: CertificateManager): Promise<number> {
  const at = clock.nextTimerAt();
  assert.ok(at !== undefined, 'a timer should be pending');
  clock.advance(at - clock.now());
  await manager.idle();
  return at;
}

describe('certificate manager', () => {
  it('fetches the wanted identities ahead of need and reports them for /certs', async () => {
    const { manager, source } = await setup();
    manager.want([A, B]);
    assert.deepEqual(
      manager.status().map((s) => [s.identity, s.state]),
      [
        [A, 'fetching'],
        [B, 'fetching'],
      ],
    );
    await manager.idle();
    const rows = manager.status();
    assert.deepEqual(
      rows.map((s) => [s.identity, s.state]),
      [
        [A, 'valid'],
        [B, 'valid'],
      ],
    );
    assert.equal(source.calls.length, 2);
    assert.match(rows[0]!.serial!, /^[0-9a-f]{32}$/);
    assert.equal(manager.current(A)!.serial, rows[0]!.serial);
    assert.equal((await manager.get(A)).serial, rows[0]!.serial, 'get returns the cached certificate');
    assert.equal(source.calls.length, 2);
    manager.close();
  });

  it('renews at half life, not before', async () => {
    const { clock, manager, source } = await setup(100);
    manager.want([A]);
    await manager.idle();
    const first = manager.current(A)!;
    const halfLife = first.notBefore.getTime() + 50_000;
    assert.equal(manager.status()[0]!.nextAttempt, new Date(halfLife).toISOString());
    clock.advance(halfLife - clock.now() - 1000);
    await manager.idle();
    assert.equal(source.calls.length, 1, 'no renewal before half life');
    assert.equal(manager.current(A)!.serial, first.serial);
    const at = await step(clock, manager);
    assert.equal(at, halfLife);
    assert.equal(source.calls.length, 2);
    assert.notEqual(manager.current(A)!.serial, first.serial);
    assert.equal(manager.status()[0]!.state, 'valid');
    manager.close();
  });

  it('keeps the old certificate through a CA outage, backs off exponentially up to the cap, and recovers', async () => {
    const { clock, manager, source } = await setup(100, { maxBackoffMs: 8000 });
    manager.want([A]);
    await manager.idle();
    const old = manager.current(A)!;
    source.up = false;
    await step(clock, manager); // half life: the renewal fails
    const attempts = [clock.now()];
    for (let i = 0; i < 5; i++) attempts.push(await step(clock, manager));
    const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
    assert.deepEqual(gaps, [1000, 2000, 4000, 8000, 8000]);
    const row = manager.status()[0]!;
    assert.equal(row.state, 'renewing');
    assert.match(row.lastError!, /ECONNREFUSED/);
    assert.equal(manager.current(A)!.serial, old.serial, 'the old certificate stays in use while valid');

    // Let it expire while the CA is still away.
    while (clock.now() < old.notAfter.getTime()) await step(clock, manager);
    assert.equal(manager.status()[0]!.state, 'expired');
    assert.equal(manager.current(A), undefined);
    const callsBefore = source.calls.length;
    await assert.rejects(manager.get(A), (e) => hasCode(e, 'AMBIT_ERR_IDENTITY_CERT_UNAVAILABLE'));
    assert.equal(
      source.calls.length,
      callsBefore,
      'an on-demand request during backoff does not hammer the CA',
    );

    source.up = true;
    await step(clock, manager);
    const fresh = manager.current(A)!;
    assert.ok(fresh);
    assert.notEqual(fresh.serial, old.serial);
    assert.equal(manager.status()[0]!.state, 'valid');
    assert.equal(manager.status()[0]!.attempts, 0);
    manager.close();
  });

  it('drops certificates no longer needed, with their timers', async () => {
    const { clock, manager } = await setup();
    manager.want([A, B]);
    await manager.idle();
    assert.equal(clock.pending(), 2);
    manager.want([A]);
    assert.deepEqual(
      manager.status().map((s) => s.identity),
      [A],
    );
    assert.equal(manager.current(B), undefined);
    assert.equal(clock.pending(), 1);
    manager.close();
    assert.equal(clock.pending(), 0);
  });

  it('fetches on demand once, however many callers wait', async () => {
    const { manager, source } = await setup();
    const [x, y, z] = await Promise.all([manager.get(C), manager.get(C), manager.get(C)]);
    assert.equal(source.calls.length, 1);
    assert.equal(x.serial, y.serial);
    assert.equal(y.serial, z.serial);
    assert.equal(x.id, C);
    manager.close();
  });

  it('refuses a certificate for another identity than the one asked for', async () => {
    const { ca, clock } = await setup();
    const liar: CertificateSource = {
      fetch: async () => {
        const { createCsr, generateKeyPair } = await import('../../../src/identity/index.ts');
        return (await ca.sign(await createCsr(B, (await generateKeyPair()).keys))).chain;
      },
    };
    const manager = new CertificateManager({ source: liar, clock });
    await assert.rejects(manager.get(A), (e: unknown) => {
      assert.ok(hasCode(e, 'AMBIT_ERR_IDENTITY_CERT_UNAVAILABLE'));
      assert.ok(hasCode((e as Error).cause, 'AMBIT_ERR_IDENTITY_WRONG_CERT'));
      return true;
    });
    assert.equal(manager.status()[0]!.state, 'failed');
    manager.close();
  });
});
