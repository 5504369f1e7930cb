import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { hasCode } from '../../../src/errors/index.ts';
import {
  PRODUCTS,
  type ProductPage,
  RATINGS,
  SAMPLE_BAD_ARG,
  SAMPLE_UPSTREAM_FAILED,
  type SampleServer,
  type ServedBy,
  showsRatings,
  startCatalog,
  startFrontend,
  startRatings,
} from '../../../src/samples/index.ts';
import { get1 } from './client.ts';

const loop = (s: SampleServer) => new URL(`http://127.0.0.1:${s.address.port}`);
const local = { host: '127.0.0.1', port: 0 };

/** A loopback port with nothing listening: bind, note the port, close. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('showsRatings', () => {
  for (const [version, shows] of [
    ['v1', false],
    ['v2', true],
    ['v10', true],
    ['v2-canary', true],
    ['v0', false],
    ['blue', false],
    ['', false],
  ] as const) {
    it(`${version || '(empty)'} → ${shows}`, () => assert.equal(showsRatings(version), shows));
  }
});

describe('storefront: frontend → catalog v1 and v2 → ratings', () => {
  const servers: SampleServer[] = [];
  let frontend: SampleServer;
  before(async () => {
    const ratings = await startRatings({ ...local, pod: { pod: 'ratings-1', version: 'v1' } });
    servers.push(ratings);
    const v1 = await startCatalog({ ...local, pod: { pod: 'catalog-v1', version: 'v1' } });
    servers.push(v1);
    const v2 = await startCatalog({
      ...local,
      pod: { pod: 'catalog-v2', version: 'v2' },
      ratings: loop(ratings),
    });
    servers.push(v2);
    frontend = await startFrontend({ ...local, pod: { pod: 'frontend-1' }, catalog: [loop(v1), loop(v2)] });
    servers.push(frontend);
  });
  after(async () => {
    for (const s of servers.reverse()) await s.close();
  });

  it('takes the catalogs in turn and v2 carries the ratings', async () => {
    const pages: ProductPage[] = [];
    for (let i = 0; i < 4; i++) {
      const reply = await get1(frontend.address.port, '/api/products');
      assert.equal(reply.status, 200, reply.body);
      pages.push(JSON.parse(reply.body) as ProductPage);
    }
    const catalogs = pages.map((p) => p.servedBy.calls?.[0]);
    assert.deepEqual(
      catalogs.map((c) => `${c?.pod}/${c?.version}`),
      ['catalog-v1/v1', 'catalog-v2/v2', 'catalog-v1/v1', 'catalog-v2/v2'],
    );
    for (const page of pages) {
      assert.deepEqual(
        { service: page.servedBy.service, pod: page.servedBy.pod, version: page.servedBy.version },
        { service: 'frontend', pod: 'frontend-1', version: 'v1' },
      );
      assert.deepEqual(
        page.products.map((p) => p.id),
        PRODUCTS.map((p) => p.id),
      );
      const catalog = page.servedBy.calls?.[0] as ServedBy;
      if (catalog.version === 'v1') {
        assert.ok(
          page.products.every((p) => !('rating' in p)),
          'v1 shows no ratings',
        );
        assert.equal(catalog.calls, undefined, 'v1 calls nobody');
      } else {
        for (const p of page.products) assert.deepEqual(p.rating, RATINGS[p.id]);
        assert.deepEqual(catalog.calls, [{ service: 'ratings', pod: 'ratings-1', version: 'v1' }]);
      }
    }
  });

  it('renders the HTML page with the serving chain', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const reply = await get1(frontend.address.port, '/');
      assert.equal(reply.status, 200);
      assert.match(String(reply.headers['content-type']), /^text\/html/);
      assert.match(reply.body, /Mesh hammock/);
      const chain = /served by: ([^<]*)</.exec(reply.body)?.[1] ?? '';
      seen.add(chain);
      if (chain.includes('catalog-v2')) assert.match(reply.body, /★★★★★/);
    }
    assert.deepEqual(
      [...seen].sort(),
      [
        'frontend frontend-1 (v1) → catalog catalog-v1 (v1)',
        'frontend frontend-1 (v1) → catalog catalog-v2 (v2) → ratings ratings-1 (v1)',
      ].sort(),
    );
  });

  it('serves one product, and 404 for an unknown one', async () => {
    const catalogV2 = servers[2] as SampleServer;
    const one = await get1(catalogV2.address.port, '/products/p3');
    assert.equal(one.status, 200);
    const body = JSON.parse(one.body) as { product: { id: string; rating: unknown }; servedBy: ServedBy };
    assert.equal(body.product.id, 'p3');
    assert.deepEqual(body.product.rating, RATINGS.p3);
    assert.equal(body.servedBy.pod, 'catalog-v2');
    const missing = await get1(catalogV2.address.port, '/products/nope');
    assert.equal(missing.status, 404);
    assert.equal((JSON.parse(missing.body) as { servedBy: ServedBy }).servedBy.pod, 'catalog-v2');
  });

  it('answers ratings by id', async () => {
    const ratings = servers[0] as SampleServer;
    const reply = await get1(ratings.address.port, '/ratings/p2');
    assert.equal(reply.status, 200);
    assert.deepEqual(JSON.parse(reply.body), {
      id: 'p2',
      ...RATINGS.p2,
      servedBy: { service: 'ratings', pod: 'ratings-1', version: 'v1' },
    });
    assert.equal((await get1(ratings.address.port, '/ratings/p9')).status, 404);
  });

  it('answers 405 to methods other than GET', async () => {
    const reply = await get1(frontend.address.port, '/api/products', 'POST');
    assert.equal(reply.status, 405);
    assert.equal(reply.headers.allow, 'GET, HEAD');
  });
});

describe('storefront: upstream failures', () => {
  it('frontend answers 502 naming the catalog when it is down', async () => {
    const port = await deadPort();
    const frontend = await startFrontend({
      ...local,
      pod: { pod: 'frontend-1' },
      catalog: [new URL(`http://127.0.0.1:${port}`)],
    });
    try {
      const reply = await get1(frontend.address.port, '/api/products');
      assert.equal(reply.status, 502);
      const body = JSON.parse(reply.body) as {
        error: { code: string; upstream: string; reason: string; message: string };
        servedBy: ServedBy;
      };
      assert.equal(body.error.code, SAMPLE_UPSTREAM_FAILED);
      assert.equal(body.error.upstream, 'catalog');
      assert.equal(body.error.reason, 'unreachable');
      assert.match(body.error.message, /catalog/);
      assert.equal(body.servedBy.pod, 'frontend-1');
      const page = await get1(frontend.address.port, '/');
      assert.equal(page.status, 502);
      assert.match(page.body, /catalog at http:\/\/127\.0\.0\.1/);
      // Still serving after the failures.
      assert.equal((await get1(frontend.address.port, '/healthz')).status, 200);
    } finally {
      await frontend.close();
    }
  });

  it('catalog v2 answers 502 naming ratings when it is down; the frontend passes on a 502', async () => {
    const port = await deadPort();
    const catalog = await startCatalog({
      ...local,
      pod: { pod: 'catalog-v2', version: 'v2' },
      ratings: new URL(`http://127.0.0.1:${port}`),
    });
    const frontend = await startFrontend({ ...local, pod: { pod: 'frontend-1' }, catalog: [loop(catalog)] });
    try {
      const direct = await get1(catalog.address.port, '/products');
      assert.equal(direct.status, 502);
      assert.equal((JSON.parse(direct.body) as { error: { upstream: string } }).error.upstream, 'ratings');
      const via = await get1(frontend.address.port, '/api/products');
      assert.equal(via.status, 502);
      const body = JSON.parse(via.body) as { error: { upstream: string; reason: string; status: number } };
      assert.equal(body.error.upstream, 'catalog');
      assert.equal(body.error.reason, 'status');
      assert.equal(body.error.status, 502);
    } finally {
      await frontend.close();
      await catalog.close();
    }
  });

  it('frontend answers 502 with reason timeout when the catalog is too slow', async () => {
    // A listener that accepts and never answers stands in for a hung catalog.
    const hung = createServer(() => {});
    const sockets = new Set<import('node:net').Socket>();
    hung.on('connection', (s) => sockets.add(s));
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const { port } = hung.address() as { port: number };
    const frontend = await startFrontend({
      ...local,
      timeoutMs: 100,
      pod: { pod: 'frontend-1' },
      catalog: [new URL(`http://127.0.0.1:${port}`)],
    });
    try {
      const reply = await get1(frontend.address.port, '/api/products');
      assert.equal(reply.status, 502);
      assert.equal((JSON.parse(reply.body) as { error: { reason: string } }).error.reason, 'timeout');
    } finally {
      await frontend.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => hung.close(() => resolve()));
    }
  });

  it('refuses to start catalog v2 without a ratings URL, and frontend without catalogs', async () => {
    await assert.rejects(
      startCatalog({ ...local, pod: { pod: 'c', version: 'v2' } }),
      (err) => hasCode(err, SAMPLE_BAD_ARG) && /--ratings/.test(err.message),
    );
    await assert.rejects(
      startFrontend({ ...local, pod: { pod: 'f' }, catalog: [] }),
      (err) => hasCode(err, SAMPLE_BAD_ARG) && /--catalog/.test(err.message),
    );
  });
});
