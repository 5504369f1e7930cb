// A DnsServer on loopback, asked by a small client over real UDP and TCP sockets: table answers,
// truncation and the TCP retry, forwarding to a second DnsServer standing for the upstream, upstreams
// that never answer, bad input of every kind, and the metrics. No real resolver is ever asked.

import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { type TestContext, test } from 'node:test';
import { type DecodedPacket, decode, encode, type Packet, RECURSION_DESIRED } from 'dns-packet';
import { Registry } from 'prom-client';
import {
  DNS_ERRORS,
  DnsMetrics,
  DnsServer,
  type DnsServerOptions,
  NameTable,
} from '../../../src/dns/index.ts';
import { hasCode } from '../../../src/errors/index.ts';

type Reply = DecodedPacket & { rcode: string };

const MANY = Array.from({ length: 60 }, (_, i) => `198.19.2.${i + 1}`);
const table = new NameTable(
  [
    { name: 'httpbin.foo.svc.cluster.local', ipv4: ['198.19.0.10'], ipv6: ['2001:2::10'] },
    { name: 'v4only.foo.svc.cluster.local', ipv4: ['198.19.0.11'], ipv6: [] },
    { name: 'many.foo.svc.cluster.local', ipv4: MANY, ipv6: [] },
    { name: '*.example.com', ipv4: ['198.19.3.1'], ipv6: [] },
  ],
  { authoritativeZones: ['cluster.local'] },
);
/** What the upstream server knows: names outside the front server's table. */
const upstreamTable = new NameTable(
  [
    { name: 'outside.test', ipv4: ['198.18.9.9'], ipv6: [] },
    { name: 'many.outside.test', ipv4: MANY, ipv6: [] },
  ],
  { authoritativeZones: ['outside.test'] },
);

const WAIT_MS = 5_000;

function q(name: string, type: 'A' | 'AAAA' | 'TXT' | 'PTR' = 'A', id = 4242, edns?: number): Buffer {
  const packet: Packet = { type: 'query', id, flags: RECURSION_DESIRED, questions: [{ type, name }] };
  if (edns !== undefined) {
    packet.additionals = [
      {
        type: 'OPT',
        name: '.',
        udpPayloadSize: edns,
        extendedRcode: 0,
        ednsVersion: 0,
        flags: 0,
        flag_do: false,
        options: [],
      },
    ];
  }
  return encode(packet);
}

/** One datagram to the server and the first answer, or undefined when none comes in `waitMs`. */
async function udpRaw(
  port: number,
  bytes: Buffer,
  host = '127.0.0.1',
  waitMs = WAIT_MS,
): Promise<Buffer | undefined> {
  const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  try {
    return await new Promise<Buffer | undefined>((resolve, reject) => {
      const timer = setTimeout(() => resolve(undefined), waitMs);
      socket.on('error', reject);
      socket.on('message', (msg) => {
        // Only the answer to this query: an ephemeral port may be one an earlier test socket had.
        if (bytes.length >= 2 && (msg.length < 2 || msg.readUInt16BE(0) !== bytes.readUInt16BE(0))) return;
        clearTimeout(timer);
        resolve(msg);
      });
      socket.send(bytes, port, host);
    });
  } finally {
    socket.close();
  }
}

async function udp(port: number, bytes: Buffer, host = '127.0.0.1'): Promise<Reply> {
  const got = await udpRaw(port, bytes, host);
  assert.ok(got, 'the server answered over UDP');
  return decode(got) as Reply;
}

function frame(bytes: Buffer): Buffer {
  const prefix = Buffer.alloc(2);
  prefix.writeUInt16BE(bytes.length);
  return Buffer.concat([prefix, bytes]);
}

