// The CSR service's decisions without a transport: the impersonation check and the mesh's own identities.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CaService, InMemoryPlacement, JoinTokens } from '../../../src/control/ca/index.ts';
import { hasCode } from '../../../src/errors/index.ts';
import { createCsr, generateKeyPair, type SpiffeId } from '../../../src/identity/index.ts';
import { newCa, WEB } from './helpers.ts';

test('a node gets certificates only for identities placed on it, never for the mesh’s own', async () => {
  const placement = new InMemoryPlacement();
  const service = new CaService({ ca: await newCa(), tokens: new JoinTokens(), placement });
  const control = 'spiffe://cluster.local/ns/ambit-system/sa/ambit-control' as SpiffeId;
  placement.place('web-1', 'node-1', WEB);
  placement.place('evil', 'node-1', control); // even if the registry were fooled into placing it
  const csr = async (id: SpiffeId) => createCsr(id, (await generateKeyPair()).keys);

  const issued = await service.createCertificate('node-1', await csr(WEB));
  assert.equal(issued.id, WEB);
  await assert.rejects(service.createCertificate('node-2', await csr(WEB)), (e) =>
    hasCode(e, 'AMBIT_ERR_CA_IMPERSONATION'),
  );
  await assert.rejects(service.createCertificate('node-1', await csr(control)), (e) =>
    hasCode(e, 'AMBIT_ERR_CA_IMPERSONATION'),
  );
});
