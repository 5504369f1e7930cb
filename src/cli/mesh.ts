// The derived views of the mesh: `ambit get workloads`, `ambit get services`, `ambit describe` and
// `ambit proxy-status`, read from the control plane's registry and config stream.

import type { Command as CommandType } from 'commander';
import { Command, Option } from 'commander';
import { stringify } from 'yaml';
import { issueNamespace, type ProxyStatus } from '../control/index.ts';
import type {
  ServiceView as RegistryServiceView,
  WorkloadView as RegistryWorkloadView,
} from '../dashboard/index.ts';
import { meshMode } from '../xds/index.ts';
import { type AdminClient, adminClient } from './client.ts';
import type { GetOptions } from './config.ts';
import { l7Lines, listAll } from './describe-l7.ts';
import { table } from './output.ts';

/** The registry's workload view, as `get workloads` and `describe` read it (the dashboard reads less of it). */
export interface WorkloadView extends RegistryWorkloadView {
  enrollment: string;
  waypoint?: { name: string; namespace: string; from: string; via: string };
  authorizationPolicies: Array<{ policy: string; scope: string; enforcedBy: string; why: string }>;
  peerAuthentication: { mode: string; source: string; ports?: Record<string, string> };
}

/** The registry's service view. */
export interface ServiceView extends RegistryServiceView {
  key: string;
}

function client(cmd: CommandType): AdminClient {
  return adminClient(cmd.optsWithGlobals<{ server?: string; token?: string }>());
}

function print<T>(
  items: T[],
  output: GetOptions['output'],
  headers: string[],
  row: (item: T) => string[],
): void {
  if (output === 'json') console.log(JSON.stringify({ items }, null, 2));
  else if (output === 'yaml') console.log(stringify({ items }).trimEnd());
  else if (items.length === 0) console.error('No resources found.');
  else console.log(table(headers, items.map(row)));
}

/** `get workloads` and `get services`: handlers for getCommand's derived views. */
export const derivedViews: Record<string, (cmd: CommandType, opts: GetOptions) => Promise<void>> = {
  workloads: async (cmd, opts) => {
    const ns = opts.allNamespaces ? '' : `?namespace=${encodeURIComponent(opts.namespace)}`;
    let { items } = await client(cmd).call<{ items: WorkloadView[] }>('GET', `/ambit/v1/workloads${ns}`);
    if (opts.name) items = items.filter((w) => w.name === opts.name);
    const wide = opts.output === 'wide';
    print(
      items,
      opts.output,
      [
        'NAMESPACE',
        'NAME',
        'ADDRESS',
        'NODE',
        'IDENTITY',
        'MESH',
        'WAYPOINT',
        ...(wide ? ['SERVICES', 'MTLS'] : []),
      ],
      (w) => [
        w.namespace,
        w.name,
        w.addresses.join(',') || '-',
        w.node ?? '-',
        w.identity,
        meshMode(w),
        w.waypoint ? `${w.waypoint.namespace}/${w.waypoint.name}` : '-',
        ...(wide ? [w.services.join(',') || '-', w.peerAuthentication.mode] : []),
      ],
    );
  },
  services: async (cmd, opts) => {
    const ns = opts.allNamespaces ? '' : `?namespace=${encodeURIComponent(opts.namespace)}`;
    let { items } = await client(cmd).call<{ items: ServiceView[] }>('GET', `/ambit/v1/services${ns}`);
    if (opts.name) items = items.filter((s) => s.name === opts.name);
    print(items, opts.output, ['NAMESPACE', 'NAME', 'VIP', 'PORTS', 'ENDPOINTS', 'WAYPOINT'], (s) => [
      s.namespace,
      s.name,
      s.vips.join(',') || 'None',
      s.ports.map((p) => `${p.port}→${p.targetPort}`).join(',') || '-',
      s.endpoints.map((e) => e.address).join(',') || '<none>',
      s.waypoint ? `${s.waypoint.namespace}/${s.waypoint.name}` : '-',
    ]);
  },
  /** What the registry found wrong or ignored: address conflicts, revoked nodes, UDP ports, … */
  issues: async (cmd, opts) => {
    let { items } = await client(cmd).call<{ items: Array<{ object: string; message: string }> }>(
      'GET',
      '/ambit/v1/issues',
    );
    if (!opts.allNamespaces) items = items.filter((i) => issueNamespace(i.object) === opts.namespace);
    if (opts.name) items = items.filter((i) => i.object.endsWith(`/${opts.name}`));
    print(items, opts.output, ['OBJECT', 'ISSUE'], (i) => [i.object, i.message]);
  },
};