/** Writes `raw` on one TCP connection (half-closing after it when `end`) and reads `count` framed answers. */
async function tcpRaw(
  port: number,
  raw: Buffer,
  count: number,
  end = false,
): Promise<{ answers: Reply[]; closed: boolean }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  try {
    return await new Promise((resolve, reject) => {
      const answers: Reply[] = [];
      let buffered = Buffer.alloc(0);
      const timer = setTimeout(
        () => reject(new Error(`only ${answers.length} of ${count} TCP answers came`)),
        WAIT_MS,
      );
      const done = (closed: boolean) => {
        clearTimeout(timer);
        resolve({ answers, closed });
      };
      socket.on('error', reject);
      socket.on('close', () => done(true));
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
          const length = buffered.readUInt16BE(0);
          answers.push(decode(buffered.subarray(2, 2 + length)) as Reply);
          buffered = buffered.subarray(2 + length);
        }
        if (answers.length >= count && count > 0) done(false);
      });
      socket.write(raw);
      if (end) socket.end();
    });
  } finally {
    socket.destroy();
  }
}

async function tcp(port: number, bytes: Buffer): Promise<Reply> {
  const { answers } = await tcpRaw(port, frame(bytes), 1);
  assert.ok(answers[0]);
  return answers[0];
}

async function serve(
  t: TestContext,
  opts: Partial<DnsServerOptions> = {},
): Promise<{ server: DnsServer; registry: Registry }> {
  const registry = new Registry();
  const server = new DnsServer({
    host: '127.0.0.1',
    port: 0,
    table: () => table,
    upstreams: [],
    metrics: new DnsMetrics(registry),
    ...opts,
  });
  await server.start();
  t.after(() => server.close());
  return { server, registry };
}

/** A UDP socket and a TCP listener on one port that read queries and never answer. */
async function silentUpstream(
  t: TestContext,
): Promise<{ host: string; port: number; received: () => number }> {
  const socket = dgram.createSocket('udp4');
  let received = 0;
  socket.on('message', () => received++);
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => socket.close(() => r())));
  const port = socket.address().port;
  const held = new Set<net.Socket>();
  const listener = net.createServer((conn) => {
    held.add(conn);
    conn.once('data', () => received++);
    conn.on('close', () => held.delete(conn));
  });
  await new Promise<void>((r) => listener.listen(port, '127.0.0.1', r));
  t.after(() => {
    for (const conn of held) conn.destroy();
    return new Promise<void>((r) => listener.close(() => r()));
  });
  return { host: '127.0.0.1', port, received: () => received };
}

/** A loopback port nothing listens on (bound, then freed). */
async function freePort(): Promise<number> {
  const spare = dgram.createSocket('udp4');
  await new Promise<void>((r) => spare.bind(0, '127.0.0.1', r));
  const port = spare.address().port;
  await new Promise<void>((r) => spare.close(() => r()));
  return port;
}

/** A counter's total over the series matching `labels`; for a histogram, its observation count. */
async function value(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  assert.ok(metric, `metric ${name} is registered`);
  const { type, values } = await metric.get();
  return (values as Array<{ value: number; labels: Record<string, unknown>; metricName?: string }>)
    .filter((v) => String(type) !== 'histogram' || v.metricName === `${name}_count`)
    .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
    .reduce((sum, v) => sum + v.value, 0);
}

/** The addresses of an answer's records. */
function data(r: Reply): string[] {
  return (r.answers ?? []).map((a) => ('data' in a ? String(a.data) : ''));
}

