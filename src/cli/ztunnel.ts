// `ambit ztunnel` runs a node's agent and ztunnel; `ambit ztunnel-config` reads a ztunnel's admin endpoint.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { NftablesCapture, ServiceVips } from '../capture/index.ts';
import { parseUpstreams, resolvConfNameservers } from '../dns/index.ts';
import { AmbitError } from '../errors/index.ts';
import { ambitHome } from '../lab/index.ts';
import { http } from '../os/index.ts';
import type { MemoryReport } from '../proxy/index.ts';
import { controlTarget } from '../xds/index.ts';
import {
  fileDescriptorLimit,
  NodeAgent,
  parseAdminListen,
  parseMetricsAllow,
  resolveLimits,
  workerThreadsOption,
  ZTUNNEL_DEFAULT_PORTS,
  ZTUNNEL_ERRORS,
} from '../ztunnel/index.ts';
import { CLI_ERRORS } from './errors.ts';
import { table } from './output.ts';
import { serveUntilSignal } from './serve.ts';

interface ZtunnelFlags {
  node: string;
  control: string;
  caBundle: string;
  token?: string;
  trustDomain: string;
  dataDir?: string;
  capture: 'nftables' | 'none';
  socks5?: string;
  adminListen?: string;
  metricsAllow?: string;
  maxConnections?: number;
  maxConnectionsPerSource?: number;
  maxHandshakes?: number;
  maxHandshakesPerSource?: number;
  /** Milliseconds (parsed from the flag's duration). */
  idleTimeout?: number;
  labState?: string;
  dnsProxy: boolean;
  dnsUpstream?: string;
  serviceVips: boolean;
  workerThreads?: number;
}

/** `--dns-upstream`, or the nameservers of this namespace's /etc/resolv.conf (none: other names are refused). */
export async function dnsUpstreams(flag: string | undefined): Promise<Array<{ host: string; port: number }>> {
  if (flag !== undefined) return parseUpstreams(flag);
  const text = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  return resolvConfNameservers(text);
}

/** An integer flag: anything else is refused with the flag's name (commander would pass NaN on). */
function count(flag: string): (value: string) => number {
  return (value) => {
    if (!/^[1-9]\d*$/.test(value) || !Number.isSafeInteger(Number(value))) {
      throw new AmbitError(ZTUNNEL_ERRORS.BAD_LIMIT, `${flag} must be a positive integer, got "${value}"`);
    }
    return Number(value);
  };
}

/** `--worker-threads`: 1 to MAX_WORKER_THREADS. */
function workerThreads(value: string): number {
  return workerThreadsOption(value, '--worker-threads');
}

const IDLE_UNITS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600 };

/** `--idle-timeout`: `0` (off), seconds, or `90s`, `30m`, `1h`; milliseconds out. */
export function parseIdleTimeout(value: string): number {
  const m = /^(\d{1,7})([smh]?)$/.exec(value.trim());
  const ms = m ? Number(m[1]) * IDLE_UNITS[m[2]!]! * 1000 : Number.NaN;
  if (!m || ms > 2 ** 31 - 1) {
    throw new AmbitError(
      ZTUNNEL_ERRORS.BAD_IDLE_TIMEOUT,
      `--idle-timeout must be 0 (off) or a duration such as 600, 90s, 30m or 1h (at most 596h), got "${value}"`,
    );
  }
  return ms;
}

