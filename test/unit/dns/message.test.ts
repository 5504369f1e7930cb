// Reading queries and shaping answers, without sockets: every reason a packet is refused, and
// truncation to the client's size.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decode, encode, type Packet, RECURSION_DESIRED } from 'dns-packet';
import { fit, parseQuery, readHeader, tableAnswer } from '../../../src/dns/message.ts';
import { NameTable } from '../../../src/dns/names.ts';

function query(p: Partial<Packet> = {}): Buffer {
  return encode({
    type: 'query',
    id: 7,
    flags: RECURSION_DESIRED,
    questions: [{ type: 'A', name: 'a.test' }],
    ...p,
  });
}

test('a good query is read with its id, question, flags and UDP size', () => {
  const parsed = parseQuery(query());
  assert.ok(parsed.ok);
  assert.equal(parsed.query.id, 7);
  assert.deepEqual(parsed.query.question, { name: 'a.test', type: 'A', class: 'IN' });
  assert.equal(parsed.query.udpSize, 512);
  assert.equal(parsed.query.edns, false);
});

test('EDNS0: the client size is honoured between 512 and 1232', () => {
  const withOpt = (udpPayloadSize: number) =>
    query({
      additionals: [
        {
          type: 'OPT',
          name: '.',
          udpPayloadSize,
          extendedRcode: 0,
          ednsVersion: 0,
          flags: 0,
          flag_do: false,
          options: [],
        },
      ],
    });
  for (const [asked, got] of [
    [4096, 1232],
    [1000, 1000],
    [100, 512],
  ]) {
    const parsed = parseQuery(withOpt(asked ?? 0));
    assert.ok(parsed.ok);
    assert.equal(parsed.query.udpSize, got);
    assert.equal(parsed.query.edns, true);
  }
});

const refusals: Array<[string, Buffer, string, string | undefined]> = [
  ['fewer than 12 bytes', Buffer.from([1, 2, 3]), 'short', undefined],
  [
    'a response',
    encode({ type: 'response', id: 7, questions: [{ type: 'A', name: 'a.test' }] }),
    'response',
    undefined,
  ],
  ['no question', query({ questions: [] }), 'question_count', 'FORMERR'],
  [
    'two questions',
    query({
      questions: [
        { type: 'A', name: 'a.test' },
        { type: 'A', name: 'b.test' },
      ],
    }),
    'question_count',
    'FORMERR',
  ],
  ['a label with a space', query({ questions: [{ type: 'A', name: 'a b.test' }] }), 'bad_name', 'FORMERR'],
  // dns-packet refuses a length byte over 63 itself.
  [
    'a label of 64',
    query({ questions: [{ type: 'A', name: `${'x'.repeat(64)}.test` }] }),
    'undecodable',
    'FORMERR',
  ],
  ['a non-ASCII label', query({ questions: [{ type: 'A', name: 'caf\u00e9.test' }] }), 'bad_name', 'FORMERR'],
  [
    'a header then garbage',
    Buffer.concat([query().subarray(0, 12), Buffer.from([0xff, 0xff, 0xff])]),
    'undecodable',
    'FORMERR',
  ],
  [
    'opcode NOTIFY',
    (() => {
      const b = query();
      b[2] = (b[2] ?? 0) | (4 << 3);
      return b;
    })(),
    'opcode',
    'NOTIMP',
  ],
  ['over 4096 bytes', Buffer.concat([query(), Buffer.alloc(4100)]), 'oversize', 'FORMERR'],
];

for (const [what, bytes, reason, rcode] of refusals) {
  test(`refused: ${what}`, () => {
    const parsed = parseQuery(bytes);
    assert.equal(parsed.ok, false);
    if (parsed.ok) return;
    assert.equal(parsed.reason, reason);
    assert.equal(parsed.rcode, rcode);
    if (rcode === undefined) {
      assert.equal(parsed.reply, undefined);
      return;
    }
    assert.ok(parsed.reply);
    const reply = decode(parsed.reply) as ReturnType<typeof decode> & { rcode: string };
    assert.equal(reply.id, 7);
    assert.equal(reply.flag_qr, true);
    assert.equal(reply.rcode, rcode);
  });
}

test('readHeader needs 12 bytes and reads id, QR and opcode', () => {
  assert.equal(readHeader(Buffer.alloc(11)), undefined);
  assert.deepEqual(
    { ...readHeader(query()), flags: undefined },
    { id: 7, flags: undefined, qr: false, opcode: 'QUERY' },
  );
});

test('an answer that does not fit is truncated: TC set, records gone, question kept', () => {
  const parsed = parseQuery(query({ questions: [{ type: 'A', name: 'Many.Test' }] }));
  assert.ok(parsed.ok);
  const addresses = Array.from({ length: 60 }, (_, i) => `10.0.0.${i + 1}`);
  const table = new NameTable([{ name: 'many.test', ipv4: addresses, ipv6: [] }]);
  const full = tableAnswer(parsed.query, table.lookup('Many.Test', 'A'), { ttl: 30, aa: true, ra: false });
  assert.ok(full);
  assert.ok(full.bytes.length > 512);
  assert.equal(fit(full.bytes, 65_535), full.bytes);
  const cut = fit(full.bytes, 512);
  assert.ok(cut && cut.length <= 512);
  const p = decode(cut);
  assert.equal(p.flag_tc, true);
  assert.equal(p.flag_aa, true);
  assert.equal(p.answers?.length, 0);
  assert.deepEqual(p.questions, [{ name: 'Many.Test', type: 'A', class: 'IN' }]);
});

test('parseQuery never throws, whatever the bytes', async () => {
  const fc = (await import('fast-check')).default;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (raw) => {
      const parsed = parseQuery(Buffer.from(raw));
      if (!parsed.ok && parsed.reply) decode(parsed.reply);
    }),
    { numRuns: 2000 },
  );
  // Mutations of a good query reach deeper than random bytes do.
  const good = query({ questions: [{ type: 'AAAA', name: 'httpbin.foo.svc.cluster.local' }] });
  fc.assert(
    fc.property(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 }), (at, byte) => {
      const bytes = Buffer.from(good);
      bytes[at] = byte;
      parseQuery(bytes);
    }),
    { numRuns: 2000 },
  );
});