test('A and AAAA from the table: authoritative, the question echoed in its case, the TTL given', async (t) => {
  const { server } = await serve(t, { ttl: 17 });
  const a = await udp(server.port, q('HttpBin.Foo.svc.cluster.local', 'A', 101));
  assert.equal(a.id, 101);
  assert.equal(a.rcode, 'NOERROR');
  assert.equal(a.flag_aa, true);
  assert.equal(a.flag_rd, true);
  assert.equal(a.flag_ra, false, 'no upstream, so no recursion');
  assert.deepEqual(a.questions, [{ name: 'HttpBin.Foo.svc.cluster.local', type: 'A', class: 'IN' }]);
  assert.deepEqual(
    a.answers?.map((r) => ({
      name: r.name,
      type: r.type,
      data: r.type === 'A' ? r.data : '',
      ttl: 'ttl' in r ? r.ttl : 0,
    })),
    [{ name: 'HttpBin.Foo.svc.cluster.local', type: 'A', data: '198.19.0.10', ttl: 17 }],
  );
  const aaaa = await udp(server.port, q('httpbin.foo.svc.cluster.local.', 'AAAA'));
  assert.equal(aaaa.rcode, 'NOERROR');
  assert.deepEqual(data(aaaa), ['2001:2::10']);
  const wild = await udp(server.port, q('www.example.com'));
  assert.deepEqual(data(wild), ['198.19.3.1']);
});

test('NXDOMAIN inside the zone, NODATA for a family the name lacks and for other types', async (t) => {
  const { server, registry } = await serve(t);
  const nx = await udp(server.port, q('nope.foo.svc.cluster.local'));
  assert.equal(nx.rcode, 'NXDOMAIN');
  // The zone's SOA, so resolvers cache the miss (RFC 2308), as CoreDNS answers.
  const soa = nx.authorities?.[0] as { type: string; name: string; data: { minimum: number } } | undefined;
  assert.equal(soa?.type, 'SOA');
  assert.equal(soa?.name, 'cluster.local');
  assert.equal(soa?.data.minimum, 30, 'cached for the answer TTL');
  assert.equal(nx.flag_aa, true);
  assert.equal(nx.answers?.length, 0);
  for (const type of ['AAAA', 'TXT'] as const) {
    const nodata = await udp(server.port, q('v4only.foo.svc.cluster.local', type));
    assert.equal(nodata.rcode, 'NOERROR');
    assert.equal(nodata.answers?.length, 0);
  }
  assert.equal(await value(registry, 'ambit_dns_answers_total', { source: 'table', rcode: 'NXDOMAIN' }), 1);
  assert.equal(await value(registry, 'ambit_dns_answers_total', { source: 'table', rcode: 'NOERROR' }), 2);
  assert.equal(
    await value(registry, 'istio_dns_requests_total', {
      request_query_type: 'aaaa',
      request_protocol: 'udp',
    }),
    1,
  );
  assert.equal(await value(registry, 'istio_dns_requests_total', { source_canonical_service: 'unknown' }), 3);
});

test('no upstream: names not in the table are REFUSED at once', async (t) => {
  const { server, registry } = await serve(t);
  const r = await udp(server.port, q('elsewhere.org'));
  assert.equal(r.rcode, 'REFUSED');
  assert.equal(r.flag_ra, false);
  assert.equal(await value(registry, 'ambit_dns_answers_total', { source: 'server', rcode: 'REFUSED' }), 1);
  assert.equal(await value(registry, 'istio_dns_upstream_requests_total'), 0);
});

test('TCP: one query, then several pipelined in one write, answered each with its id', async (t) => {
  const { server, registry } = await serve(t);
  const one = await tcp(server.port, q('httpbin.foo.svc.cluster.local', 'A', 9));
  assert.equal(one.id, 9);
  assert.deepEqual(data(one), ['198.19.0.10']);
  const names = [
    'httpbin.foo.svc.cluster.local',
    'nope.foo.svc.cluster.local',
    'a.example.com',
    'v4only.foo.svc.cluster.local',
  ];
  const raw = Buffer.concat(names.map((n, i) => frame(q(n, 'A', 1000 + i))));
  const { answers } = await tcpRaw(server.port, raw, names.length);
  assert.deepEqual(
    answers.map((a) => [a.id, a.rcode, a.answers?.length]),
    [
      [1000, 'NOERROR', 1],
      [1001, 'NXDOMAIN', 0],
      [1002, 'NOERROR', 1],
      [1003, 'NOERROR', 1],
    ],
  );
  assert.equal(await value(registry, 'istio_dns_requests_total', { request_protocol: 'tcp' }), 5);
});

