// Issue 8, item 6 (certificates): the CA records what it issued to each node; revoking the node turns the
// unexpired ones into a revocation list that survives a restart, drops entries as they expire, stays
// bounded per node, and is enforced by chain verification.

import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { IssuedCertificates } from '../../src/control/ca/index.ts';
import { hasCode } from '../../src/errors/index.ts';
import { RevocationList, verifyChain, workloadId } from '../../src/identity/index.ts';
import { csrWith, newCa, TD } from '../unit/identity/helpers.ts';

const WEB = workloadId(TD, 'shop', 'web');

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-issued-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'issued-certificates');
}

/** A CA on a settable clock, and a way to issue a workload certificate living `ttl` seconds. */
async function issuer() {
  let now = Date.now();
  const ca = await newCa({ now: () => now });
  const issue = async (ttl: number) => {
    const issued = await ca.sign(await csrWith([{ type: 'url', value: WEB }]), { ttlSeconds: ttl });
    return issued;
  };
  return { ca, issue, clock: { now: () => now, advance: (s: number) => (now += s * 1000) } };
}

const code = (c: string) => (err: unknown) => hasCode(err, c);

describe('issued-certificate records and the revocation list', () => {
  test('revoking a node revokes what it was issued; the list survives a restart', async (t) => {
    const dir = await tempDir(t);
    const { issue, clock } = await issuer();
    const records = new IssuedCertificates({ dir, now: clock.now });
    const a1 = await issue(3600);
    const a2 = await issue(7200);
    const b1 = await issue(3600);
    records.record('node-a', a1.certPem);
    records.record('node-a', a2.certPem);
    records.record('node-b', b1.certPem);
    assert.equal(records.revoked().length, 0);

    assert.equal(records.revokeNode('node-a'), 2);
    const serials = (list: Array<{ serial: string }>) => list.map((e) => e.serial.toLowerCase()).sort();
    assert.deepEqual(serials(records.revoked()), [a1.serial, a2.serial].sort());
    assert.equal(records.issuedTo('node-a').length, 0);

    const reopened = new IssuedCertificates({ dir, now: clock.now });
    assert.deepEqual(serials(reopened.revoked()), [a1.serial, a2.serial].sort());
    assert.deepEqual(serials(reopened.issuedTo('node-b')), [b1.serial]);

    // A rejoined node's new certificates are recorded afresh; its old ones stay revoked.
    const a3 = await issue(3600);
    reopened.record('node-a', a3.certPem);
    assert.deepEqual(serials(reopened.revoked()), [a1.serial, a2.serial].sort());

    // The verifier refuses a revoked certificate and accepts the others.
    const list = new RevocationList(reopened.revoked());
    const { ca } = await issuer();
    assert.throws(
      () => verifyChain(a1.chain, ca.bundle, { revoked: list }),
      code('AMBIT_ERR_IDENTITY_CERT_REVOKED'),
    );
    assert.equal(verifyChain(b1.chain, ca.bundle, { revoked: list }).id, WEB);
    assert.equal(verifyChain(a3.chain, ca.bundle, { revoked: list }).id, WEB);
  });

  test('expired entries are pruned, from memory and from disk', async (t) => {
    const dir = await tempDir(t);
    const { issue, clock } = await issuer();
    const records = new IssuedCertificates({ dir, now: clock.now });
    records.record('node-a', (await issue(3600)).certPem);
    records.record('node-a', (await issue(7200)).certPem);
    records.record('node-b', (await issue(3600)).certPem);
    records.revokeNode('node-a');
    assert.equal(records.prune(), false);

    clock.advance(3700);
    assert.equal(records.prune(), true);
    assert.equal(records.revoked().length, 1);
    assert.equal(records.issuedTo('node-b').length, 0);
    assert.equal(new IssuedCertificates({ dir, now: clock.now }).revoked().length, 1);
    assert.deepEqual(await readdir(dir), ['revoked.json']);

    clock.advance(3600);
    assert.equal(records.prune(), true);
    assert.equal(new IssuedCertificates({ dir, now: clock.now }).revoked().length, 0);
  });

  test('a node holds a bounded number of unexpired certificates', async (t) => {
    const dir = await tempDir(t);
    const { issue, clock } = await issuer();
    const records = new IssuedCertificates({ dir, now: clock.now, maxPerNode: 2 });
    records.record('node-a', (await issue(60)).certPem);
    records.record('node-a', (await issue(60)).certPem);
    const third = (await issue(60)).certPem;
    assert.throws(() => records.record('node-a', third), code('AMBIT_ERR_CA_TOO_MANY_CERTIFICATES'));
    records.record('node-b', third); // another node is not affected
    clock.advance(120);
    records.record('node-a', (await issue(60)).certPem); // expired ones no longer count
  });

  test('unreadable records stop the CA rather than forget a revocation', async (t) => {
    const dir = await tempDir(t);
    const { issue, clock } = await issuer();
    const records = new IssuedCertificates({ dir, now: clock.now });
    records.record('node-a', (await issue(3600)).certPem);
    records.revokeNode('node-a');
    await writeFile(join(dir, 'revoked.json'), '[{"issuer": 1}]');
    assert.throws(() => new IssuedCertificates({ dir }), code('AMBIT_ERR_CA_RECORDS_UNREADABLE'));
  });
});
