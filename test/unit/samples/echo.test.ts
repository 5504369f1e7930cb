import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { hasCode } from '../../../src/errors/index.ts';
import {
  type EchoReply,
  INJECTED_FAILURE_STATUS,
  MAX_SIZE_BYTES,
  parseEchoQuery,
  SAMPLE_BAD_QUERY,
  SAMPLE_INJECTED_FAILURE,
  type SampleServer,
  startEcho,
} from '../../../src/samples/index.ts';
import { close2, get1, get2, open2 } from './client.ts';

describe('parseEchoQuery', () => {
  it('defaults to no delay, status 200 and no padding', () => {
    assert.deepEqual(parseEchoQuery(new URLSearchParams('')), {
      delayMs: 0,
      status: 200,
      sizeBytes: 0,
      failProbability: 0,
    });
  });

  it('reads delay, status, size and fail', () => {
    assert.deepEqual(
      parseEchoQuery(new URLSearchParams('delay=60000&status=503&size=67108864&fail=0.25&x=1')),
      {
        delayMs: 60000,
        status: 503,
        sizeBytes: MAX_SIZE_BYTES,
        failProbability: 0.25,
      },
    );
  });

  for (const [text, want] of [
    ['0', 0],
    ['1', 1],
    ['0.5', 0.5],
    ['.5', 0.5],
    ['1.0', 1],
    ['0.001', 0.001],
  ] as const) {
    it(`reads fail=${text} as ${want}`, () => {
      assert.equal(parseEchoQuery(new URLSearchParams(`fail=${text}`)).failProbability, want);
    });
  }

  const bad: Array<[string, string]> = [
    ['delay=abc', 'delay'],
    ['delay=-1', 'delay'],
    ['delay=1.5', 'delay'],
    ['delay=60001', 'delay'],
    ['delay=', 'delay'],
    ['delay=1&delay=2', 'delay'],
    ['status=99', 'status'],
    ['status=199', 'status'],
    ['status=600', 'status'],
    ['status=2e2', 'status'],
    ['size=67108865', 'size'],
    ['size=0x10', 'size'],
    ['size=9999999999', 'size'],
    ['fail=', 'fail'],
    ['fail=1.5', 'fail'],
    ['fail=-0.1', 'fail'],
    ['fail=abc', 'fail'],
    ['fail=1e-1', 'fail'],
    ['fail=NaN', 'fail'],
    ['fail=Infinity', 'fail'],
    ['fail=0.5&fail=0.5', 'fail'],
  ];
  for (const [query, parameter] of bad) {
    it(`rejects ${query} naming '${parameter}'`, () => {
      assert.throws(
        () => parseEchoQuery(new URLSearchParams(query)),
        (err) => hasCode(err, SAMPLE_BAD_QUERY) && err.detail?.parameter === parameter,
      );
    });
  }
});

