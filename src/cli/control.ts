// `ambit control`: runs the control plane in the foreground until SIGTERM or SIGINT.

import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { isCidr } from '../config/index.ts';
import {
  loadControlConfig,
  REPLICA_NAME,
  REPLICA_NAME_RULE,
  startControlPlane,
  storeChoice,
} from '../control/index.ts';
import { parseUpstreams } from '../dns/index.ts';
import { AmbitError } from '../errors/index.ts';
import { ambitHome } from '../lab/index.ts';
import { adminClient, serverOption, tokenFile, tokenOption } from './client.ts';
import { exportCommand, importCommand } from './control-export.ts';
import { CLI_ERRORS } from './errors.ts';
import { table } from './output.ts';
import { serveUntilSignal } from './serve.ts';

interface ControlFlags {
  config?: string;
  dataDir?: string;
  adminListen?: string;
  adminListenAllowRemote?: boolean;
  adminSocket?: string;
  adminMaxWatches?: number;
  grpcListen: string;
  trustDomain: string;
  labState?: string;
  reservedCidrs?: string[];
  dnsListen?: string;
  dnsUpstream?: string;
  store?: 'embedded' | 'etcd';
  etcdEndpoints?: string;
  etcdPrefix?: string;
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdMaxTxnOps?: number;
  replicaName?: string;
}

