// Anti-spoofing and the node's own addresses, end-to-end in the lab (root), issue 9 items 5 and 6:
// a pod that gives itself another pod's address (on its node or on another), or an underlay host that
// claims a pod's address, gets nothing accepted in that pod's name; spoofed UDP is not delivered; a
// meshed pod cannot make its node's ztunnel connect to the node's pod gateway address.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, type TestContext, test } from 'node:test';
import { type Lab, nodeGateway } from '../../src/lab/index.ts';
import { eventually, isRoot, skipUnlessRoot } from '../helpers/lab.ts';
import { enrolled, labMesh, labOk, namespace } from '../helpers/mesh-lab.ts';

/** Logs every TCP connection (8080) and UDP datagram (9999) it receives, with the peer's address. */
const SERVER = `
import net from 'node:net';
import dgram from 'node:dgram';
net.createServer((s) => { console.log('tcp ' + s.remoteAddress); s.end('hello'); }).listen(8080);
dgram.createSocket('udp4').on('message', (m, r) => console.log('udp ' + r.address + ' ' + m)).bind(9999);
`;

/** Sends from a given source address: `tcp SRC SPORT HOST PORT` or `udp SRC HOST PORT TEXT`. */
const SENDER = `
import net from 'node:net';
import dgram from 'node:dgram';
const [proto, src, ...rest] = process.argv.slice(1);
if (proto === 'tcp') {
  const [sport, host, port] = rest;
  const s = net.connect({ host, port: Number(port), localAddress: src, localPort: Number(sport), timeout: 3000 });
  s.on('connect', () => { console.log('connected'); s.destroy(); });
  s.on('timeout', () => { console.log('timeout'); s.destroy(); });
  s.on('error', (e) => console.log('error ' + e.code));
} else {
  const [host, port, text] = rest;
  const u = dgram.createSocket('udp4');
  u.bind({ address: src }, () => {
    let n = 0;
    const send = () => u.send(text, Number(port), host, () => (++n < 3 ? setTimeout(send, 100) : u.close()));
    send();
  });
}
`;

/** The spoofed connections use this source port, so the victim can count SYN-ACKs sent to it. */
const SPOOF_PORT = 40404;
const SYNACK_COUNTER = `table ip spooftest {
  counter synack {
  }
  chain prerouting {
    type filter hook prerouting priority -300; policy accept;
    tcp dport ${SPOOF_PORT} tcp flags & (syn | ack) == syn | ack counter name "synack"
  }
}
`;

// The control plane refuses WorkloadEntries at the mesh's infrastructure addresses (`ambit up` reserves
// them; test/e2e/tenant.test.ts checks that). Reserving only an unused address here lets such entries in,
// so that the ztunnel's own defence behind that check is tested too.
const upMesh = (t: TestContext) =>
  labMesh(t, 'spoof', { controlArgs: ['--reserved-cidrs', '198.19.255.254/32'] });

async function counter(lab: Lab, where: string, family: string, table: string, name: string) {
  const out = await labOk(lab, where, ['nft', '-j', 'list', 'counter', family, table, name]);
  const parsed = JSON.parse(out) as { nftables: Array<{ counter?: { packets: number } }> };
  return parsed.nftables.find((x) => x.counter)?.counter?.packets ?? Number.NaN;
}

/** The ztunnel's access lines (pino JSON) from its log file. */
async function accessLines(lab: Lab, node: string) {
  const status = (await lab.status())!;
  const z = status.nodes.find((n) => n.name === node)!.processes.find((p) => p.command.includes('ztunnel'))!;
  return (await readFile(z.log, 'utf8'))
    .split('\n')
    .filter((l) => l.includes('"access"'))
    .map((l) => JSON.parse(l) as { src: { addr: string }; dst: { addr: string }; flags: string });
}

