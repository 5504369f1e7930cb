// Sidecar mode's capture in a real kernel: a "pod" namespace with the sidecar's table installed by
// SidecarCapture from inside it (as the sidecar does), on a veth to a "peer" namespace. The pod's own
// TCP lands on the outbound listener (15001) unless it comes from group 1337 (the sidecar) or stays
// on loopback; TCP arriving at the pod lands on the inbound listener (15006) unless it is to the
// sidecar's HBONE port (15008) or an excluded port (15021). Only 198.18.250.0/30 and loopback are used,
// inside namespaces the test made and deletes.

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

const isRoot = process.getuid?.() === 0;
const SKIP =
  'NOT ROOT: the sidecar capture integration test builds network namespaces and was SKIPPED (CI runs it as root)';
if (!isRoot) console.error(`\n*** ${SKIP} ***\n`);

const POD_IP = '198.18.250.1';
const PEER_IP = '198.18.250.2';
const SIDECAR_MODULE = fileURLToPath(new URL('../../../src/capture/sidecar.ts', import.meta.url));

// Listens on every port given and answers each connection with `<name>:<port>`; `ready` once all listen.
const LISTENERS = `
import net from 'node:net';
const [name, ...ports] = process.argv.slice(1);
await Promise.all(ports.map((port) => new Promise((ok, fail) => {
  const server = net.createServer((s) => { s.on('error', () => {}); s.end(name + ':' + port); });
  server.once('error', fail);
  server.listen(+port, '0.0.0.0', ok);
})));
console.log('ready');
`;

// One connection to host:port: the reply, or the error code, or TIMEOUT.
const CLIENT = `
import net from 'node:net';
const [host, port] = process.argv.slice(1);
const s = net.connect(+port, host);
let reply = '';
const timer = setTimeout(() => { s.destroy(); console.log(JSON.stringify('TIMEOUT')); }, 3000);
s.on('data', (d) => { reply += d; });
s.on('end', () => { clearTimeout(timer); console.log(JSON.stringify(reply)); });
s.on('error', (e) => { clearTimeout(timer); console.log(JSON.stringify(e.code)); });
`;

// Drives SidecarCapture in the namespace it runs in; prints what installed() says along the way.
const DRIVER = `
import { SidecarCapture } from ${JSON.stringify(SIDECAR_MODULE)};
const capture = new SidecarCapture();
const steps = process.argv.slice(1);
const out = [];
for (const step of steps) {
  if (step === 'installed') out.push(await capture.installed());
  else await capture[step]();
}
console.log(JSON.stringify(out));
`;

const node = (script: string, ...args: string[]) => [
  process.execPath,
  '--input-type=module',
  '-e',
  script,
  ...args,
];