export function ztunnelCommand(): Command {
  return new Command('ztunnel')
    .description("run a node's agent and ztunnel (in the node's network namespace)")
    .requiredOption('--node <name>', 'this node')
    .requiredOption(
      '--control <host:port[,…]>',
      "the control plane's gRPC address; several replicas' addresses, comma-separated, to fail over between them",
    )
    .requiredOption('--ca-bundle <file>', 'PEM roots that vouch for the control plane')
    .option('--token <token>', 'join token for the first start (or $AMBIT_JOIN_TOKEN)')
    .option('--trust-domain <domain>', 'SPIFFE trust domain', 'cluster.local')
    .option('--data-dir <dir>', 'node credential and admin socket (default $AMBIT_HOME/nodes/<node>)')
    .option(
      '--lab-state <file>',
      "the lab's state file: run the waypoint replicas placed on this node in their lab pods",
    )
    .addOption(
      new Option('--capture <driver>', 'traffic capture').choices(['nftables', 'none']).default('nftables'),
    )
    .option(
      '--socks5 <address>',
      'also accept SOCKS5 (explicit capture) on <address>:15080; off by default with nftables capture',
    )
    .option(
      '--admin-listen <address>',
      'also serve the admin on loopback TCP (e.g. 127.0.0.1:15000); off by default: the admin is the 0600 socket <data-dir>/admin.sock',
    )
    .option(
      '--metrics-allow <cidrs>',
      'comma-separated CIDRs that may scrape /metrics on 15020 besides the node itself (e.g. where Prometheus runs); never pod ranges',
    )
    .option(
      '--max-connections <n>',
      'proxied connections open at once, all directions (default: from the descriptor limit, (nofile − reserve − handshakes) / 2)',
      count('--max-connections'),
    )
    .option(
      '--max-connections-per-source <n>',
      'per source workload outbound, per source address inbound (default: an eighth of --max-connections)',
      count('--max-connections-per-source'),
    )
    .option(
      '--max-handshakes <n>',
      'TLS handshakes in progress on 15008 (default: nofile / 16, at most 1024)',
      count('--max-handshakes'),
    )
    .option(
      '--max-handshakes-per-source <n>',
      'TLS handshakes in progress per source address (default: a quarter of --max-handshakes)',
      count('--max-handshakes-per-source'),
    )
    .option(
      '--idle-timeout <duration>',
      'cut a proxied connection after this long with no byte either way: 0 (off), 90s, 30m, 1h (default 1h, as Envoy and Istio)',
      parseIdleTimeout,
    )
    .option(
      '--worker-threads <n>',
      "threads that carry traffic, the main thread's included (default 1); more share the ports (SO_REUSEPORT) and each caps its share of the connection limits",
      workerThreads,
    )
    .option(
      '--no-dns-proxy',
      "don't capture enrolled pods' DNS (port 53) to the ztunnel's DNS proxy on 15053 (on by default with nftables capture)",
    )
    .option(
      '--dns-upstream <addresses>',
      "where the DNS proxy forwards names that are not the mesh's: host[:port],… (default: the nameservers in /etc/resolv.conf)",
    )
    .option(
      '--service-vips',
      "give every pod on the node, meshed or not, the Services' VIPs (what kube-proxy does on a cluster; the lab turns it on)",
      false,
    )
    .action(async (opts: ZtunnelFlags) => {
      const given = {
        ...(opts.maxConnections ? { maxConnections: opts.maxConnections } : {}),
        ...(opts.maxConnectionsPerSource ? { maxConnectionsPerSource: opts.maxConnectionsPerSource } : {}),
        ...(opts.maxHandshakes ? { maxHandshakes: opts.maxHandshakes } : {}),
        ...(opts.maxHandshakesPerSource ? { maxHandshakesPerSource: opts.maxHandshakesPerSource } : {}),
      };
      // Caps that do not fit the descriptor limit refuse the start, before the node joins.
      // (The ztunnel logs the limit and the caps in force in its "ztunnel ready" line.)
      const limits = resolveLimits(given, fileDescriptorLimit());
      // Bad flags are refused before the node joins (a join spends its token).
      const metricsAllow = parseMetricsAllow(
        (opts.metricsAllow ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== ''),
      );
      if (opts.adminListen) parseAdminListen(opts.adminListen, ZTUNNEL_DEFAULT_PORTS.admin);
      controlTarget(opts.control); // refuses a bad --control before anything starts
      const dnsOn = opts.dnsProxy && opts.capture === 'nftables';
      const dns = dnsOn ? { upstreams: await dnsUpstreams(opts.dnsUpstream) } : undefined;
      const trustBundlePem = await readFile(opts.caBundle, 'utf8').catch((cause) => {
        throw new AmbitError(
          CLI_ERRORS.NO_FILE,
          `cannot read --ca-bundle ${opts.caBundle}: ${(cause as Error).message}`,
        );
      });
      const agent = new NodeAgent({
        node: opts.node,
        dataDir: opts.dataDir ?? join(ambitHome(), 'nodes', opts.node),
        control: opts.control,
        trustDomain: opts.trustDomain,
        trustBundlePem,
        token: opts.token ?? process.env.AMBIT_JOIN_TOKEN,
        capture: opts.capture === 'nftables' ? new NftablesCapture({ dns: dnsOn }) : undefined,
        serviceVips: opts.serviceVips ? new ServiceVips() : undefined,
        dns,
        socks5: opts.socks5,
        adminListen: opts.adminListen,
        metricsAllow,
        limits,
        idleTimeoutMs: opts.idleTimeout,
        workerThreads: opts.workerThreads,
        labState: opts.labState,
      });
      await agent.start();
      await serveUntilSignal(`ztunnel for ${opts.node} ready`, () => agent.stop());
    });
}