describe('echo server', () => {
  let echo: SampleServer;
  before(async () => {
    echo = await startEcho({
      host: '127.0.0.1',
      port: 0,
      pod: { pod: 'echo-7f9c', node: 'node-1', namespace: 'shop', version: 'v2' },
    });
  });
  after(() => echo.close());

  it('answers HTTP/1.1 with the pod and the request it saw', async () => {
    const reply = await get1(echo.address.port, '/some/path?a=1&a=2&b=x');
    assert.equal(reply.status, 200);
    assert.match(String(reply.headers['content-type']), /^application\/json/);
    const body = JSON.parse(reply.body) as EchoReply;
    assert.equal(body.pod, 'echo-7f9c');
    assert.equal(body.version, 'v2');
    assert.equal(body.namespace, 'shop');
    assert.equal(body.node, 'node-1');
    assert.equal(body.request.method, 'GET');
    assert.equal(body.request.path, '/some/path');
    assert.deepEqual(body.request.query, { a: ['1', '2'], b: 'x' });
    assert.equal(body.request.httpVersion, '1.1');
    assert.equal(body.request.headers.host, `127.0.0.1:${echo.address.port}`);
    assert.equal(body.request.peer.address, '127.0.0.1');
    assert.equal(body.request.peer.port, reply.localPort);
    assert.equal(body.payload, undefined);
  });

  it('answers h2c with prior knowledge, several streams on one session', async () => {
    const session = await open2(echo.address.port);
    try {
      const [one, two] = await Promise.all([get2(session, '/one?x=1'), get2(session, '/two')]);
      for (const [reply, path] of [
        [one, '/one'],
        [two, '/two'],
      ] as const) {
        assert.equal(reply.status, 200);
        const body = JSON.parse(reply.body) as EchoReply;
        assert.equal(body.request.httpVersion, '2.0');
        assert.equal(body.request.path, path);
        assert.equal(body.request.authority, `127.0.0.1:${echo.address.port}`);
        assert.equal(body.pod, 'echo-7f9c');
        assert.ok(!Object.keys(body.request.headers).some((h) => h.startsWith(':')), 'no pseudo-headers');
      }
    } finally {
      await close2(session);
    }
  });

  it('answers after ?delay=', async () => {
    const reply = await get1(echo.address.port, '/?delay=20');
    assert.equal(reply.status, 200);
    assert.deepEqual((JSON.parse(reply.body) as EchoReply).request.query, { delay: '20' });
  });

  it('sets the status from ?status=, over both protocols', async () => {
    const h1 = await get1(echo.address.port, '/?status=503');
    assert.equal(h1.status, 503);
    assert.equal((JSON.parse(h1.body) as EchoReply).pod, 'echo-7f9c');
    const session = await open2(echo.address.port);
    try {
      const h2 = await get2(session, '/?status=418');
      assert.equal(h2.status, 418);
    } finally {
      await close2(session);
    }
  });

  it('sends no body for ?status=204', async () => {
    const reply = await get1(echo.address.port, '/?status=204');
    assert.equal(reply.status, 204);
    assert.equal(reply.body, '');
  });

  it('pads the body with ?size= bytes of payload', async () => {
    const reply = await get1(echo.address.port, '/?size=100000');
    const body = JSON.parse(reply.body) as EchoReply;
    assert.equal(body.payload?.length, 100000);
    assert.equal(Number(reply.headers['content-length']), Buffer.byteLength(reply.body));
    const session = await open2(echo.address.port);
    try {
      const h2 = JSON.parse((await get2(session, '/?size=70000')).body) as EchoReply;
      assert.equal(h2.payload?.length, 70000);
    } finally {
      await close2(session);
    }
  });

  it('answers 400 with a JSON error naming the bad parameter', async () => {
    for (const [query, parameter] of [
      ['delay=soon', 'delay'],
      ['status=700', 'status'],
      [`size=${MAX_SIZE_BYTES + 1}`, 'size'],
      ['fail=2', 'fail'],
    ]) {
      const reply = await get1(echo.address.port, `/?${query}`);
      assert.equal(reply.status, 400, query);
      const body = JSON.parse(reply.body) as { error: { code: string; parameter: string; message: string } };
      assert.equal(body.error.code, SAMPLE_BAD_QUERY);
      assert.equal(body.error.parameter, parameter);
      assert.match(body.error.message, new RegExp(`'${parameter}'`));
    }
  });

  it('keeps serving after a client leaves during a delay', async () => {
    await new Promise<void>((resolve) => {
      const req = request({
        host: '127.0.0.1',
        port: echo.address.port,
        path: '/?delay=60000',
        agent: false,
      });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.end();
      req.on('socket', (s) => s.on('connect', () => setImmediate(() => req.destroy())));
    });
    assert.equal((await get1(echo.address.port, '/')).status, 200);
  });
});