test('sidecar capture inside a pod namespace', {
  skip: isRoot ? false : SKIP,
  timeout: 60_000,
}, async (t) => {
  const pod = `ambit-sct-${randomBytes(3).toString('hex')}`;
  const peer = `${pod}-peer`;
  const children: ChildProcess[] = [];
  const made: string[] = [];

  t.after(async () => {
    for (const child of children) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    // Deleting the namespaces removes the veth pair and the table with them.
    for (const ns of made.reverse()) await execFileP('ip', ['netns', 'delete', ns]).catch(() => {});
  });

  const ip = (...args: string[]) => execFileP('ip', args);
  const exec = (ns: string, argv: string[]) => ['netns', 'exec', ns, ...argv];

  /** Listeners in `ns` named `name`; resolves once every port listens. */
  const listen = (ns: string, name: string, ports: number[]): Promise<void> => {
    const child = spawn('ip', exec(ns, node(LISTENERS, name, ...ports.map(String))), {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`listeners ${name} not ready in 10 s`)), 10_000);
      child.once('exit', (code) => reject(new Error(`listeners ${name} exited (${code})`)));
      child.stdout!.once('data', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  };

  /** One connection from `ns` to host:port (as group 1337 with `asSidecar`): where it landed. */
  const connect = async (ns: string, host: string, port: number, asSidecar = false): Promise<string> => {
    const argv = node(CLIENT, host, String(port));
    const cmd = asSidecar ? ['setpriv', '--regid', '1337', '--clear-groups', '--', ...argv] : argv;
    const { stdout } = await execFileP('ip', exec(ns, cmd), { timeout: 10_000 });
    return JSON.parse(stdout) as string;
  };

  /** SidecarCapture's steps run inside the pod namespace; installed() results in order. */
  const drive = async (...steps: string[]): Promise<boolean[]> => {
    const { stdout } = await execFileP('ip', exec(pod, node(DRIVER, ...steps)), {
      timeout: 10_000,
      env: { ...process.env, AMBIT_LOG_LEVEL: 'warn' },
    });
    return JSON.parse(stdout) as boolean[];
  };

  const counters = async (): Promise<string> =>
    (await execFileP('ip', exec(pod, ['nft', 'list', 'table', 'ip', 'ambit_sidecar']))).stdout;
  const packets = (listing: string, rule: RegExp): number => {
    const line = listing.split('\n').find((l) => rule.test(l));
    assert.ok(line, `a rule matching ${rule} in\n${listing}`);
    return Number(/counter packets (\d+)/.exec(line)![1]);
  };

  // The pod and its peer, on a veth in 198.18.250.0/30.
  for (const ns of [pod, peer]) {
    await ip('netns', 'add', ns);
    made.push(ns);
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
  await ip('-n', pod, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peer);
  await ip('-n', pod, 'addr', 'add', `${POD_IP}/30`, 'dev', 'eth0');
  await ip('-n', peer, 'addr', 'add', `${PEER_IP}/30`, 'dev', 'eth0');
  await ip('-n', pod, 'link', 'set', 'eth0', 'up');
  await ip('-n', peer, 'link', 'set', 'eth0', 'up');

  // The sidecar's listeners and an application port (8080) in the pod; a plain server in the peer.
  await Promise.all([listen(pod, 'pod', [15001, 15006, 15008, 15021, 8080]), listen(peer, 'peer', [80])]);

  // Before the rules: plain networking both ways.
  assert.equal(await connect(pod, PEER_IP, 80), 'peer:80');
  assert.equal(await connect(peer, POD_IP, 8080), 'pod:8080');

  // The sidecar installs its own rules from inside the namespace; installing twice replaces the table.
  assert.deepEqual(await drive('installed', 'install', 'install', 'installed'), [false, true]);

  await t.test("(1) the pod's outgoing TCP lands on the outbound listener", async () => {
    assert.equal(await connect(pod, PEER_IP, 80), 'pod:15001');
  });

  await t.test('(2) the same connection from group 1337 (the sidecar) reaches the peer', async () => {
    assert.equal(await connect(pod, PEER_IP, 80, true), 'peer:80');
  });

  await t.test(
    '(3) arriving TCP lands on the inbound listener, except HBONE 15008 and readiness 15021',
    async () => {
      assert.equal(await connect(peer, POD_IP, 8080), 'pod:15006');
      assert.equal(await connect(peer, POD_IP, 15008), 'pod:15008');
      assert.equal(await connect(peer, POD_IP, 15021), 'pod:15021');
    },
  );

  await t.test(
    '(4) the pod reaching itself, on 127.0.0.1 or its own address, is not redirected',
    async () => {
      assert.equal(await connect(pod, '127.0.0.1', 8080), 'pod:8080');
      assert.equal(await connect(pod, POD_IP, 8080), 'pod:8080');
    },
  );

  await t.test('the counters show what each rule matched', async () => {
    const listing = await counters();
    assert.equal(packets(listing, /skgid 1337 counter/), 1);
    assert.equal(packets(listing, /redirect to :15001/), 1);
    assert.equal(packets(listing, /redirect to :15006/), 1);
    assert.equal(packets(listing, /tcp dport 15008 counter/), 1);
    assert.equal(packets(listing, /tcp dport \{ 15020, 15021 \} counter/), 1);
    assert.ok(packets(listing, /oifname "lo" counter/) >= 2);
  });

  await t.test('remove is idempotent and restores plain networking', async () => {
    assert.deepEqual(await drive('remove', 'remove', 'installed'), [false]);
    assert.equal(await connect(pod, PEER_IP, 80), 'peer:80');
    assert.equal(await connect(peer, POD_IP, 8080), 'pod:8080');
  });
});
