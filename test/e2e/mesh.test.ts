// The L4 mesh end-to-end in the lab (root): `ambit up` with two nodes, pods captured by nftables,
// real clients (curl, redis-benchmark), tcpdump on the underlay, policy, metrics, and un-enrollment.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { adminGet } from '../../src/cli/ztunnel.ts';
import type { Lab } from '../../src/lab/index.ts';
import type { MemoryReport } from '../../src/proxy/index.ts';
import { CURL_RESET, eventually, isRoot, skipUnlessRoot } from '../helpers/lab.ts';
import { CONCURRENT_ECHO, labMesh } from '../helpers/mesh-lab.ts';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Receives one stream on 9002 and answers its length and SHA-256 when the sender half-closes. */
const RECEIVER = `
import net from 'node:net';
import { createHash } from 'node:crypto';
net.createServer({ allowHalfOpen: true }, (s) => {
  const h = createHash('sha256');
  let n = 0;
  s.on('data', (d) => { h.update(d); n += d.length; });
  s.on('end', () => s.end(JSON.stringify({ bytes: n, sha256: h.digest('hex') })));
}).listen(9002);
`;

/** Sends N random bytes with backpressure, half-closes, prints what it sent and what arrived. */
const SENDER = `
import net from 'node:net';
import { createHash, randomFillSync } from 'node:crypto';
const [host, port, total] = process.argv.slice(1);
const h = createHash('sha256');
const chunk = Buffer.alloc(1 << 20);
let left = Number(total);
const s = net.connect({ host, port: Number(port), allowHalfOpen: true });
let reply = '';
s.on('data', (d) => { reply += d; });
s.on('end', () => { console.log(JSON.stringify({ sent: { bytes: Number(total), sha256: h.digest('hex') }, received: JSON.parse(reply) })); });
const pump = () => {
  while (left > 0) {
    randomFillSync(chunk);
    const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
    h.update(piece);
    left -= piece.length;
    if (!s.write(Buffer.from(piece))) return s.once('drain', pump);
  }
  s.end();
};
s.on('connect', pump);
`;

const upMesh = (t: TestContext) => labMesh(t, 'mesh');

const ns = (name: string, ambient: boolean) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels: ambient ? { 'istio.io/dataplane-mode': 'ambient' } : {} },
});

async function curl(lab: Lab, from: string, url: string, extra: string[] = []) {
  return lab.exec(from, ['curl', '-sS', '--max-time', '5', ...extra, url]);
}

async function serving(lab: Lab, from: string, url: string) {
  await eventually(
    async () => ((await curl(lab, from, url)).code === 0 ? true : undefined),
    20_000,
    `${url} from ${from}`,
  );
}

/** Waits until the node's ztunnel has captured (or released) the pod. */
async function captured(lab: Lab, node: string, address: string, want: boolean) {
  await eventually(
    async () => {
      const r = await lab.exec(node, ['nft', 'list', 'set', 'ip', 'ambit', 'enrolled']);
      return r.stdout.includes(address) === want ? true : undefined;
    },
    20_000,
    `${address} ${want ? '' : 'un'}enrolled on ${node}`,
  );
}

async function metrics(lab: Lab, node: string): Promise<string> {
  return (await lab.exec(node, ['curl', '-s', 'http://127.0.0.1:15020/metrics'])).stdout;
}