test('TCP: a message split across writes is put together', async (t) => {
  const { server } = await serve(t);
  const socket = net.connect({ host: '127.0.0.1', port: server.port });
  t.after(() => socket.destroy());
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const message = frame(q('httpbin.foo.svc.cluster.local', 'A', 77));
  socket.write(message.subarray(0, 1));
  await new Promise((r) => setTimeout(r, 20));
  socket.write(message.subarray(1, 9));
  await new Promise((r) => setTimeout(r, 20));
  socket.write(message.subarray(9));
  const chunk = await new Promise<Buffer>((resolve) => socket.once('data', resolve));
  const reply = decode(chunk.subarray(2)) as Reply;
  assert.equal(reply.id, 77);
  assert.equal(reply.answers?.length, 1);
});

test('a large answer over UDP is truncated (TC, no records); the same query over TCP gets all of it', async (t) => {
  const { server, registry } = await serve(t);
  const cut = await udpRaw(server.port, q('many.foo.svc.cluster.local'));
  assert.ok(cut && cut.length <= 512);
  const truncated = decode(cut) as Reply;
  assert.equal(truncated.flag_tc, true);
  assert.equal(truncated.answers?.length, 0);
  assert.equal(truncated.id, 4242);
  const full = await tcp(server.port, q('many.foo.svc.cluster.local'));
  assert.equal(full.flag_tc, false);
  assert.deepEqual(data(full), MANY);
  assert.equal(await value(registry, 'ambit_dns_answers_total', { source: 'table', rcode: 'NOERROR' }), 2);
});

test('EDNS0: a client that takes 1232 bytes over UDP gets an answer a 512-byte client does not', async (t) => {
  const thirty = new NameTable([{ name: 'thirty.test', ipv4: MANY.slice(0, 30), ipv6: [] }]);
  const { server } = await serve(t, { table: () => thirty });
  const classic = await udp(server.port, q('thirty.test'));
  assert.equal(classic.flag_tc, true);
  const edns = await udpRaw(server.port, q('thirty.test', 'A', 5, 4096));
  assert.ok(edns && edns.length > 512 && edns.length <= 1232);
  const reply = decode(edns) as Reply;
  assert.equal(reply.flag_tc, false);
  assert.equal(reply.answers?.length, 30);
  assert.ok(
    reply.additionals?.some((a) => a.type === 'OPT'),
    'an EDNS query gets an OPT record back',
  );
});

test('forwarding: unknown names go to the upstream with a fresh id, and the answer comes back with the client id', async (t) => {
  const up = await serve(t, { table: () => upstreamTable });
  const { server, registry } = await serve(t, { upstreams: [{ host: '127.0.0.1', port: up.server.port }] });
  const r = await udp(server.port, q('Outside.test', 'A', 31337));
  assert.equal(r.id, 31337);
  assert.equal(r.rcode, 'NOERROR');
  assert.equal(r.flag_aa, true, "the upstream's own flags come through");
  assert.equal(
    r.flag_ra,
    true,
    'recursion is available from the forwarding server, whatever the upstream says',
  );
  assert.deepEqual(data(r), ['198.18.9.9']);
  const nx = await udp(server.port, q('gone.outside.test', 'A', 2));
  assert.equal(nx.rcode, 'NXDOMAIN', 'an upstream NXDOMAIN is an answer, passed on');
  const ptr = await udp(server.port, q('9.9.18.198.in-addr.arpa', 'PTR', 3));
  // A PTR is forwarded like any unknown name; the upstream (no upstream of its own) refuses it, and a
  // refusal from the last upstream is a failure: SERVFAIL.
  assert.equal(ptr.rcode, 'SERVFAIL');
  // The front server now has an upstream: recursion is available, for its own answers too.
  const own = await udp(server.port, q('httpbin.foo.svc.cluster.local'));
  assert.equal(own.flag_ra, true);
  const viaTcp = await tcp(server.port, q('outside.test', 'A', 4));
  assert.deepEqual(data(viaTcp), ['198.18.9.9']);
  assert.equal(await value(registry, 'istio_dns_upstream_requests_total'), 4);
  assert.equal(await value(registry, 'istio_dns_upstream_requests_total', { request_query_type: 'ptr' }), 1);
  assert.equal(await value(registry, 'istio_dns_upstream_failures_total', { request_query_type: 'ptr' }), 1);
  assert.equal(
    await value(registry, 'ambit_dns_answers_total', { source: 'upstream', rcode: 'SERVFAIL' }),
    1,
  );
  assert.equal(
    await value(up.registry, 'ambit_dns_answers_total', { source: 'server', rcode: 'REFUSED' }),
    1,
  );
  assert.equal(
    await value(registry, 'ambit_dns_answers_total', { source: 'upstream', rcode: 'NXDOMAIN' }),
    1,
  );
  assert.equal(await value(registry, 'istio_dns_upstream_request_duration_seconds'), 4);
  assert.equal(await value(registry, 'istio_dns_requests_total', { request_protocol: 'tcp' }), 1);
  assert.equal(
    await value(up.registry, 'istio_dns_requests_total', { request_protocol: 'tcp' }),
    1,
    'a TCP client is forwarded over TCP',
  );
});

