// `ambit up` / `ambit down`: the whole mesh on this machine — the lab's nodes, the control plane in
// the bridge's namespace (198.18.0.254), and one node agent + ztunnel per node — in the background,
// ready when `up` returns, with a token for a Prometheus beside the control plane to scrape it.
// `ambit check` reports missing prerequisites with the fix.

import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Command, InvalidArgumentError } from 'commander';
import lockfile from 'proper-lockfile';
import { PORTS } from '../config/index.ts';
import { AmbitError } from '../errors/index.ts';
import {
  ambitHome,
  CLUSTER_DNS_ADDRESS,
  CONTROL_ADDRESS,
  CONTROL_TARGET,
  checkPrerequisites,
  defaultLabName,
  hostAddress,
  LAB_TOOLS,
  Lab,
  MAX_CONTROL_REPLICAS,
  MAX_ETCD_MEMBERS,
  nodeGateway,
  nodeName,
  waitUntil,
} from '../lab/index.ts';
import { MAX_WORKER_THREADS } from '../ztunnel/index.ts';
import { AdminClient, controlDataDirs, localAdminServer } from './client.ts';
import { CLI_ERRORS } from './errors.ts';
import { labPrometheusDir } from './lab-prometheus.ts';
import { table } from './output.ts';
import { ensurePrometheusToken, prometheusTokenFile, revokePrometheusToken } from './prometheus.ts';

const execFileP = promisify(execFile);
/** The lab's infrastructure addresses, 198.18.0.200–254 (.255 is the bridge's broadcast). */
export const LAB_INFRASTRUCTURE_CIDRS = ['198.18.0.200/29', '198.18.0.208/28', '198.18.0.224/27'];

export interface MeshOptions {
  nodes?: number;
  home?: string;
  lab?: string;
  /** How long to wait for each part to become ready. */
  timeoutMs?: number;
  /** The open-file limit each ztunnel runs under (default ZTUNNEL_NOFILE); its caps derive from it. */
  ztunnelNofile?: number;
  /** More `ambit ztunnel` flags for every node (e.g. `--max-connections-per-source`). */
  ztunnelArgs?: string[];
  /** More `ambit control` flags (e.g. `--reserved-cidrs`); a flag given here wins over `up`'s own. */
  controlArgs?: string[];
  /**
   * A highly available control plane: an etcd cluster of `etcdMembers` and `controlReplicas` replicas
   * on it, each in its own host namespace of the lab (`etcd-N` at 198.18.0.20N, `control-N` at 198.18.0.21N).
   */
  ha?: { etcdMembers: number; controlReplicas: number };
}

/** The etcd members' and control replicas' host names in the lab. */
export function haHosts(ha: { etcdMembers: number; controlReplicas: number }): {
  etcd: string[];
  control: string[];
} {
  const range = (n: number, kind: string) => Array.from({ length: n }, (_, i) => `${kind}-${i + 1}`);
  return { etcd: range(ha.etcdMembers, 'etcd'), control: range(ha.controlReplicas, 'control') };
}

/** `ambit etcd` flags for member `host` of a lab cluster of `members` (plain HTTP: the lab's bridge only). */
export function etcdMemberArgs(
  host: string,
  members: readonly string[],
  dataDir: string,
  lab: string,
): string[] {
  const url = (h: string, port: number) => `http://${hostAddress(h)}:${port}`;
  return [
    'etcd',
    '--name',
    host,
    '--data-dir',
    dataDir,
    '--listen-client-urls',
    url(host, ETCD_CLIENT_PORT),
    '--advertise-client-urls',
    url(host, ETCD_CLIENT_PORT),
    '--listen-peer-urls',
    url(host, ETCD_PEER_PORT),
    '--initial-advertise-peer-urls',
    url(host, ETCD_PEER_PORT),
    '--initial-cluster',
    members.map((m) => `${m}=${url(m, ETCD_PEER_PORT)}`).join(','),
    '--initial-cluster-state',
    'new',
    '--initial-cluster-token',
    `ambit-${lab}`,
    '--log-level',
    'warn',
  ];
}