export function controlCommand(): Command {
  const control = new Command('control')
    .description('run the control plane: store, admin API (Unix socket), CA and config stream (15010)')
    .option(
      '--config <file>',
      'YAML with these settings (dataDir, adminListen, adminListenAllowRemote, adminSocket, adminMaxWatches, grpcListen, trustDomain, rootNamespace, vipRange, labState, reservedCidrs, dnsListen, dnsUpstream, store, etcdEndpoints, etcdPrefix, etcdCa, etcdCert, etcdKey, etcdMaxTxnOps, replicaName); flags win',
    )
    .option('--data-dir <dir>', 'where the store, CA and socket live (default $AMBIT_HOME/control)')
    .option(
      '--admin-listen <host:port>',
      'also serve the admin API on TCP, with bearer tokens (`ambit control admin-token create`); default: none',
    )
    .option(
      '--admin-listen-allow-remote',
      'allow --admin-listen on a non-loopback address (tokens travel in clear)',
    )
    .option(
      '--admin-socket <path>',
      'admin API Unix socket, for root and this user only (default <data-dir>/admin.sock; "" for none)',
    )
    .option('--admin-max-watches <n>', 'open watches at most on the admin API (default 100)', positiveInt)
    .option('--grpc-listen <host:port>', 'CA and config stream (TLS, authenticated)', '0.0.0.0:15010')
    .option('--trust-domain <domain>', 'SPIFFE trust domain', 'cluster.local')
    .option(
      '--lab-state <file>',
      "the lab's state file, read as the pod API: its pods are the workloads on each node",
    )
    .option(
      '--reserved-cidrs <cidrs>',
      "the mesh's infrastructure addresses (nodes, pod gateways, control plane), comma-separated: no WorkloadEntry may claim one",
      cidrList,
    )
    .option(
      '--dns-listen <host:port>',
      'serve cluster DNS (<svc>.<ns>.svc.cluster.local) on UDP and TCP here (the lab: 198.18.0.254:53); default: none',
    )
    .option(
      '--dns-upstream <addresses>',
      'where the cluster DNS forwards names outside cluster.local: host[:port],…; default: none (they are refused)',
    )
    .addOption(
      new Option(
        '--store <kind>',
        'where resources are kept: embedded (in the data directory) or etcd',
      ).choices(['embedded', 'etcd']),
    )
    .option(
      '--etcd-endpoints <urls>',
      "the etcd members' client URLs, comma-separated (http://127.0.0.1:2379)",
    )
    .option('--etcd-prefix <prefix>', 'the key prefix the resources live under (default /ambit)')
    .option('--etcd-ca <file>', 'for https:// endpoints: the CA that signed the members (PEM)')
    .option('--etcd-cert <file>', "this client's certificate, when the members ask for one (PEM)")
    .option('--etcd-key <file>', 'its private key (PEM)')
    .option(
      '--etcd-max-txn-ops <n>',
      'operations the members take in one transaction: their --max-txn-ops (default 128), the most resources one apply may write',
      positiveInt,
    )
    .option(
      '--replica-name <name>',
      "this replica's name among the control plane's replicas on one etcd (default: its gRPC address, with the host's name for 0.0.0.0)",
      replicaName,
    )
    .action(async (opts: ControlFlags, cmd: Command) => {
      const file = opts.config ? await loadControlConfig(opts.config) : {};
      // A flag typed on the command line wins over the file; the file wins over flag defaults.
      const pick = <K extends keyof ControlFlags & keyof typeof file>(key: K) =>
        cmd.getOptionValueSource(key) === 'cli' ? opts[key] : (file[key] ?? opts[key]);
      const upstreams = pick('dnsUpstream');
      const store = await storeChoice({
        store: pick('store'),
        etcdEndpoints: pick('etcdEndpoints'),
        etcdPrefix: pick('etcdPrefix'),
        etcdCa: pick('etcdCa'),
        etcdCert: pick('etcdCert'),
        etcdKey: pick('etcdKey'),
        etcdMaxTxnOps: pick('etcdMaxTxnOps'),
      });
      const cp = await startControlPlane({
        store,
        dataDir: pick('dataDir') ?? join(ambitHome(), 'control'),
        adminListen: pick('adminListen'),
        adminListenAllowRemote: pick('adminListenAllowRemote'),
        adminSocket: pick('adminSocket'),
        adminMaxWatches: pick('adminMaxWatches'),
        grpcListen: pick('grpcListen'),
        trustDomain: pick('trustDomain'),
        labState: pick('labState'),
        replicaName: pick('replicaName'),
        dnsListen: pick('dnsListen'),
        dnsUpstreams: upstreams === undefined ? [] : parseUpstreams(upstreams),
        registry: {
          rootNamespace: file.rootNamespace,
          vipRange: file.vipRange,
          reservedCidrs: pick('reservedCidrs'),
        },
      });
      const where = [
        ...(cp.adminSocket ? [`unix:${cp.adminSocket}`] : []),
        ...(cp.adminAddress ? [`http://${cp.adminAddress} (bearer tokens)`] : []),
      ];
      const dns = cp.dnsAddress ? `, cluster DNS on ${cp.dnsAddress}` : '';
      const kept =
        store.kind === 'etcd'
          ? `, resources in etcd (${store.etcd.endpoints.join(',')}${store.etcd.prefix})`
          : '';
      await serveUntilSignal(
        `control plane ready: admin API on ${where.join(' and ') || 'nothing'}, gRPC on ${cp.grpcAddress}${dns}${kept}`,
        () => cp.close(),
      );
    });
  const token = control.command('token').description('join tokens that let a node join the mesh');
  token
    .command('create')
    .description('issue a single-use join token for a node')
    .requiredOption('--node <name>', 'the node that will use it')
    .option('--ttl <seconds>', 'how long it stays valid', '3600')
    .addOption(serverOption())
    .addOption(tokenOption())
    .action(async (opts: { node: string; ttl: string; server?: string; token?: string }) => {
      const ttlSeconds = Number(opts.ttl);
      if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) {
        throw new AmbitError(
          CLI_ERRORS.USAGE,
          `--ttl must be a positive whole number of seconds, got "${opts.ttl}"`,
        );
      }
      const res = await adminClient(opts).call<{ token: string }>('POST', '/ambit/v1/tokens', {
        node: opts.node,
        ttlSeconds,
      });
      console.log(res.token);
    });
  const nodeCmd = control.command('node').description('nodes of the mesh');
  nodeCmd
    .command('revoke')
    .description(
      "revoke a node's credential: its streams end, its certificate requests are refused, until it rejoins with a new token",
    )
    .requiredOption('--node <name>', 'the node')
    .addOption(serverOption())
    .addOption(tokenOption())
    .action(async (opts: { node: string; server?: string; token?: string }) => {
      const res = await adminClient(opts).call<{ streamsEnded: number }>('POST', '/ambit/v1/revoke-node', {
        node: opts.node,
      });
      console.log(`node ${opts.node} revoked (${res.streamsEnded} stream(s) ended)`);
    });
  control.addCommand(adminTokenCommand());
  control.addCommand(exportCommand());
  control.addCommand(importCommand());
  return control;
}

interface TokenInfo {
  name: string;
  role: string;
  namespaces: string[];
  createdAt: string;
  expiresAt?: string;
}

