// A node that rejoins through a replica whose view of the store lags (it has not yet heard of the
// revocation another replica just made) is still taken off the revoked list: the decision is made in
// the commit, on etcd's newest value, not on the lagging mirror's word. The lag is real: the replica
// reaches etcd through a loopback relay that holds back etcd's answers and watch events for a while.

import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { CaService, InMemoryPlacement, JoinTokens } from '../../../src/control/ca/index.ts';
import { openEtcdStore, type Store } from '../../../src/control/store/index.ts';
import { createCsr, generateKeyPair, nodeId } from '../../../src/identity/index.ts';
import { NO_ETCD, startEtcd } from '../../helpers/etcd.ts';
import { newCa, TD } from '../../unit/identity/helpers.ts';

/** A TCP relay to `target` whose etcd → client direction can be held back (buffered) and released. */
async function relay(t: TestContext, target: URL) {
  let held: Array<() => void> | undefined;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      if (held) held.push(() => client.write(chunk));
      else client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    hold() {
      held = [];
    },
    release() {
      const pending = held ?? [];
      held = undefined;
      for (const send of pending) send();
    },
  };
}

async function open(t: TestContext, url: string): Promise<Store> {
  const store = await openEtcdStore({ endpoints: [url], prefix: '/rejoin' });
  t.after(() => store.close());
  return store;
}

test('a rejoin through a replica that has not seen the revocation yet un-revokes the node', {
  skip: NO_ETCD,
}, async (t) => {
  const etcd = await startEtcd(t);
  const link = await relay(t, new URL(etcd.url));
  const ca = await newCa();
  const service = (store: Store, tokens: JoinTokens) => {
    const s = new CaService({ ca, tokens, placement: new InMemoryPlacement(), store });
    t.after(() => s.close());
    return s;
  };
  const tokens = new JoinTokens({ store: await open(t, etcd.url) });
  const here = service(await open(t, etcd.url), tokens);
  const lagging = service(await open(t, link.url), tokens);
  const { token } = await tokens.issue('node-1');
  const csr = await createCsr(nodeId(TD, 'node-1'), (await generateKeyPair()).keys);

  link.hold();
  await here.revokeNode('node-1');
  assert.equal(lagging.isRevoked('node-1'), false, 'the lagging replica has not heard of it');
  const joined = lagging.join(token, csr);
  const release = setTimeout(() => link.release(), 300);
  t.after(() => clearTimeout(release));
  assert.equal((await joined).node, 'node-1');
  link.release();
  // A commit through the other replica waits until its mirror holds every earlier one: the rejoin's too.
  await here.revokeNode('node-2');
  assert.equal(here.isRevoked('node-1'), false, 'node-1 rejoined after its revocation');
});