/**
 * GET a path from a proxy's (a ztunnel's, a waypoint's) admin endpoint, through its Unix socket, within
 * `timeoutMs` for the whole exchange.
 */
export function adminGet(
  socketPath: string,
  path: string,
  proxy = 'ztunnel',
  timeoutMs = 10_000,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 0) >= 400) {
          reject(
            new AmbitError(
              CLI_ERRORS.REQUEST,
              `the ${proxy} answered ${res.statusCode} for ${path}: ${text.trim()}`,
            ),
          );
          return;
        }
        try {
          resolve(JSON.parse(text));
        } catch (cause) {
          reject(
            new AmbitError(CLI_ERRORS.REQUEST, `the ${proxy}'s answer for ${path} is not JSON`, {
              cause,
            }),
          );
        }
      });
    });
    const deadline = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('close', () => clearTimeout(deadline));
    req.on('error', (cause) =>
      reject(
        new AmbitError(
          CLI_ERRORS.UNREACHABLE,
          `cannot reach the ${proxy} admin socket ${socketPath} (${cause.message}); is the mesh up (\`ambit up\`)?`,
          { cause },
        ),
      ),
    );
    req.end();
  });
}

type Dump = {
  node: string;
  workloads: Array<{
    name: string;
    namespace: string;
    addresses: string[];
    node?: string;
    identity: string;
    enrolled: boolean;
    waypoint?: { name: string };
  }>;
  services: Array<{
    name: string;
    namespace: string;
    vips: string[];
    endpoints: unknown[];
    waypoint?: { name: string };
  }>;
  authorizations: Array<{ name: string; namespace: string; scope: string; action: string; rules: unknown[] }>;
  certificates: Array<{ identity: string; state: string; serial?: string; notAfter?: string }>;
};

const VIEWS = ['workloads', 'services', 'policies', 'certificates', 'connections', 'memory', 'all'] as const;