describe('echo ?fail=', () => {
  /** An echo whose coin comes up `draws` in turn, so which request fails is known. */
  async function withDraws(draws: number[], fn: (port: number) => Promise<void>): Promise<void> {
    let i = 0;
    const echo = await startEcho({
      host: '127.0.0.1',
      port: 0,
      pod: { pod: 'flaky-1', version: 'v1' },
      random: () => draws[i++ % draws.length] ?? 0,
    });
    try {
      await fn(echo.address.port);
    } finally {
      await echo.close();
    }
  }

  it('answers 503 when the draw is below P and the echo otherwise', async () => {
    await withDraws([0.1, 0.7, 0.49, 0.5], async (port) => {
      const statuses = [];
      for (let n = 0; n < 4; n++) statuses.push((await get1(port, '/?fail=0.5')).status);
      assert.deepEqual(statuses, [503, 200, 503, 200]);
    });
  });

  it('names the failure and the pod in the 503 body', async () => {
    await withDraws([0], async (port) => {
      const reply = await get1(port, '/x?fail=1');
      assert.equal(reply.status, INJECTED_FAILURE_STATUS);
      const body = JSON.parse(reply.body) as { error: { code: string; pod: string; version: string } };
      assert.equal(body.error.code, SAMPLE_INJECTED_FAILURE);
      assert.equal(body.error.pod, 'flaky-1');
      assert.equal(body.error.version, 'v1');
    });
  });

  it('never fails with fail=0 and always with fail=1, over both protocols', async () => {
    await withDraws([0, 0.999999], async (port) => {
      for (let n = 0; n < 4; n++) assert.equal((await get1(port, '/?fail=0')).status, 200);
      for (let n = 0; n < 4; n++) assert.equal((await get1(port, '/?fail=1')).status, 503);
      const session = await open2(port);
      try {
        assert.equal((await get2(session, '/?fail=1')).status, 503);
      } finally {
        await close2(session);
      }
    });
  });

  it('fails about P of the time with the real coin', async () => {
    const echo = await startEcho({ host: '127.0.0.1', port: 0, pod: { pod: 'p' } });
    try {
      let failed = 0;
      for (let n = 0; n < 400; n++)
        if ((await get1(echo.address.port, '/?fail=0.5')).status === 503) failed++;
      // Binomial(400, 0.5): 200 ± 60 is more than six standard deviations either way.
      assert.ok(failed > 140 && failed < 260, `${failed} of 400 failed`);
    } finally {
      await echo.close();
    }
  });
});

describe('echo keep-alive', () => {
  it('closes an idle HTTP/1.1 connection after keepAliveMs', { timeout: 10_000 }, async () => {
    const echo = await startEcho({ host: '127.0.0.1', port: 0, keepAliveMs: 50, pod: { pod: 'p' } });
    const agent = new Agent({ keepAlive: true });
    try {
      const closed = await new Promise<boolean>((resolve, reject) => {
        request({ host: '127.0.0.1', port: echo.address.port, path: '/', agent }, (res) => {
          res.resume();
          // The server, not the client, ends the kept-alive connection once it has been idle.
          res.socket.once('close', () => resolve(true));
        })
          .on('error', reject)
          .end();
      });
      assert.equal(closed, true);
    } finally {
      agent.destroy();
      await echo.close();
    }
  });
});

describe('echo shutdown', () => {
  it('closes idle keep-alive and h2 connections without waiting for the drain deadline', {
    timeout: 15000,
  }, async () => {
    const echo = await startEcho({ host: '127.0.0.1', port: 0, drainMs: 60_000, pod: { pod: 'p' } });
    const agent = new Agent({ keepAlive: true });
    const session = await open2(echo.address.port);
    try {
      await new Promise<void>((resolve, reject) => {
        request({ host: '127.0.0.1', port: echo.address.port, path: '/', agent }, (res) => {
          res.resume();
          res.on('end', resolve);
        })
          .on('error', reject)
          .end();
      });
      await get2(session, '/');
      await echo.close();
      // The port no longer accepts connections.
      await assert.rejects(
        new Promise((resolve, reject) => {
          const s = connect({ host: '127.0.0.1', port: echo.address.port });
          s.on('connect', () => {
            s.destroy();
            resolve(undefined);
          });
          s.on('error', reject);
        }),
        { code: 'ECONNREFUSED' },
      );
    } finally {
      agent.destroy();
      session.destroy();
      await echo.close();
    }
  });

  it('forces in-flight requests closed after the drain deadline', { timeout: 15000 }, async () => {
    const echo = await startEcho({ host: '127.0.0.1', port: 0, drainMs: 50, pod: { pod: 'p' } });
    const pending = get1(echo.address.port, '/?delay=60000');
    // Wait until the server has the request, then close; the client sees its connection reset.
    await new Promise((r) => setTimeout(r, 50));
    await echo.close();
    await assert.rejects(pending);
  });
});