test('a truncated upstream answer is asked again of the same upstream over TCP', async (t) => {
  const up = await serve(t, { table: () => upstreamTable });
  const { server } = await serve(t, { upstreams: [{ host: '127.0.0.1', port: up.server.port }] });
  const udpReply = await udp(server.port, q('many.outside.test'));
  // The whole answer came to the front server over TCP, and is truncated again to what this client takes.
  assert.equal(udpReply.flag_tc, true);
  assert.equal(await value(up.registry, 'istio_dns_requests_total', { request_protocol: 'udp' }), 1);
  assert.equal(await value(up.registry, 'istio_dns_requests_total', { request_protocol: 'tcp' }), 1);
  const tcpReply = await tcp(server.port, q('many.outside.test'));
  assert.deepEqual(data(tcpReply), MANY);
});

test('an upstream that never answers: SERVFAIL after the timeout; the next upstream is tried first', async (t) => {
  const silent = await silentUpstream(t);
  const { server, registry } = await serve(t, { upstreams: [silent], upstreamTimeoutMs: 200 });
  const r = await udp(server.port, q('elsewhere.org', 'A', 55));
  assert.equal(r.id, 55);
  assert.equal(r.rcode, 'SERVFAIL');
  assert.equal(r.flag_ra, true);
  assert.equal(silent.received(), 1);
  assert.equal(await value(registry, 'istio_dns_upstream_failures_total'), 1);
  assert.equal(
    await value(registry, 'ambit_dns_answers_total', { source: 'upstream', rcode: 'SERVFAIL' }),
    1,
  );

  const up = await serve(t, { table: () => upstreamTable });
  const failover = await serve(t, {
    upstreams: [silent, { host: '127.0.0.1', port: up.server.port }],
    upstreamTimeoutMs: 200,
  });
  const answered = await udp(failover.server.port, q('outside.test', 'A', 56));
  assert.equal(answered.rcode, 'NOERROR');
  assert.deepEqual(data(answered), ['198.18.9.9']);
  assert.equal(silent.received(), 2);
  assert.equal(await value(failover.registry, 'istio_dns_upstream_failures_total'), 0);
});

test('a closed upstream port fails over at once: the connected socket hears the port is unreachable', async (t) => {
  const up = await serve(t, { table: () => upstreamTable });
  const { server, registry } = await serve(t, {
    upstreams: [
      { host: '127.0.0.1', port: await freePort() },
      { host: '127.0.0.1', port: up.server.port },
    ],
    // Longer than the client waits: only the ICMP error can move the query on in time.
    upstreamTimeoutMs: 600_000,
  });
  const r = await udp(server.port, q('outside.test'));
  assert.equal(r.rcode, 'NOERROR');
  assert.deepEqual(data(r), ['198.18.9.9']);
  assert.equal(await value(registry, 'istio_dns_upstream_failures_total'), 0);
});