/** `ambit control admin-token create|list|revoke`: bearer tokens for a TCP admin listener. */
function adminTokenCommand(): Command {
  const cmd = new Command('admin-token').description(
    'bearer tokens for the admin API over TCP, each with a role: cluster-admin, or edit/view in namespaces',
  );
  cmd
    .command('create')
    .description('create a token and print it (it is shown only this once)')
    .addOption(
      new Option('--role <role>', 'what it may do')
        .choices(['cluster-admin', 'edit', 'view'])
        .makeOptionMandatory(),
    )
    .option('-n, --namespace <ns...>', 'for edit and view: the namespaces it reaches (repeatable)')
    .option('--name <name>', 'a name to list and revoke it by (default <role>-<random>)')
    .option('--ttl <duration>', 'how long it stays valid: 3600, 90s, 30m, 24h, 7d (default: until revoked)')
    .option('--save', 'also write it to $AMBIT_HOME/admin-token (0600), where the CLI looks for it', false)
    .addOption(serverOption())
    .addOption(tokenOption())
    .action(
      async (opts: {
        role: string;
        namespace?: string[];
        name?: string;
        ttl?: string;
        save: boolean;
        server?: string;
        token?: string;
      }) => {
        const res = await adminClient(opts).call<TokenInfo & { token: string }>(
          'POST',
          '/ambit/v1/admin-tokens',
          {
            role: opts.role,
            ...(opts.namespace ? { namespaces: opts.namespace } : {}),
            ...(opts.name ? { name: opts.name } : {}),
            ...(opts.ttl ? { ttlSeconds: parseDuration(opts.ttl, '--ttl') } : {}),
          },
        );
        console.log(res.token);
        if (opts.save) {
          const file = tokenFile();
          await mkdir(dirname(file), { recursive: true, mode: 0o700 });
          await writeFile(`${file}.tmp`, `${res.token}\n`, { mode: 0o600 });
          await rename(`${file}.tmp`, file);
        }
        console.error(
          `admin token ${res.name} (${describeRole(res)}${res.expiresAt ? `, expires ${res.expiresAt}` : ''}): it is not shown again${opts.save ? `; saved in ${tokenFile()}` : ''}`,
        );
      },
    );
  cmd
    .command('list')
    .description('list admin tokens (names, roles, expiry; never the secrets)')
    .addOption(serverOption())
    .addOption(tokenOption())
    .action(async (opts: { server?: string; token?: string }) => {
      const { items } = await adminClient(opts).call<{ items: TokenInfo[] }>('GET', '/ambit/v1/admin-tokens');
      if (items.length === 0) {
        console.error('No admin tokens.');
        return;
      }
      console.log(
        table(
          ['NAME', 'ROLE', 'NAMESPACES', 'CREATED', 'EXPIRES'],
          items.map((t) => [
            t.name,
            t.role,
            t.namespaces.join(',') || '*',
            t.createdAt,
            t.expiresAt ?? 'never',
          ]),
        ),
      );
    });
  cmd
    .command('revoke')
    .description('revoke an admin token by name: it stops working at once')
    .argument('<name>', 'the token name (see `list`)')
    .addOption(serverOption())
    .addOption(tokenOption())
    .action(async (name: string, opts: { server?: string; token?: string }) => {
      await adminClient(opts).call('DELETE', `/ambit/v1/admin-tokens/${encodeURIComponent(name)}`);
      console.log(`admin token ${name} revoked`);
    });
  return cmd;
}

function describeRole(t: TokenInfo): string {
  return t.namespaces.length > 0 ? `${t.role} in ${t.namespaces.join(', ')}` : t.role;
}

const UNITS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400 };

/** `3600`, `90s`, `30m`, `24h`, `7d` into seconds; a clear usage error otherwise. */
export function parseDuration(text: string, flag: string): number {
  const m = /^([0-9]{1,9})([smhd]?)$/.exec(text.trim());
  const seconds = m ? Number(m[1]) * UNITS[m[2]!]! : Number.NaN;
  if (!m || seconds <= 0) {
    throw new AmbitError(
      CLI_ERRORS.USAGE,
      `${flag} must be a duration such as 3600, 90s, 30m, 24h or 7d, got "${text}"`,
    );
  }
  return seconds;
}

/** `--reserved-cidrs a,b,c`: each an address or CIDR, or the flag is refused naming the bad one. */
function cidrList(value: string): string[] {
  const list = value
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '');
  const bad = list.find((c) => !isCidr(c));
  if (bad !== undefined)
    throw new InvalidArgumentError(`"${bad}" is not an address or CIDR (for example 198.18.0.0/24)`);
  return list;
}

function replicaName(value: string): string {
  if (!REPLICA_NAME.test(value)) throw new InvalidArgumentError(`--replica-name: ${REPLICA_NAME_RULE}`);
  return value;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n <= 0)
    throw new InvalidArgumentError(`expected a positive whole number, got "${value}"`);
  return n;
}