/** The HA shape of a lab that is up (its etcd and control hosts), or undefined for a plain one. */
export function haOf(
  status: { hosts: Array<{ name: string }> } | undefined,
): { etcdMembers: number; controlReplicas: number } | undefined {
  const count = (kind: string) => (status?.hosts ?? []).filter((h) => h.name.startsWith(`${kind}-`)).length;
  const ha = { etcdMembers: count('etcd'), controlReplicas: count('control') };
  return ha.etcdMembers > 0 && ha.controlReplicas > 0 ? ha : undefined;
}

const ETCD_CLIENT_PORT = 2379;
const ETCD_PEER_PORT = 2380;

/**
 * Each ztunnel runs under this open-file limit (soft and hard, set by `prlimit`): well above the usual
 * 1,024, so its default caps (limits.ts) allow ~31,700 proxied connections, ~4,000 per source.
 */
export const ZTUNNEL_NOFILE = 65_536;

export interface Mesh {
  lab: Lab;
  admin: AdminClient;
  home: string;
  /** The (first) control plane's data directory. */
  controlDir: string;
}

function paths(home: string) {
  return { controlDir: join(home, 'control'), nodesDir: join(home, 'nodes') };
}

/** The admin client for the lab's control plane, or its replicas in turn (Unix sockets cross namespaces). */
export function meshAdmin(home = ambitHome()): AdminClient {
  return new AdminClient(localAdminServer(home));
}