test('bad input never stops the server: garbage, responses, bad names and opcodes, then a good query', async (t) => {
  const { server, registry } = await serve(t);
  const port = server.port;
  const silentlyDropped = [
    Buffer.from([1, 2, 3]),
    Buffer.alloc(0),
    encode({ type: 'response', id: 1, questions: [{ type: 'A', name: 'x.test' }] }),
  ];
  for (const bytes of silentlyDropped) assert.equal(await udpRaw(port, bytes, '127.0.0.1', 200), undefined);

  const garbage = Buffer.concat([q('x.test', 'A', 61).subarray(0, 12), Buffer.from('not a question at all')]);
  const formerr = decode((await udpRaw(port, garbage)) ?? Buffer.alloc(0)) as Reply;
  assert.equal(formerr.id, 61);
  assert.equal(formerr.rcode, 'FORMERR');

  const twoQuestions = encode({
    type: 'query',
    id: 62,
    questions: [
      { type: 'A', name: 'a.test' },
      { type: 'A', name: 'b.test' },
    ],
  });
  assert.equal((await udp(port, twoQuestions)).rcode, 'FORMERR');
  const badName = q('bad name.test', 'A', 63);
  assert.equal((await udp(port, badName)).rcode, 'FORMERR');
  const notify = q('x.test', 'A', 64);
  notify[2] = (notify[2] ?? 0) | (4 << 3);
  assert.equal((await udp(port, notify)).rcode, 'NOTIMP');
  const noise = dgram.createSocket('udp4');
  t.after(() => noise.close());
  for (let i = 0; i < 200; i++) {
    const random = Buffer.alloc(12 + (i % 60));
    for (let j = 0; j < random.length; j++) random[j] = (i * 31 + j * 17) & 0xff;
    random[2] = (random[2] ?? 0) & 0x7f; // a query, so it is answered or dropped but not ignored as a response
    await new Promise<void>((r) => noise.send(random, port, '127.0.0.1', () => r()));
  }

  const good = await udp(port, q('httpbin.foo.svc.cluster.local', 'A', 65));
  assert.equal(good.rcode, 'NOERROR');
  assert.equal(good.answers?.length, 1);
  assert.equal(await value(registry, 'ambit_dns_dropped_total', { reason: 'short' }), 2);
  assert.equal(await value(registry, 'ambit_dns_dropped_total', { reason: 'response' }), 1);
  assert.ok((await value(registry, 'ambit_dns_answers_total', { source: 'server', rcode: 'FORMERR' })) >= 3);
  assert.ok((await value(registry, 'istio_dns_requests_total', { request_query_type: 'unknown' })) >= 7);
});

test('TCP: an oversize length gets FORMERR with the id and the connection closed; short messages are skipped', async (t) => {
  const { server, registry } = await serve(t);
  const oversize = Buffer.concat([Buffer.from([0xff, 0xff]), q('x.test', 'A', 71)]);
  const { answers, closed } = await tcpRaw(server.port, oversize, 0);
  assert.equal(closed, true);
  assert.deepEqual(
    answers.map((a) => [a.id, a.rcode]),
    [[71, 'FORMERR']],
  );
  assert.equal(await value(registry, 'ambit_dns_dropped_total', { reason: 'tcp_length' }), 1);

  const shortThenGood = Buffer.concat([
    frame(Buffer.from([1, 2, 3])),
    frame(Buffer.alloc(0)),
    frame(q('httpbin.foo.svc.cluster.local', 'A', 72)),
  ]);
  const after = await tcpRaw(server.port, shortThenGood, 1);
  assert.deepEqual(
    after.answers.map((a) => [a.id, a.rcode]),
    [[72, 'NOERROR']],
  );
  assert.equal(await value(registry, 'ambit_dns_dropped_total', { reason: 'short' }), 2);
});

