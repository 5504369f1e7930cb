// A tiny node-and-pods topology for capture tests, built with `ip netns` as the lab builds its own: one
// "node" namespace that routes for three "pod" namespaces, each on a veth (pod host .H of 198.18.1.0/24,
// gateway 198.18.1.1 on every pod link, a /32 route per pod). Echo servers and clients run inside the
// namespaces as child processes; `destroy` stops every process, then deletes every namespace.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const GATEWAY = '198.18.1.1';

// Replies with its name, the peer it saw and what the peer sent, so a test knows where a connection
// landed and whether its source was rewritten.
const ECHO = `
const [name, port] = process.argv.slice(1);
require('node:net').createServer((s) => {
  s.on('error', () => {});
  s.once('data', (d) => s.end(name + ' ' + s.remoteAddress + ' ' + d));
}).listen(+port, '0.0.0.0', () => console.log('ready'));
`;

// The same over UDP: one datagram back for each one received.
const UDP_ECHO = `
const [name, port] = process.argv.slice(1);
const s = require('node:dgram').createSocket('udp4');
s.on('message', (d, peer) => s.send(name + ' ' + peer.address + ' ' + d, peer.port, peer.address));
s.bind(+port, '0.0.0.0', () => console.log('ready'));
`;

// One datagram to host:port; the reply, or TIMEOUT.
const UDP_CLIENT = `
const [host, port] = process.argv.slice(1);
const s = require('node:dgram').createSocket('udp4');
const timer = setTimeout(() => { console.log(JSON.stringify('TIMEOUT')); s.close(); }, 3000);
s.on('message', (d) => { clearTimeout(timer); console.log(JSON.stringify(String(d))); s.close(); });
s.send('hello', +port, host);
`;

// Connects COUNT times, one after another; each outcome is the reply or the error code.
const CLIENT = `
const net = require('node:net');
const [host, port, count] = process.argv.slice(1);
const once = () => new Promise((done) => {
  const s = net.connect(+port, host);
  let reply = '';
  const timer = setTimeout(() => { s.destroy(); done('TIMEOUT'); }, 3000);
  s.on('connect', () => s.write('hello'));
  s.on('data', (d) => { reply += d; });
  s.on('end', () => { clearTimeout(timer); done(reply); });
  s.on('error', (e) => { clearTimeout(timer); done(e.code); });
});
(async () => {
  const out = [];
  for (let i = 0; i < +count; i++) out.push(await once());
  console.log(JSON.stringify(out));
})();
`;

export function run(cmd: string, args: string[]): Promise<string> {
  return execFileP(cmd, args).then((r) => r.stdout);
}

export class Topology {
  readonly prefix = `ambit-t${randomBytes(3).toString('hex')}-`;
  readonly node = `${this.prefix}node`;
  private readonly namespaces: string[] = [];
  private readonly children: ChildProcess[] = [];

  pod(host: number): { ns: string; address: string } {
    return { ns: `${this.prefix}pod${host}`, address: `198.18.1.${host}` };
  }

  /** The node, and a pod for each host number given. */
  async build(hosts: number[]): Promise<void> {
    await this.netns(this.node);
    const inNode = (...args: string[]) => run('ip', ['-n', this.node, ...args]);
    await inNode('link', 'set', 'lo', 'up');
    // As a lab node: it routes, with strict reverse-path filtering on each pod link only.
    await this.in(this.node, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0');
    for (const host of hosts) {
      const { ns, address } = this.pod(host);
      const link = `p${host}`;
      await this.netns(ns);
      const inPod = (...args: string[]) => run('ip', ['-n', ns, ...args]);
      await inPod('link', 'set', 'lo', 'up');
      await inNode('link', 'add', link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      await inNode('addr', 'add', `${GATEWAY}/32`, 'dev', link);
      await inNode('link', 'set', link, 'up');
      await this.in(this.node, 'sysctl', '-qw', `net.ipv4.conf.${link}.rp_filter=1`);
      await inNode('route', 'add', `${address}/32`, 'dev', link);
      await inPod('addr', 'add', `${address}/32`, 'dev', 'eth0');
      await inPod('link', 'set', 'eth0', 'up');
      await inPod('route', 'add', GATEWAY, 'dev', 'eth0', 'scope', 'link');
      await inPod('route', 'add', 'default', 'via', GATEWAY, 'dev', 'eth0');
    }
  }

  /** `ip netns exec NS …`, the way a test runs a command in the node. */
  exec(ns: string): string[] {
    return ['ip', 'netns', 'exec', ns];
  }

  /** Runs a command in `ns`; its stdout. */
  in(ns: string, cmd: string, ...args: string[]): Promise<string> {
    return run('ip', ['netns', 'exec', ns, cmd, ...args]);
  }

  /** An echo server in `ns` on `port` (TCP, or UDP), answering with `name`; resolves once it listens. */
  echo(ns: string, name: string, port: number, protocol: 'tcp' | 'udp' = 'tcp'): Promise<void> {
    const script = protocol === 'tcp' ? ECHO : UDP_ECHO;
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script, name, String(port)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.children.push(child);
    return new Promise((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`echo server ${name} exited (${code})`)));
      child.stdout!.once('data', () => resolve());
    });
  }

  /** `count` connections from `ns` to host:port: each one's reply, or its error code. */
  async connect(ns: string, host: string, port: number, count: number): Promise<string[]> {
    const out = await run('ip', [
      'netns',
      'exec',
      ns,
      process.execPath,
      '-e',
      CLIENT,
      host,
      String(port),
      String(count),
    ]);
    return JSON.parse(out) as string[];
  }

  /** One UDP datagram from `ns` to host:port: the reply, or TIMEOUT. */
  async datagram(ns: string, host: string, port: number): Promise<string> {
    return JSON.parse(await this.in(ns, process.execPath, '-e', UDP_CLIENT, host, String(port))) as string;
  }

  async destroy(): Promise<void> {
    for (const child of this.children) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill();
        await exited;
      }
    }
    for (const ns of this.namespaces.reverse()) await run('ip', ['netns', 'delete', ns]).catch(() => {});
  }

  private async netns(name: string): Promise<void> {
    await run('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
  }
}