export function describeCommand(): Command {
  return new Command('describe')
    .description('explain a workload or service: identity, node, addresses, waypoint, policies and why')
    .addArgument(
      new Command().createArgument('<kind>', 'workload or service').choices(['workload', 'service']),
    )
    .argument('<name>')
    .option('-n, --namespace <ns>', 'namespace', 'default')
    .option('--server <url>', 'control plane admin API; default $AMBIT_SERVER')
    .action(async (kind: string, name: string, opts: { namespace: string }, cmd: CommandType) => {
      const { lines } = await describeLines(
        client(cmd),
        kind === 'service' ? 'service' : 'workload',
        name,
        opts.namespace,
      );
      for (const line of lines) console.log(line);
    });
}

/**
 * What `ambit describe` says of a workload or service, line by line (the dashboard shows the same), with
 * the registry's view it was written from.
 */
export async function describeLines(
  api: AdminClient,
  kind: 'workload' | 'service',
  name: string,
  namespace: string,
): Promise<{ lines: string[]; workload?: WorkloadView; service?: ServiceView }> {
  const q = `kind=${kind}&name=${encodeURIComponent(name)}&namespace=${encodeURIComponent(namespace)}`;
  const res = await api.call<{ workload?: WorkloadView; service?: ServiceView }>(
    'GET',
    `/ambit/v1/describe?${q}`,
  );
  const lines: string[] = [];
  const say = (line: string) => lines.push(line);
  if (res.service) {
    const s = res.service;
    say(`Service:    ${s.namespace}/${s.name}`);
    say(`Hostname:   ${s.hostname}`);
    say(`VIPs:       ${s.vips.join(', ') || 'none'}`);
    say(
      `Ports:      ${s.ports.map((p) => `${p.name ?? '-'} ${p.port}→${p.targetPort}`).join(', ') || 'none'}`,
    );
    say(`Waypoint:   ${s.waypoint ? `${s.waypoint.namespace}/${s.waypoint.name}` : 'none'}`);
    say('Endpoints:');
    for (const e of s.endpoints) say(`  ${e.name}  ${e.address}  node=${e.node ?? '-'}  mesh=${meshMode(e)}`);
    say('Routes:');
    const routes = await attachedRoutes(api, s.namespace, s.name);
    if (routes.length === 0) say('  none (requests go to the service itself)');
    for (const r of routes) say(`  ${r}`);
    say('L7:');
    for (const line of await l7Lines(api, s.namespace, [`${s.namespace}/${s.name}`], s.waypoint)) say(line);
    return { lines, service: s };
  }
  const w = res.workload!;
  say(`Workload:   ${w.namespace}/${w.name} (${w.kind})`);
  say(`Identity:   ${w.identity}`);
  say(`Node:       ${w.node ?? 'none'}`);
  say(`Addresses:  ${w.addresses.join(', ') || 'none'}`);
  say(`Mesh:       ${meshMode(w)} (${w.enrollment})`);
  say(
    `Waypoint:   ${w.waypoint ? `${w.waypoint.namespace}/${w.waypoint.name} (label on ${w.waypoint.from} ${w.waypoint.via})` : 'none'}`,
  );
  say(`Services:   ${w.services.join(', ') || 'none'}`);
  say(`mTLS:       ${w.peerAuthentication.mode} (from ${w.peerAuthentication.source})`);
  say('Authorization policies:');
  if (w.authorizationPolicies.length === 0) say('  none (all connections allowed)');
  for (const b of w.authorizationPolicies)
    say(`  ${b.policy}  [${b.scope}, enforced by ${b.enforcedBy}]  ${b.why}`);
  say('L7 (traffic to its services):');
  // A sidecar pod's own proxy authorizes each request on its HTTP ports; a waypoint, if it has one, too.
  if (w.sidecar)
    say(
      '  at its sidecar: the authorization policies above enforced by sidecar, per request, on the ports its Services declare HTTP, HTTP/2 or gRPC (no RequestAuthentication, rate limits or tracing there)',
    );
  if (!w.sidecar || w.waypoint)
    for (const line of await l7Lines(api, w.namespace, w.services, w.waypoint)) say(line);
  return { lines, workload: w };
}