test('TCP: a client that half-closes after its query still gets the forwarded answer', async (t) => {
  const up = await serve(t, { table: () => upstreamTable });
  const { server } = await serve(t, { upstreams: [{ host: '127.0.0.1', port: up.server.port }] });
  const { answers } = await tcpRaw(server.port, frame(q('outside.test', 'A', 81)), 1, true);
  assert.deepEqual(
    answers.map((a) => [a.id, ...data(a)]),
    [[81, '198.18.9.9']],
  );
});

test('bounds: forwarding past maxInFlight is SERVFAIL at once; TCP past maxTcpConnections is closed', async (t) => {
  const silent = await silentUpstream(t);
  const { server, registry } = await serve(t, {
    upstreams: [silent],
    upstreamTimeoutMs: 300,
    limits: { maxInFlight: 1, maxTcpConnections: 1, tcpIdleMs: 60_000 },
  });
  const [first, second] = await Promise.all([
    udp(server.port, q('one.elsewhere.org', 'A', 91)),
    new Promise((r) => setTimeout(r, 50)).then(() => udp(server.port, q('two.elsewhere.org', 'A', 92))),
  ]);
  assert.deepEqual([first.rcode, second.rcode], ['SERVFAIL', 'SERVFAIL']);
  assert.equal(silent.received(), 1, 'only one query went upstream');
  assert.equal(await value(registry, 'ambit_dns_dropped_total', { reason: 'overload' }), 1);

  const held = net.connect({ host: '127.0.0.1', port: server.port });
  t.after(() => held.destroy());
  await new Promise<void>((r) => held.once('connect', () => r()));
  const refused = await tcpRaw(server.port, frame(q('httpbin.foo.svc.cluster.local')), 1).catch(
    (err: Error) => err,
  );
  assert.ok(refused instanceof Error || refused.closed);
  assert.equal(await value(registry, 'ambit_dns_dropped_total', { reason: 'tcp_limit' }), 1);
});

test('TCP: an idle connection is closed by the server', async (t) => {
  const { server } = await serve(t, { limits: { tcpIdleMs: 100 } });
  const socket = net.connect({ host: '127.0.0.1', port: server.port });
  t.after(() => socket.destroy());
  socket.resume();
  await new Promise<void>((resolve) => socket.once('end', () => resolve()));
});