/** Waits for a part to become ready; on timeout the error ends with the tail of its log. */
async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  log?: string,
): Promise<T> {
  try {
    return await waitUntil(what, timeoutMs, probe, 200);
  } catch (err) {
    const tail = log ? (await readFile(log, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n') : '';
    throw new AmbitError(
      CLI_ERRORS.UP_TIMEOUT,
      `${(err as Error).message}${tail ? `; its log ends:\n${tail}` : ''}`,
      { cause: err },
    );
  }
}

/** Brings the mesh up; what already runs is left as it is, and only what is missing is started. */
export async function meshUp(opts: MeshOptions = {}): Promise<Mesh> {
  // The readiness probes run curl inside the nodes; say so now rather than time out later.
  await checkPrerequisites({ ...LAB_TOOLS, curl: 'curl', nft: 'nftables' });
  const home = opts.home ?? ambitHome();
  await mkdir(home, { recursive: true });
  // Two `ambit up` at once must not both start a control plane and ztunnels: one waits for the other.
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(home, {
      lockfilePath: join(home, 'mesh.lock'),
      realpath: false,
      stale: 10_000,
      update: 2_000,
      retries: { retries: 600, minTimeout: 100, maxTimeout: 200 },
    });
  } catch (cause) {
    throw new AmbitError(CLI_ERRORS.UP_LOCKED, `another \`ambit up\` is running in ${home}; wait for it`, {
      cause,
    });
  }
  try {
    return await meshUpLocked({ ...opts, home });
  } finally {
    await release().catch(() => {});
  }
}

async function meshUpLocked(opts: MeshOptions & { home: string }): Promise<Mesh> {
  const home = opts.home;
  const { controlDir, nodesDir } = paths(home);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const lab = new Lab({ home, name: opts.lab ?? defaultLabName() });
  const nodes = opts.nodes ?? 2;
  const ha = opts.ha ? haHosts(opts.ha) : undefined;
  if (ha) {
    await checkPrerequisites({ etcd: 'etcd-server' });
    // Members kept by `down --keep-data` know their cluster: another size cannot start from them.
    const kept = (await readdir(join(home, 'etcd')).catch(() => [] as string[])).filter((d) =>
      /^etcd-\d+$/.test(d),
    );
    if (kept.length > 0 && kept.sort().join() !== [...ha.etcd].sort().join())
      throw new AmbitError(
        CLI_ERRORS.USAGE,
        `${join(home, 'etcd')} holds the data of a ${kept.length}-member etcd cluster (kept by \`ambit down --keep-data\`): bring it up with --etcd-members ${kept.length}, or run \`ambit down\` to start afresh`,
      );
  }
  // Each replica serves the cluster DNS on its own address, which the lab's resolv.conf files name.
  const controlAddresses = ha ? ha.control.map(hostAddress) : [CONTROL_ADDRESS];
  await lab.up(nodes, ha ? { hosts: [...ha.etcd, ...ha.control] } : {});
  const status = await lab.status();
  const runningIn = (ps: Array<{ running: boolean; command: string[] }> | undefined, what: string) =>
    (ps ?? []).some((p) => p.running && p.command.includes(what));
  const hostProcesses = (host: string) => status?.hosts.find((h) => h.name === host)?.processes;
  const nodeCount = status?.nodes.length ?? nodes;
  const controlFlags = [
    '--lab-state',
    lab.stateFile,
    // The underlay (nodes, the control plane, the lab's infrastructure), loopback and each pod gateway:
    // no WorkloadEntry may claim them, or it would be captured in place of the real host.
    '--reserved-cidrs',
    [
      '198.18.0.0/24',
      '127.0.0.0/8',
      '::1/128',
      ...Array.from({ length: nodeCount }, (_, i) => `${nodeGateway(i + 1)}/32`),
    ].join(','),
  ];
  const waitReady = (what: string, dir: string, log: string) =>
    waitFor(
      what,
      timeoutMs,
      async () => {
        await new AdminClient(`unix:${join(dir, 'admin.sock')}`).call('GET', '/healthz/ready');
        return true;
      },
      log,
    );
  // Up again starts only what is missing (a part that died), never a second copy of a running one.
  if (!ha) {
    if (!runningIn(status?.control.processes, 'control')) {
      const control = await lab.run(CONTROL_TARGET, [
        'ambit',
        'control',
        '--data-dir',
        controlDir,
        '--grpc-listen',
        `${CONTROL_ADDRESS}:${PORTS.controlGrpc}`,
        ...controlFlags,
        // The admin API (and its /metrics) on TCP for a Prometheus run beside the control plane: on the
        // bridge namespace's own loopback, which nodes, pods and the host cannot reach (each has its
        // own), and, as on any TCP listener, every request but readiness needs a bearer token.
        '--admin-listen',
        `127.0.0.1:${PORTS.controlAdmin}`,
        // The lab's cluster DNS: what every pod's and node's resolv.conf names. Nothing beyond the lab is
        // asked (no upstream): names outside cluster.local are refused at once.
        '--dns-listen',
        `${CLUSTER_DNS_ADDRESS}:53`,
        ...(opts.controlArgs ?? []),
      ]);
      await waitReady('the control plane', controlDir, control.log);
    }
  } else {
    // The etcd cluster: every member started before any is waited for (a lone member has no quorum).
    const etcdStarted: Array<{ host: string; log: string }> = [];
    for (const host of ha.etcd) {
      if (runningIn(hostProcesses(host), 'etcd')) continue;
      const dataDir = join(home, 'etcd', host);
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      const p = await lab.run(host, etcdMemberArgs(host, ha.etcd, dataDir, lab.name));
      etcdStarted.push({ host, log: p.log });
    }
    for (const { host, log } of etcdStarted) {
      await waitFor(
        `etcd member ${host}`,
        timeoutMs,
        async () => {
          const r = await lab.exec(host, [
            'curl',
            '-sf',
            '--max-time',
            '1',
            `http://${hostAddress(host)}:${ETCD_CLIENT_PORT}/health`,
          ]);
          return r.code === 0 && r.stdout.includes('"true"') ? true : undefined;
        },
        log,
      );
    }
    const endpoints = ha.etcd.map((h) => `http://${hostAddress(h)}:${ETCD_CLIENT_PORT}`).join(',');
    for (const [i, host] of ha.control.entries()) {
      const dir = join(home, host);
      if (runningIn(hostProcesses(host), 'control')) continue;
      // The replicas sign with one CA: the first one makes it, the others are given a copy (the key never
      // goes into etcd).
      if (i > 0 && !existsSync(join(dir, 'ca'))) {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        await cp(join(home, ha.control[0]!, 'ca'), join(dir, 'ca'), { recursive: true });
      }
      const control = await lab.run(host, [
        'ambit',
        'control',
        '--data-dir',
        dir,
        '--store',
        'etcd',
        '--etcd-endpoints',
        endpoints,
        '--replica-name',
        host,
        '--grpc-listen',
        `${hostAddress(host)}:${PORTS.controlGrpc}`,
        ...controlFlags,
        '--dns-listen',
        `${hostAddress(host)}:53`,
        ...(opts.controlArgs ?? []),
      ]);
      await waitReady(`control-plane replica ${host}`, dir, control.log);
    }
  }
  const admin = meshAdmin(home);

  await ensurePrometheusToken(admin, prometheusTokenFile(home));

  const { pem } = await admin.call<{ pem: string }>('GET', '/ambit/v1/trust-bundle');
  await mkdir(nodesDir, { recursive: true, mode: 0o700 });
  const bundle = join(nodesDir, 'ca-bundle.pem');
  await writeFile(bundle, pem);
  const started: Array<{ node: string; log: string }> = [];
  for (let i = 1; i <= nodeCount; i++) {
    const node = nodeName(i);
    if (runningIn(status?.nodes[i - 1]?.processes, 'ztunnel')) continue;
    // A join token only for a node without a usable credential: an unused token is a credential too.
    const needsToken = await needsJoinToken(join(nodesDir, node, 'node-credential.json'), node, pem);
    const token = needsToken
      ? (await admin.call<{ token: string }>('POST', '/ambit/v1/tokens', { node })).token
      : undefined;
    const p = await lab.run(
      node,
      [
        'ambit',
        'ztunnel',
        '--node',
        node,
        // Every replica: the ztunnel picks one and moves to another when it goes.
        '--control',
        controlAddresses.map((a) => `${a}:${PORTS.controlGrpc}`).join(','),
        '--ca-bundle',
        bundle,
        '--data-dir',
        join(nodesDir, node),
        // Besides the node itself, only the lab's infrastructure range (198.18.0.200–254, where the
        // control plane and Prometheus run) may scrape the node's metrics; never nodes or pods.
        '--metrics-allow',
        LAB_INFRASTRUCTURE_CIDRS.join(','),
        // Waypoint replicas the control plane places on this node run in their lab pods.
        '--lab-state',
        lab.stateFile,
        // Names the mesh does not know go to the lab's cluster DNS, never to the host's resolvers; and
        // every pod, meshed or not, reaches Services by VIP, as on a cluster.
        '--dns-upstream',
        controlAddresses.map((a) => `${a}:53`).join(','),
        '--service-vips',
        ...(opts.ztunnelArgs ?? []),
      ],
      {
        nofile: opts.ztunnelNofile ?? ZTUNNEL_NOFILE,
        ...(token ? { env: { AMBIT_JOIN_TOKEN: token } } : {}),
      },
    );
    started.push({ node, log: p.log });
  }
  for (const { node, log } of started) {
    await waitFor(
      `the ztunnel on ${node}`,
      timeoutMs,
      async () => {
        const r = await lab.exec(node, [
          'curl',
          '-sf',
          '--max-time',
          '1',
          'http://127.0.0.1:15021/healthz/ready',
        ]);
        return r.code === 0 ? true : undefined;
      },
      log,
    );
  }
  return { lab, admin, home, controlDir: ha ? join(home, ha.control[0]!) : controlDir };
}

/**
 * Whether the node must join again: no saved credential for it, one that has expired, or one issued
 * under another trust bundle (the control plane's CA changed).
 */
export async function needsJoinToken(
  file: string,
  node: string,
  bundlePem: string,
  now = Date.now(),
): Promise<boolean> {
  try {
    const saved = JSON.parse(await readFile(file, 'utf8')) as {
      node?: unknown;
      certChainPem?: unknown;
      trustBundlePem?: unknown;
    };
    if (saved.node !== node || typeof saved.certChainPem !== 'string') return true;
    if (typeof saved.trustBundlePem !== 'string' || saved.trustBundlePem.trim() !== bundlePem.trim())
      return true;
    return Date.parse(new X509Certificate(saved.certChainPem).validTo) <= now;
  } catch {
    return true; // missing or unreadable: the ztunnel joins with a token
  }
}

/**
 * Stops everything `up` started and removes the lab and Prometheus's token file; `keepData` keeps the
 * control plane's store and CA.
 */
export async function meshDown(
  opts: { home?: string; lab?: string; keepData?: boolean } = {},
): Promise<void> {
  const home = opts.home ?? ambitHome();
  const tokenFile = prometheusTokenFile(home);
  // A kept store keeps its admin tokens: revoke Prometheus's while the control plane still answers,
  // so no live credential outlives its file. Without --keep-data the store goes with the token.
  if (opts.keepData && existsSync(tokenFile)) await revokePrometheusToken(meshAdmin(home));
  await new Lab({ home, name: opts.lab ?? defaultLabName() }).down();
  await rm(tokenFile, { force: true });
  if (!opts.keepData) {
    // The control plane's (an HA mesh's replicas'), the nodes' and an HA mesh's etcd members'.
    // … and the lab Prometheus's data (`ambit dashboard`, `ambit stat`), whose processes the lab took down.
    for (const dir of [
      ...controlDataDirs(home),
      paths(home).nodesDir,
      join(home, 'etcd'),
      labPrometheusDir(home),
    ])
      await rm(dir, { recursive: true, force: true });
  }
}

function nodesArg(value: string): number {
  if (!/^[0-9]+$/.test(value)) throw new InvalidArgumentError('--nodes must be a whole number');
  return Number(value);
}

function countArg(flag: string, max: number): (value: string) => number {
  return (value) => {
    if (!/^[0-9]+$/.test(value) || Number(value) < 1 || Number(value) > max)
      throw new InvalidArgumentError(`${flag} must be a whole number from 1 to ${max}`);
    return Number(value);
  };
}

export function upCommand(): Command {
  return new Command('up')
    .description('bring up the mesh on this machine: lab nodes, control plane, a ztunnel per node')
    .option('--nodes <n>', 'number of nodes', nodesArg, 2)
    .option(
      '--no-dns-proxy',
      "leave enrolled pods' DNS to the cluster DNS (the ztunnels' DNS proxy is on by default)",
    )
    .option(
      '--worker-threads <n>',
      "threads that carry each node's ztunnel's traffic (its --worker-threads; default 1)",
      countArg('--worker-threads', MAX_WORKER_THREADS),
      1,
    )
    .option(
      '--ha',
      'a highly available control plane: replicas on an etcd cluster, each in its own namespace of the lab',
      false,
    )
    .option(
      '--etcd-members <n>',
      'with --ha: etcd members (198.18.0.201…)',
      countArg('--etcd-members', MAX_ETCD_MEMBERS),
      3,
    )
    .option(
      '--control-replicas <n>',
      'with --ha: control-plane replicas (198.18.0.211…)',
      countArg('--control-replicas', MAX_CONTROL_REPLICAS),
      2,
    )
    .action(
      async (
        opts: {
          nodes: number;
          dnsProxy: boolean;
          workerThreads: number;
          ha: boolean;
          etcdMembers: number;
          controlReplicas: number;
        },
        cmd: Command,
      ) => {
        for (const flag of ['etcdMembers', 'controlReplicas'])
          if (!opts.ha && cmd.getOptionValueSource(flag) === 'cli')
            throw new AmbitError(
              CLI_ERRORS.USAGE,
              `--${flag === 'etcdMembers' ? 'etcd-members' : 'control-replicas'} needs --ha`,
            );
        const ha = opts.ha
          ? { etcdMembers: opts.etcdMembers, controlReplicas: opts.controlReplicas }
          : undefined;
        const ztunnelArgs = [
          ...(opts.dnsProxy ? [] : ['--no-dns-proxy']),
          ...(opts.workerThreads > 1 ? ['--worker-threads', String(opts.workerThreads)] : []),
        ];
        await meshUp({ nodes: opts.nodes, ztunnelArgs, ha });
        const where = ha
          ? `${ha.controlReplicas} control-plane replica(s) at ${haHosts(ha)
              .control.map((h) => `${hostAddress(h)}:15010`)
              .join(', ')} on ${ha.etcdMembers} etcd member(s)`
          : `control plane at ${CONTROL_ADDRESS}:15010`;
        console.log(
          `mesh is up: ${opts.nodes} node(s), ${where} (admin: ambit get …; Prometheus: ambit prometheus config)`,
        );
      },
    );
}

export function downCommand(): Command {
  return new Command('down')
    .description('stop the mesh and remove the lab (and, unless --keep-data, the control plane data)')
    .option('--keep-data', "keep the control plane's store and CA for the next `up`", false)
    .action(async (opts: { keepData: boolean }) => {
      await meshDown({ keepData: opts.keepData });
      console.log('mesh is down');
    });
}

interface Check {
  what: string;
  ok: boolean;
  fix: string;
}

/** Every prerequisite of the lab and the mesh, with what to do about a missing one. */
export async function checks(): Promise<Check[]> {
  const out: Check[] = [];
  const has = async (cmd: string, args: string[]) =>
    execFileP(cmd, args).then(
      () => true,
      () => false,
    );
  out.push({
    what: 'running as root',
    ok: process.getuid?.() === 0,
    fix: 'run as root (the lab creates network namespaces)',
  });
  const major = Number(process.versions.node.split('.')[0]);
  out.push({
    what: `Node.js >= 24 (have ${process.versions.node})`,
    ok: major >= 24,
    fix: 'run through npm (`npx ambit …`) after `npm ci`, which brings Node 24',
  });
  for (const [tool, pkg] of [
    ['ip', 'iproute2'],
    ['nft', 'nftables'],
    ['curl', 'curl'],
    ['sysctl', 'procps'],
  ] as const) {
    out.push({
      what: `\`${tool}\` command`,
      ok: await has('sh', ['-c', `command -v ${tool}`]),
      fix: `apt-get install -y ${pkg}`,
    });
  }
  // Needs root to make a namespace to try nft in; the name is unique and outside any lab's prefix.
  const probe = `ambitcheck${process.pid}`;
  out.push(
    process.getuid?.() === 0
      ? {
          what: 'nftables in the kernel',
          ok: await has('sh', [
            '-c',
            `ip netns add ${probe} && ip netns exec ${probe} nft list tables; r=$?; ip netns del ${probe}; exit $r`,
          ]),
          fix: 'load the nf_tables module (`modprobe nf_tables`) or use a kernel built with it',
        }
      : {
          what: 'nftables in the kernel (checked only as root)',
          ok: false,
          fix: 'run `ambit check` as root',
        },
  );
  const addon = resolve(import.meta.dirname, '../../build/Release/orig_dst.node');
  out.push({
    what: 'SO_ORIGINAL_DST addon built',
    ok: existsSync(addon),
    fix: 'run `npm ci` with python3, make and g++ installed',
  });
  return out;
}

export function checkCommand(): Command {
  return new Command('check')
    .description('report missing prerequisites and how to fix them')
    .action(async () => {
      const found = await checks();
      console.log(
        table(
          ['CHECK', 'STATUS', 'FIX'],
          found.map((c) => [c.what, c.ok ? 'ok' : 'MISSING', c.ok ? '' : c.fix]),
        ),
      );
      if (found.some((c) => !c.ok)) process.exitCode = 1;
    });
}