export function proxyStatusCommand(): Command {
  return new Command('proxy-status')
    .description(
      "every proxy connected to the control plane's replicas: which replica, synced, stale or NACKed, with versions",
    )
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
    )
    .option('--server <url>', 'control plane admin API; default $AMBIT_SERVER')
    .action(async (opts: { output: string }, cmd: CommandType) => {
      const api = client(cmd);
      const res = await api.call<{ version: string; items: Array<ProxyStatus & { controlPlane?: string }> }>(
        'GET',
        '/ambit/v1/proxies',
      );
      // An older control plane has no replicas view: the proxies are shown all the same.
      const replicas = await api
        .call<{ self: string; items: ReplicaRow[] }>('GET', '/ambit/v1/replicas')
        .catch(() => undefined);
      if (opts.output === 'json') {
        console.log(JSON.stringify({ ...res, ...(replicas ? { replicas: replicas.items } : {}) }, null, 2));
        return;
      }
      // The replicas, when there is more than one to tell apart or one cannot write its store.
      if (replicas && (replicas.items.length > 1 || replicas.items.some((r) => !r.store.writable))) {
        console.log(replicaTable(replicas));
        console.log();
      }
      if (res.items.length === 0) {
        console.error('No proxies connected.');
        return;
      }
      const short = (t: string) => t.replace('ambit.dev/', '');
      console.log(
        table(
          ['NAME', 'KIND', 'STATE', 'VERSION', 'CONTROL PLANE', 'TYPES'],
          res.items.map((p) => [
            p.name,
            p.kind,
            p.state,
            ackedVersion(p.types),
            p.controlPlane ?? '-',
            Object.entries(p.types)
              .map(
                ([t, s]) => `${short(t)}=${s.nack ? `NACK(${s.nack.error})` : (s.ackedVersion ?? 'pending')}`,
              )
              .join(' '),
          ]),
        ),
      );
    });
}

/** The version a proxy ACKed for all its types (its replica's snapshot version), or `mixed`/`pending`. */
function ackedVersion(types: Record<string, { ackedVersion?: string }>): string {
  const versions = new Set(Object.values(types).map((t) => t.ackedVersion ?? 'pending'));
  return versions.size === 1 ? [...versions][0]! : versions.size === 0 ? '-' : 'mixed';
}

/** A control-plane replica as `/ambit/v1/replicas` lists it. */
export interface ReplicaRow {
  replica: string;
  grpc: string;
  duties: string[];
  store: { kind: string; writable: boolean; error?: string };
  proxies: number;
  at: string;
}

/** The replicas, the one that answered marked, with each one's duties, proxies and store health. */
export function replicaTable(res: { self: string; items: ReplicaRow[] }): string {
  return table(
    ['CONTROL PLANE', 'DUTIES', 'PROXIES', 'STORE'],
    res.items.map((r) => [
      r.replica === res.self ? `${r.replica} (answered)` : r.replica,
      r.duties.join(',') || '-',
      String(r.proxies),
      `${r.store.kind}: ${r.store.writable ? 'writable' : `NOT WRITABLE (${r.store.error ?? 'unknown'})`}`,
    ]),
  );
}

interface RouteView {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec: { parentRefs?: Array<{ kind?: string; name: string; namespace?: string }> };
  status?: { conditions?: Array<{ type: string; status: string; reason: string; message: string }> };
}

/** The HTTPRoutes and GRPCRoutes whose parentRefs name the Service, each with its Accepted condition. */
async function attachedRoutes(
  api: ReturnType<typeof client>,
  namespace: string,
  name: string,
): Promise<string[]> {
  const out: string[] = [];
  for (const plural of ['httproutes', 'grpcroutes']) {
    // Every namespace's (consumer routes live in the clients' namespaces); a token that may read only
    // some namespaces sees the routes of the Service's own.
    const items = await listAll<RouteView>(api, '/apis/gateway.networking.k8s.io/v1', plural, namespace);
    for (const r of items) {
      const own = r.metadata.namespace ?? 'default';
      const attached = (r.spec.parentRefs ?? []).some(
        (p) => p.kind === 'Service' && p.name === name && (p.namespace ?? own) === namespace,
      );
      if (!attached) continue;
      const c = r.status?.conditions?.find((x) => x.type === 'Accepted');
      out.push(
        `${r.kind} ${own}/${r.metadata.name}  Accepted=${c?.status ?? 'Unknown'} (${c?.reason ?? '-'}): ${c?.message ?? ''}`,
      );
    }
  }
  return out;
}