test('TCP: a client that keeps its side open and silent is cut, and its slot is free again', async (t) => {
  const { server } = await serve(t, { limits: { tcpIdleMs: 100, maxTcpConnections: 1 } });
  // allowHalfOpen: the client never answers the server's FIN, as a stuck or hostile client would not.
  const socket = net.connect({ host: '127.0.0.1', port: server.port, allowHalfOpen: true });
  t.after(() => socket.destroy());
  socket.resume();
  await new Promise<void>((resolve) => socket.once('end', () => resolve()));
  // The server lets go of its end one idle time after its FIN (the client never sees it: its FIN was
  // sent); until then the one slot is taken and a new connection is closed at once.
  let answered: Reply | undefined;
  for (let i = 0; i < 50 && !answered; i++) {
    answered = await tcp(server.port, q('httpbin.foo.svc.cluster.local')).catch(() => undefined);
    if (!answered) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(answered?.rcode, 'NOERROR', 'the slot of the silent client is free again');
});

test('an upstream that refuses with the header alone is an answer, not a wait: the client gets SERVFAIL', async (t) => {
  const refusing = dgram.createSocket('udp4');
  refusing.on('message', (query, from) => {
    // The id, QR and REFUSED (rcode 5), no question: as many servers refuse what they will not parse.
    const reply = Buffer.alloc(12);
    query.copy(reply, 0, 0, 2);
    reply.writeUInt16BE(0x8005, 2);
    refusing.send(reply, from.port, from.address);
  });
  await new Promise<void>((r) => refusing.bind(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => refusing.close(() => r())));
  const { server } = await serve(t, {
    upstreams: [{ host: '127.0.0.1', port: refusing.address().port }],
    upstreamTimeoutMs: 600_000, // were the reply ignored, the query would wait past the test's timeout
  });
  const r = await udp(server.port, q('refused.elsewhere.org'));
  assert.equal(r.rcode, 'SERVFAIL');
});

test('close() cancels queries being forwarded and ends TCP connections', async (t) => {
  const silent = await silentUpstream(t);
  const registry = new Registry();
  const server = new DnsServer({
    host: '127.0.0.1',
    port: 0,
    table: () => table,
    upstreams: [silent],
    upstreamTimeoutMs: 600_000,
    metrics: new DnsMetrics(registry),
  });
  await server.start();
  t.after(() => server.close());
  const socket = net.connect({ host: '127.0.0.1', port: server.port });
  t.after(() => socket.destroy());
  const ended = new Promise<void>((r) => socket.once('close', () => r()));
  socket.write(frame(q('slow.elsewhere.org')));
  socket.resume();
  await udpRaw(server.port, q('slow2.elsewhere.org'), '127.0.0.1', 100);
  assert.equal(silent.received(), 2);
  await server.close();
  await ended;
  assert.equal(await value(registry, 'ambit_dns_dropped_total', { reason: 'closed' }), 2);
});

test('a table that throws gets SERVFAIL, and the server goes on', async (t) => {
  let broken = true;
  const { server, registry } = await serve(t, {
    table: () => {
      if (broken) throw new Error('no table yet');
      return table;
    },
  });
  assert.equal((await udp(server.port, q('httpbin.foo.svc.cluster.local'))).rcode, 'SERVFAIL');
  broken = false;
  assert.equal((await udp(server.port, q('httpbin.foo.svc.cluster.local'))).rcode, 'NOERROR');
  assert.equal(await value(registry, 'ambit_dns_answers_total', { source: 'server', rcode: 'SERVFAIL' }), 1);
});

test('IPv6 loopback: UDP and TCP on [::1]', async (t) => {
  const { server } = await serve(t, { host: '::1' });
  const r = await udp(server.port, q('httpbin.foo.svc.cluster.local', 'AAAA'), '::1');
  assert.deepEqual(data(r), ['2001:2::10']);
  const socket = net.connect({ host: '::1', port: server.port });
  t.after(() => socket.destroy());
  socket.write(frame(q('httpbin.foo.svc.cluster.local', 'A', 3)));
  const chunk = await new Promise<Buffer>((resolve) => socket.once('data', resolve));
  assert.deepEqual(data(decode(chunk.subarray(2)) as Reply), ['198.19.0.10']);
});

test('a port in use is a clear error naming host:port', async (t) => {
  const { server } = await serve(t);
  const second = new DnsServer({ host: '127.0.0.1', port: server.port, table: () => table, upstreams: [] });
  t.after(() => second.close());
  await assert.rejects(
    second.start(),
    (err) =>
      hasCode(err, DNS_ERRORS.LISTEN) &&
      err.message.includes(`127.0.0.1:${server.port}`) &&
      err.message.includes('EADDRINUSE'),
  );
});

test('options out of range are refused when the server is made', () => {
  const base = { host: '127.0.0.1', port: 0, table: () => table, upstreams: [] };
  for (const bad of [
    { port: 70_000 },
    { upstreamTimeoutMs: 0 },
    { ttl: -1 },
    { limits: { maxInFlight: 0 } },
    { limits: { tcpIdleMs: Number.NaN } },
  ]) {
    assert.throws(
      () => new DnsServer({ ...base, ...bad }),
      (err) => hasCode(err, DNS_ERRORS.BAD_OPTIONS),
    );
  }
});
