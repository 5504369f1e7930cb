import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  acceptKey,
  CLOSE,
  closePayload,
  encodeFrame,
  handshakeProblem,
  OPCODE,
  parseFrame,
  type SampleServer,
  startEcho,
} from '../../../src/samples/index.ts';

/** A masked client frame, as RFC 6455 §5.3 requires of clients. */
function clientFrame(opcode: number, payload: Buffer, fin = true, mask = Buffer.from([1, 2, 3, 4])): Buffer {
  const masked = Buffer.from(payload.map((b, i) => b ^ (mask[i & 3] ?? 0)));
  const server = encodeFrame(opcode, Buffer.alloc(0), fin);
  const length =
    payload.length < 126
      ? Buffer.from([0x80 | payload.length])
      : payload.length < 65536
        ? Buffer.from([0x80 | 126, payload.length >> 8, payload.length & 0xff])
        : Buffer.concat([Buffer.from([0x80 | 127]), bigLength(payload.length)]);
  return Buffer.concat([server.subarray(0, 1), length, mask, masked]);
}

function bigLength(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

describe('websocket framing', () => {
  it("computes RFC 6455's example Sec-WebSocket-Accept", () => {
    assert.equal(acceptKey('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });

  it('parses masked frames of each length encoding', () => {
    for (const size of [0, 5, 125, 126, 65535, 65536]) {
      const payload = Buffer.alloc(size, 0x61);
      const r = parseFrame(clientFrame(OPCODE.binary, payload));
      assert.equal(r.kind, 'frame', `size ${size}`);
      if (r.kind !== 'frame') continue;
      assert.equal(r.frame.opcode, OPCODE.binary);
      assert.equal(r.frame.fin, true);
      assert.ok(r.frame.payload.equals(payload));
      assert.equal(r.rest.length, 0);
    }
  });

  it('asks for more bytes until a frame is whole, and leaves what follows it', () => {
    const two = Buffer.concat([
      clientFrame(OPCODE.text, Buffer.from('one')),
      clientFrame(OPCODE.text, Buffer.from('two')),
    ]);
    for (let n = 0; n < 9; n++) assert.equal(parseFrame(two.subarray(0, n)).kind, 'more', `${n} bytes`);
    const r = parseFrame(two);
    assert.equal(r.kind, 'frame');
    if (r.kind !== 'frame') return;
    assert.equal(r.frame.payload.toString(), 'one');
    const next = parseFrame(r.rest);
    assert.equal(next.kind === 'frame' && next.frame.payload.toString(), 'two');
  });

  const errors: Array<[string, Buffer, number]> = [
    ['an unmasked frame', encodeFrame(OPCODE.text, Buffer.from('hi')), CLOSE.protocolError],
    ['an unknown opcode', clientFrame(3, Buffer.from('x')), CLOSE.protocolError],
    ['a fragmented ping', clientFrame(OPCODE.ping, Buffer.from('x'), false), CLOSE.protocolError],
    ['a ping over 125 bytes', clientFrame(OPCODE.ping, Buffer.alloc(126)), CLOSE.protocolError],
  ];
  for (const [what, bytes, code] of errors) {
    it(`refuses ${what} with close code ${code}`, () => {
      const r = parseFrame(bytes);
      assert.equal(r.kind, 'error');
      assert.equal(r.kind === 'error' && r.code, code);
    });
  }

  it('refuses a frame over the size limit with 1009 before reading its payload', () => {
    const head = clientFrame(OPCODE.binary, Buffer.alloc(200)).subarray(0, 4);
    const r = parseFrame(head, 100);
    assert.equal(r.kind === 'error' && r.code, CLOSE.tooBig);
  });

  it('checks the opening handshake', () => {
    const good = {
      method: 'GET',
      headers: {
        upgrade: 'websocket',
        connection: 'keep-alive, Upgrade',
        'sec-websocket-version': '13',
        'sec-websocket-key': Buffer.alloc(16, 7).toString('base64'),
      },
    };
    assert.equal(handshakeProblem(good), undefined);
    assert.match(handshakeProblem({ ...good, method: 'POST' }) ?? '', /GET/);
    assert.match(
      handshakeProblem({ ...good, headers: { ...good.headers, upgrade: 'h2c' } }) ?? '',
      /websocket/,
    );
    assert.match(
      handshakeProblem({ ...good, headers: { ...good.headers, 'sec-websocket-version': '8' } }) ?? '',
      /13/,
    );
    assert.match(
      handshakeProblem({ ...good, headers: { ...good.headers, 'sec-websocket-key': 'short' } }) ?? '',
      /16 bytes/,
    );
  });
});

/** Opens a raw WebSocket to the echo: handshake by hand, then frames; returns the socket and the reply head. */
function openRaw(port: number): Promise<{ socket: Socket; head: string; frames: () => Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let got = Buffer.alloc(0);
    let resolved = false;
    socket.on('error', reject);
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      const end = got.indexOf('\r\n\r\n');
      if (!resolved && end >= 0) {
        resolved = true;
        const head = got.subarray(0, end).toString('latin1');
        got = got.subarray(end + 4);
        resolve({ socket, head, frames: () => got });
      }
    });
    socket.write(
      'GET /chat HTTP/1.1\r\nhost: echo\r\nupgrade: websocket\r\nconnection: Upgrade\r\n' +
        `sec-websocket-version: 13\r\nsec-websocket-key: ${Buffer.alloc(16, 1).toString('base64')}\r\n\r\n`,
    );
  });
}

async function until<T>(fn: () => T | undefined): Promise<T> {
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('echo over WebSocket', () => {
  let echo: SampleServer;
  before(async () => {
    echo = await startEcho({ host: '127.0.0.1', port: 0, pod: { pod: 'ws-1' } });
  });
  after(() => echo.close());

  it('echoes text and binary messages to a real WebSocket client and closes cleanly', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${echo.address.port}/chat`);
    ws.binaryType = 'arraybuffer';
    const got: Array<string | number[]> = [];
    const closed = new Promise<CloseEvent>((resolve) => {
      ws.onclose = resolve;
    });
    ws.onopen = () => {
      ws.send('hello');
      ws.send(new Uint8Array([0, 1, 255]));
      ws.send('x'.repeat(70_000));
    };
    ws.onmessage = (e: MessageEvent) => {
      got.push(typeof e.data === 'string' ? e.data : Array.from(new Uint8Array(e.data as ArrayBuffer)));
      if (got.length === 3) ws.close(1000, 'done');
    };
    const close = await closed;
    assert.deepEqual(got, ['hello', [0, 1, 255], 'x'.repeat(70_000)]);
    assert.equal(close.code, 1000);
    assert.equal(close.wasClean, true);
  });

  it('answers the handshake with the accept key, pongs a ping and echoes fragments as sent', async () => {
    const { socket, head, frames } = await openRaw(echo.address.port);
    try {
      assert.match(head, /^HTTP\/1\.1 101 /);
      assert.match(
        head,
        new RegExp(`sec-websocket-accept: ${acceptKey(Buffer.alloc(16, 1).toString('base64'))}`, 'i'),
      );
      socket.write(clientFrame(OPCODE.ping, Buffer.from('p')));
      socket.write(clientFrame(OPCODE.text, Buffer.from('ab'), false));
      socket.write(clientFrame(OPCODE.continuation, Buffer.from('cd'), true));
      const want = Buffer.concat([
        encodeFrame(OPCODE.pong, Buffer.from('p')),
        encodeFrame(OPCODE.text, Buffer.from('ab'), false),
        encodeFrame(OPCODE.continuation, Buffer.from('cd'), true),
      ]);
      const echoed = await until(() => (frames().length >= want.length ? frames() : undefined));
      assert.ok(echoed.equals(want), echoed.toString('hex'));
    } finally {
      socket.destroy();
    }
  });

  it('closes with 1002 on an unmasked frame', async () => {
    const { socket, frames } = await openRaw(echo.address.port);
    try {
      socket.write(encodeFrame(OPCODE.text, Buffer.from('bad')));
      const got = await until(() => (frames().length >= 4 ? frames() : undefined));
      const r = parseFrame(
        Buffer.concat([Buffer.from([got[0] ?? 0, (got[1] ?? 0) | 0x80]), Buffer.alloc(4), got.subarray(2)]),
      );
      assert.equal(r.kind === 'frame' && r.frame.opcode, OPCODE.close);
      assert.equal(r.kind === 'frame' && r.frame.payload.readUInt16BE(0), CLOSE.protocolError);
    } finally {
      socket.destroy();
    }
  });

  it('refuses an upgrade that is not a WebSocket handshake with 400', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({
        host: '127.0.0.1',
        port: echo.address.port,
        path: '/',
        agent: false,
        headers: { connection: 'Upgrade', upgrade: 'websocket' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('upgrade', () => reject(new Error('upgraded without a key')));
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 400);
  });

  it('sends 1001 to open WebSockets when the echo closes', async () => {
    const own = await startEcho({ host: '127.0.0.1', port: 0, drainMs: 5000, pod: { pod: 'ws-2' } });
    const ws = new WebSocket(`ws://127.0.0.1:${own.address.port}/`);
    await new Promise((resolve) => {
      ws.onopen = resolve;
    });
    const closed = new Promise<CloseEvent>((resolve) => {
      ws.onclose = resolve;
    });
    await own.close();
    assert.equal((await closed).code, CLOSE.goingAway);
  });

  it('writes close payloads as code then reason', () => {
    const p = closePayload(1000, 'bye');
    assert.equal(p.readUInt16BE(0), 1000);
    assert.equal(p.subarray(2).toString(), 'bye');
  });
});