describe('L4 mesh end-to-end', {
  skip: !isRoot && 'NOT ROOT: mesh end-to-end tests need root (CI runs them as root)',
}, () => {
  test('mTLS on the wire, policy, metrics, real clients, and un-enrollment', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { lab, admin, home } = await upMesh(t);
    // The ztunnels run from the build that `npm test` made first (not from the sources), and their admin
    // socket says where their memory is.
    const memory = (await adminGet(join(home, 'nodes', 'node-1', 'admin.sock'), '/memory')) as MemoryReport;
    assert.equal(memory.build, 'bundle', 'the ztunnel runs from dist/daemons');
    assert.ok(memory.rss > 0 && memory.heap.used > 0);
    const pods = {
      client: await lab.addPod({
        name: 'client',
        node: 'node-1',
        namespace: 'shop',
        serviceAccount: 'client',
        labels: { app: 'client' },
      }),
      other: await lab.addPod({
        name: 'other',
        node: 'node-1',
        namespace: 'shop',
        serviceAccount: 'other',
        labels: { app: 'other' },
      }),
      web: await lab.addPod({
        name: 'web',
        node: 'node-2',
        namespace: 'shop',
        serviceAccount: 'web',
        labels: { app: 'web', version: 'v1' },
      }),
      near: await lab.addPod({
        name: 'near',
        node: 'node-1',
        namespace: 'shop',
        serviceAccount: 'web',
        labels: { app: 'near' },
      }),
      outsider: await lab.addPod({
        name: 'outsider',
        node: 'node-1',
        namespace: 'legacy',
        serviceAccount: 'legacy',
      }),
    };
    await admin.call('POST', '/ambit/v1/apply', { objects: [ns('shop', true), ns('legacy', false)] });
    await lab.run('web', ['ambit', 'sample', 'echo', '--port', '8080']);
    await lab.run('web', [
      'redis-server',
      '--port',
      '6379',
      '--protected-mode',
      'no',
      '--save',
      '',
      '--appendonly',
      'no',
    ]);
    await lab.run('web', ['ambit', 'sample', 'tcp-echo', '--port', '9000']);
    await lab.run('web', [process.execPath, '--input-type=module', '-e', RECEIVER]);
    await lab.run('near', ['ambit', 'sample', 'echo', '--port', '8080']);
    await captured(lab, 'node-1', pods.client.address, true);
    await captured(lab, 'node-2', pods.web.address, true);
    const web = `http://${pods.web.address}:8080`;
    await serving(lab, 'client', `${web}/`);
    await serving(lab, 'client', `http://${pods.near.address}:8080/`);

    // Across nodes and on one node, through capture.
    const cross = JSON.parse((await curl(lab, 'client', `${web}/cross`)).stdout);
    assert.equal(cross.pod, 'web');
    const near = JSON.parse((await curl(lab, 'client', `http://${pods.near.address}:8080/near`)).stdout);
    assert.equal(near.pod, 'near');

    // The underlay carries only TLS: a known payload never appears in clear on the bridge's ports
    // (capturing on br0 itself would miss frames the bridge forwards between nodes).
    const pcap = join(lab.home, 'underlay.pcap');
    const dump = await lab.run('control', ['tcpdump', '-i', 'any', '-U', '-s', '0', '-w', pcap, 'tcp']);
    const marker = `AMBIT-SECRET-${randomBytes(8).toString('hex')}`;
    // Capture on `any` goes live a moment after tcpdump says it listens: send until packets land.
    await eventually(
      async () => {
        const seen = await curl(lab, 'client', `${web}/${marker}`, ['-H', `x-secret: ${marker}`]);
        assert.match(seen.stdout, new RegExp(marker), 'the request went through');
        return (await readFile(pcap).catch(() => Buffer.alloc(0))).length > 4000 ? true : undefined;
      },
      20_000,
      'tcpdump to capture the requests',
    );
    process.kill(dump.pid, 'SIGINT');
    await eventually(async () => (isAlive(dump.pid) ? undefined : true), 10_000, 'tcpdump to stop');
    const bytes = await readFile(pcap);
    assert.equal(bytes.includes(marker), false, 'the payload must not cross the underlay in clear');
    const hbone = await lab.exec('control', ['tcpdump', '-nn', '-r', pcap, 'tcp port 15008']);
    assert.match(hbone.stdout, /\.15008/, 'the traffic crossed as HBONE on 15008');

    // PERMISSIVE (the default) admits plaintext from a pod outside the mesh; STRICT refuses it.
    assert.equal((await curl(lab, 'outsider', `${web}/plain`)).code, 0);
    await admin.call('POST', '/ambit/v1/apply', {
      objects: [
        {
          apiVersion: 'security.istio.io/v1',
          kind: 'PeerAuthentication',
          metadata: { name: 'default', namespace: 'shop' },
          spec: { mtls: { mode: 'STRICT' } },
        },
      ],
    });
    await eventually(
      async () => ((await curl(lab, 'outsider', `${web}/plain`)).code !== 0 ? true : undefined),
      10_000,
      'STRICT to refuse plaintext',
    );
    // Refused as Istio's ztunnel refuses: the connection is reset (see CURL_RESET for how curl says so).
    const strict = await curl(lab, 'outsider', `${web}/plain`);
    assert.ok(
      CURL_RESET.includes(strict.code),
      `plaintext under STRICT is reset: curl ${strict.code} ${strict.stderr}`,
    );
    assert.equal(
      (await curl(lab, 'client', `${web}/mtls`)).code,
      0,
      'mesh clients still get through under STRICT',
    );

    // ALLOW by principal (only client may call web) and DENY by port (no one reaches 6379).
    await admin.call('POST', '/ambit/v1/apply', {
      objects: [
        {
          apiVersion: 'security.istio.io/v1',
          kind: 'AuthorizationPolicy',
          metadata: { name: 'web-from-client', namespace: 'shop' },
          spec: {
            selector: { matchLabels: { app: 'web' } },
            action: 'ALLOW',
            rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/client'] } }] }],
          },
        },
      ],
    });
    await eventually(
      async () => ((await curl(lab, 'other', `${web}/x`)).code !== 0 ? true : undefined),
      10_000,
      'ALLOW to refuse other',
    );
    const denied = await curl(lab, 'other', `${web}/x`);
    assert.ok(
      CURL_RESET.includes(denied.code),
      `a denied connection is reset: curl ${denied.code} ${denied.stderr}`,
    );
    assert.equal((await curl(lab, 'client', `${web}/x`)).code, 0);

    // Real clients through the mesh: redis-benchmark, a large transfer, many concurrent connections.
    const bench = await lab.exec(
      'client',
      [
        'redis-benchmark',
        '-h',
        pods.web.address,
        '-p',
        '6379',
        '-t',
        'set,get',
        '-n',
        '20000',
        '-c',
        '20',
        '-q',
      ],
      { timeoutMs: 120_000 },
    );
    assert.equal(bench.code, 0, bench.stderr);
    assert.match(bench.stdout, /SET: [\d.]+ requests per second/);
    assert.match(bench.stdout, /GET: [\d.]+ requests per second/);
    assert.doesNotMatch(bench.stdout + bench.stderr, /error/i);

    const transfer = await lab.exec(
      'client',
      [process.execPath, '--input-type=module', '-e', SENDER, pods.web.address, '9002', String(1024 ** 3)],
      {
        timeoutMs: 300_000,
      },
    );
    assert.equal(transfer.code, 0, transfer.stderr);
    const { sent, received } = JSON.parse(transfer.stdout);
    assert.deepEqual(received, sent, '1 GiB arrived whole, with the same checksum');

    const concurrent = await lab.exec(
      'client',
      [process.execPath, '--input-type=module', '-e', CONCURRENT_ECHO, pods.web.address, '9000', '1000'],
      {
        timeoutMs: 120_000,
      },
    );
    assert.equal(concurrent.code, 0, concurrent.stderr);
    assert.deepEqual(JSON.parse(concurrent.stdout), { open: 1000, echoed: 1000 });

    // Metrics on the destination ztunnel show the mesh traffic and the denials.
    const m = await metrics(lab, 'node-2');
    assert.match(
      m,
      /istio_tcp_connections_opened_total\{reporter="destination"[^}]*source_principal="spiffe:\/\/cluster.local\/ns\/shop\/sa\/client"[^}]*destination_workload="web"[^}]*connection_security_policy="mutual_tls"\}/,
    );
    assert.match(
      m,
      /istio_tcp_connections_opened_total\{[^}]*source_principal="spiffe:\/\/cluster.local\/ns\/shop\/sa\/other"[^}]*response_flags="DENY"/,
    );

    // A ztunnel restart does not black-hole pods: while it is down, captured connections are refused
    // at once (not left hanging), and they work again as soon as it is ready.
    const z1 = (await lab.status())!.nodes[0]!.processes.find(
      (p) => p.running && p.command.includes('ztunnel'),
    )!;
    process.kill(z1.pid, 'SIGTERM');
    await eventually(async () => (isAlive(z1.pid) ? undefined : true), 15_000, 'the ztunnel to stop');
    const whileDown = await curl(lab, 'client', `${web}/down`);
    assert.notEqual(whileDown.code, 0);
    assert.notEqual(whileDown.code, 28, 'refused, not timed out');
    const restarted = await lab.run('node-1', z1.command); // the node credential is saved: no token needed again
    await eventually(
      async () =>
        (await lab.exec('node-1', ['curl', '-sf', 'http://127.0.0.1:15021/healthz/ready'])).code === 0
          ? true
          : undefined,
      20_000,
      'the ztunnel to be ready again',
    );
    const after = await curl(lab, 'client', `${web}/after-restart`);
    assert.equal(
      after.code,
      0,
      `${after.stderr}\n${(await readFile(restarted.log, 'utf8')).split('\n').slice(-12).join('\n')}`,
    );

    // Un-labelling the namespace returns traffic to plain TCP.
    await admin.call('POST', '/ambit/v1/apply', { objects: [ns('shop', false)] });
    for (const pod of [pods.client, pods.other, pods.near]) await captured(lab, 'node-1', pod.address, false);
    await captured(lab, 'node-2', pods.web.address, false);
    const plain = JSON.parse((await curl(lab, 'other', `${web}/plain-again`)).stdout);
    assert.equal(plain.request.peer.address, pods.other.address);
  });
});