describe('anti-spoofing and the node own addresses', {
  skip: !isRoot && 'NOT ROOT: spoofing end-to-end tests need root (CI runs them as root)',
}, () => {
  test('spoofed sources are dropped at the node; the pod gateway address is the node', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { lab, admin } = await upMesh(t);
    const pod = (name: string, node: string, namespace = 'shop') =>
      lab.addPod({ name, node, namespace, serviceAccount: name, labels: { app: name } });
    const client = await pod('client', 'node-1');
    const victim = await pod('victim', 'node-1');
    const thief = await pod('thief', 'node-1');
    const rogue = await pod('rogue', 'node-1', 'legacy');
    const server = await pod('server', 'node-2');
    const target = await pod('target', 'node-2');
    await admin.call('POST', '/ambit/v1/apply', {
      objects: [namespace('shop', true), namespace('legacy', false)],
    });
    const serverProc = await lab.run('server', [process.execPath, '--input-type=module', '-e', SERVER]);
    // A plain service on node-1 itself, which no pod should reach through the ztunnel.
    await lab.run('node-1', [
      process.execPath,
      '-e',
      "require('http').createServer((q,s)=>s.end('node-secret')).listen(7070)",
    ]);
    for (const p of [client, victim, thief]) await enrolled(lab, 'node-1', [p.address]);
    for (const p of [server, target]) await enrolled(lab, 'node-2', [p.address]);
    const send = (from: string, ...args: string[]) =>
      labOk(lab, from, [process.execPath, '--input-type=module', '-e', SENDER, ...args]);

    // Normal traffic still flows: pod to pod across nodes through the mesh, from its own address.
    const hello = await eventually(async () => {
      const out = await send('client', 'tcp', client.address, '0', server.address, '8080');
      return out.includes('connected') ? out : undefined;
    }, 20_000);
    assert.match(hello, /connected/);
    for (const p of ['victim', 'target']) await labOk(lab, p, ['nft', '-f', '-'], SYNACK_COUNTER);

    // Item 6: the pod gateway address is the node's own: no ztunnel port and no node service on it.
    const gateway = nodeGateway(1);
    const metrics = await lab.exec('client', [
      'curl',
      '-sS',
      '--max-time',
      '3',
      `http://${gateway}:15020/metrics`,
    ]);
    assert.ok(!metrics.stdout.includes('istio_'), 'a meshed pod read its node ztunnel metrics');
    const secret = await lab.exec('client', ['curl', '-sS', '--max-time', '3', `http://${gateway}:7070/`]);
    assert.doesNotMatch(secret.stdout, /node-secret/, 'a meshed pod reached a service of its node');
    for (const port of [15006, 15008, 15001]) {
      await lab.exec('client', ['curl', '-sS', '--max-time', '3', `http://${gateway}:${port}/`]);
    }
    const ports = [15020, 7070, 15006, 15008, 15001];
    const tried = (port: number, lines: Awaited<ReturnType<typeof accessLines>>) =>
      lines.filter((l) => l.dst.addr === `${gateway}:${port}`);
    // Each attempt went through the ztunnel (an access line) and was refused there (NR).
    const lines = await eventually(async () => {
      const all = await accessLines(lab, 'node-1');
      return ports.every((port) => tried(port, all).length > 0) ? all : undefined;
    });
    for (const port of ports) {
      for (const l of tried(port, lines))
        assert.equal(l.flags, 'NR', `${gateway}:${port} was not refused: ${JSON.stringify(l)}`);
    }
    // Item 5, on one node: a meshed pod that gives itself another meshed pod's address.
    await labOk(lab, 'thief', ['ip', 'addr', 'add', `${victim.address}/32`, 'dev', 'eth0']);
    const stolen = await send('thief', 'tcp', victim.address, String(SPOOF_PORT), server.address, '8080');
    assert.doesNotMatch(stolen, /connected/);
    // Across nodes: a pod outside the mesh that claims a meshed pod of node-2.
    await labOk(lab, 'rogue', ['ip', 'addr', 'add', `${target.address}/32`, 'dev', 'eth0']);
    const far = await send('rogue', 'tcp', target.address, String(SPOOF_PORT), server.address, '8080');
    assert.doesNotMatch(far, /connected/);
    // Spoofed UDP is not delivered; the rogue's own datagrams are.
    await labOk(lab, 'rogue', ['ip', 'addr', 'add', `${victim.address}/32`, 'dev', 'eth0']);
    await send('rogue', 'udp', victim.address, server.address, '9999', 'spoofed');
    await send('rogue', 'udp', rogue.address, server.address, '9999', 'legit');
    // From the underlay: a host on the bridge that claims node-2's pod, towards node-2 and its pods.
    await labOk(lab, 'control', ['ip', 'addr', 'add', `${target.address}/32`, 'dev', 'br0']);
    for (const dst of [server.address, '198.18.0.2']) {
      const under = await send('control', 'tcp', target.address, String(SPOOF_PORT), dst, '8080');
      assert.doesNotMatch(under, /connected/);
    }

    // Capture's own check, without the lab's: with node-2's underlay rp_filter off, a packet that
    // claims node-2's pod is still not taken as that pod's outbound (the 15001 listener would answer it).
    await labOk(lab, 'node-2', ['sysctl', '-q', '-w', 'net.ipv4.conf.eth0.rp_filter=0']);
    const bypass = await send('control', 'tcp', target.address, String(SPOOF_PORT), '198.18.0.2', '8080');
    assert.doesNotMatch(bypass, /connected/);

    // Nothing was answered in the victims' names: no node accepted their SYNs.
    assert.equal(await counter(lab, 'victim', 'ip', 'spooftest', 'synack'), 0, 'SYN-ACKs reached the victim');
    assert.equal(await counter(lab, 'target', 'ip', 'spooftest', 'synack'), 0, 'SYN-ACKs reached the target');
    for (const node of ['node-1', 'node-2']) {
      const taken = (await accessLines(lab, node)).filter((l) => l.src.addr.endsWith(`:${SPOOF_PORT}`));
      assert.deepEqual(taken, [], `the ztunnel on ${node} accepted a spoofed connection`);
    }
    const serverLog = await eventually(async () => {
      const text = await readFile(serverProc.log, 'utf8');
      return text.includes('udp') ? text : undefined;
    });
    assert.match(serverLog, new RegExp(`udp ${rogue.address.replaceAll('.', '\\.')} legit`));
    assert.doesNotMatch(serverLog, /spoofed/, 'a spoofed datagram was delivered');
    for (const stolenAddress of [victim.address, target.address]) {
      const arrived = serverLog.split('\n').filter((l) => l.startsWith('tcp ') && l.endsWith(stolenAddress));
      assert.deepEqual(arrived, [], `a connection arrived as ${stolenAddress}`);
    }
    // The drops happened at node-1, on the pods' links.
    assert.ok((await counter(lab, 'node-1', 'inet', 'lab', 'spoofed')) > 0, 'node-1 dropped nothing');

    // Item 6 through the registry: a tenant's WorkloadEntries at node-1's own addresses, behind a Service
    // of its own outside the mesh or in the mesh themselves, do not make the ztunnel relay to the node.
    const entry = (name: string, namespace: string, address: string) => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: { name, namespace },
      spec: { address, labels: { app: name }, node: 'node-1', serviceAccount: name },
    });
    const service = (name: string, clusterIP: string, targetPort: number) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'legacy' },
      spec: { clusterIP, selector: { app: name }, ports: [{ port: 80, targetPort }] },
    });
    await admin.call('POST', '/ambit/v1/apply', {
      objects: [
        entry('at-gateway', 'legacy', gateway),
        entry('at-loopback', 'legacy', '127.0.0.1'),
        service('at-gateway', '198.19.9.1', 7070),
        service('at-loopback', '198.19.9.2', 15020),
        entry('at-node', 'shop', '198.18.0.1'),
      ],
    });
    const targets = ['198.19.9.1:80', '198.19.9.2:80', '198.18.0.1:7070'];
    await eventually(async () => {
      for (const to of targets) {
        const r = await lab.exec('client', ['curl', '-sS', '--max-time', '3', `http://${to}/metrics`]);
        assert.doesNotMatch(
          r.stdout,
          /node-secret|istio_/,
          `a meshed pod reached node-1 itself through ${to}`,
        );
      }
      // Until each target is known as the tenant's (refused, or an HBONE the node refused), try again.
      const all = await accessLines(lab, 'node-1');
      const known = (to: string) =>
        all.some(
          (l) =>
            l.dst.addr === to &&
            (l.flags === 'CONNECT' || /for \S+ is local/.test(String((l as { error?: string }).error))),
        );
      return targets.every(known) ? true : undefined;
    }, 30_000);
    const captureSet = await labOk(lab, 'node-1', ['nft', 'list', 'set', 'ip', 'ambit', 'enrolled']);
    assert.doesNotMatch(captureSet, /198\.18\.0\.1\b/, "node-1 captures its own address as a workload's");
  });
});