export function ztunnelConfigCommand(): Command {
  return new Command('ztunnel-config')
    .alias('zc')
    .description('what a ztunnel holds: workloads, services, policies, certificates, connections')
    .addArgument(new Command().createArgument('<view>').choices(VIEWS))
    .option('--node <name>', 'which node', 'node-1')
    .option('--socket <path>', 'admin socket (default $AMBIT_HOME/nodes/<node>/admin.sock)')
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
    )
    .action(async (view: (typeof VIEWS)[number], opts: { node: string; socket?: string; output: string }) => {
      const socket = opts.socket ?? join(ambitHome(), 'nodes', opts.node, 'admin.sock');
      if (view === 'connections') {
        const c = (await adminGet(socket, '/connections')) as { connections: Array<Record<string, string>> };
        if (opts.output === 'json') return void console.log(JSON.stringify(c, null, 2));
        // With worker threads, ids are per thread: each row says which thread carries it.
        const threaded = c.connections.some((x) => x.thread !== undefined);
        return void console.log(
          table(
            [
              ...(threaded ? ['THREAD'] : []),
              'ID',
              'DIRECTION',
              'SOURCE',
              'DESTINATION',
              'WORKLOAD',
              'PEER',
              'SINCE',
            ],
            c.connections.map((x) => [
              ...(threaded ? [String(x.thread)] : []),
              String(x.id),
              x.direction ?? '',
              x.src ?? '',
              x.dst ?? '',
              x.workload ?? '-',
              x.peerIdentity ?? '-',
              x.startedAt ?? '',
            ]),
          ),
        );
      }
      if (view === 'memory') {
        const m = (await adminGet(socket, '/memory')) as MemoryReport & { connections: number };
        if (opts.output === 'json') return void console.log(JSON.stringify(m, null, 2));
        return void console.log(memoryTable(m));
      }
      const d = (await adminGet(socket, '/config_dump')) as Dump;
      if (opts.output === 'json' || view === 'all') {
        const pick = {
          workloads: d.workloads,
          services: d.services,
          policies: d.authorizations,
          certificates: d.certificates,
          all: d,
        }[view];
        return void console.log(JSON.stringify(pick, null, 2));
      }
      const rows = {
        workloads: () =>
          table(
            ['NAMESPACE', 'NAME', 'ADDRESS', 'NODE', 'PROTOCOL', 'WAYPOINT'],
            d.workloads.map((w) => [
              w.namespace,
              w.name,
              w.addresses.join(','),
              w.node ?? '-',
              w.enrolled ? 'HBONE' : 'TCP',
              w.waypoint?.name ?? 'None',
            ]),
          ),
        services: () =>
          table(
            ['NAMESPACE', 'NAME', 'VIPS', 'ENDPOINTS', 'WAYPOINT'],
            d.services.map((s) => [
              s.namespace,
              s.name,
              s.vips.join(','),
              String(s.endpoints.length),
              s.waypoint?.name ?? 'None',
            ]),
          ),
        policies: () =>
          table(
            ['NAMESPACE', 'NAME', 'SCOPE', 'ACTION', 'RULES'],
            d.authorizations.map((p) => [p.namespace, p.name, p.scope, p.action, String(p.rules.length)]),
          ),
        certificates: () =>
          table(
            ['IDENTITY', 'STATE', 'SERIAL', 'EXPIRES'],
            d.certificates.map((c) => [c.identity, c.state, c.serial ?? '-', c.notAfter ?? '-']),
          ),
      };
      console.log(rows[view]());
    });
}

const MIB = 1024 * 1024;
const mib = (bytes: number) => `${(bytes / MIB).toFixed(1)} MiB`;

/** A proxy's /memory as a table: where the resident set goes. */
export function memoryTable(m: MemoryReport & { connections?: number }): string {
  const rows: string[][] = [
    ['resident (RSS)', mib(m.rss)],
    ['  anonymous (its own)', mib(m.rssAnon)],
    ['  file-backed (node binary, libraries)', mib(m.rssFile)],
    ['V8 heap, reserved / used', `${mib(m.heap.total)} / ${mib(m.heap.used)}`],
    ...Object.entries(m.heap.spaces).map(([name, s]) => [`  ${name}`, `${mib(s.size)} / ${mib(s.used)}`]),
    [
      'code, bytecode, source kept',
      `${mib(m.code.code)}, ${mib(m.code.bytecode)}, ${mib(m.code.scriptSource)}`,
    ],
    ['external (TLS, HTTP/2, Buffers)', mib(m.external)],
    ['  of which Buffers', mib(m.arrayBuffers)],
    ...(m.malloc === undefined
      ? []
      : [['C heap, live / free but held', `${mib(m.malloc.inUse)} / ${mib(m.malloc.free)}`]]),
    ...(m.connections === undefined ? [] : [['proxied connections open', String(m.connections)]]),
    ['runs from', m.build === 'bundle' ? 'the build (dist/daemons)' : 'the TypeScript sources'],
  ];
  return table(['MEMORY', 'BYTES'], rows);
}
