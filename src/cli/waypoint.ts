// `ambit waypoint apply|list|status|delete`, as `istioctl waypoint`: they write and read the Gateway
// (class istio-waypoint, HBONE on 15008) that declares a waypoint; the control plane places and runs it
// and reports it in the Gateway's status (`Programmed`, `addresses`). `--enroll-namespace` labels the
// Namespace `istio.io/use-waypoint`.

import { join } from 'node:path';
import { Command, Option } from 'commander';
import { stringify } from 'yaml';
import {
  type Condition,
  type GatewayResource,
  isDns1123Label,
  isDns1123Subdomain,
  type NamespaceResource,
  PORTS,
  WAYPOINT_CLASSES,
  WAYPOINT_FOR,
  type WaypointFor,
} from '../config/index.ts';
import { CONTROL_ERRORS } from '../control/index.ts';
import { AmbitError, hasCode } from '../errors/index.ts';
import { ambitHome } from '../lab/index.ts';
import type { MemoryReport } from '../proxy/index.ts';
import { waypointAdminSocket } from '../waypoint/index.ts';
import { parseDuration } from './ca.ts';
import { type AdminClient, adminClient, serverOption, tokenOption } from './client.ts';
import { CLI_ERRORS } from './errors.ts';
import { table } from './output.ts';
import { waypointProcess } from './waypoint-process.ts';
import { adminGet, memoryTable } from './ztunnel.ts';

/** The class `ambit waypoint apply` writes, as istioctl does (Ambit also accepts `ambit-waypoint`). */
export const WAYPOINT_CLASS = 'istio-waypoint';
export const DEFAULT_WAYPOINT_NAME = 'waypoint';
/** How many replicas the control plane runs (default 1); the control plane reads it. */
export const REPLICAS_ANNOTATION = 'ambit.dev/waypoint-replicas';
export const MAX_REPLICAS = 10;
/** istioctl's default for --waypoint-timeout is 90s; Ambit's --timeout is 60s. */
export const DEFAULT_TIMEOUT = '60s';

// Istio's label names (the registry reads them; control's front door does not export them to the CLI).
const WAYPOINT_FOR_LABEL = 'istio.io/waypoint-for';
const REVISION_LABEL = 'istio.io/rev';
const USE_WAYPOINT = 'istio.io/use-waypoint';
const USE_WAYPOINT_NAMESPACE = 'istio.io/use-waypoint-namespace';
const DATAPLANE_MODE = 'istio.io/dataplane-mode';

const GATEWAYS = '/apis/gateway.networking.k8s.io/v1';

/** A Gateway as the admin API returns it, with the status the control plane reports for a waypoint. */
export type WaypointGateway = Omit<GatewayResource, 'status'> & {
  status?: {
    conditions?: Condition[];
    addresses?: Array<{ type?: string; value: string }>;
  };
};

// ---- Flags: each parser names its flag in the error, before anything is sent. ----

/** `--name`: a Gateway name that fits the `istio.io/use-waypoint` label value; `none` is reserved. */
export function parseWaypointName(value: string, flag = '--name'): string {
  if (value === 'none') {
    throw new AmbitError(
      CLI_ERRORS.WAYPOINT_BAD_NAME,
      `${flag} "none" is reserved: istio.io/use-waypoint: none means "no waypoint"; pick another name`,
    );
  }
  if (!isDns1123Subdomain(value) || value.length > 63) {
    throw new AmbitError(
      CLI_ERRORS.WAYPOINT_BAD_NAME,
      `${flag} "${value}" must be a DNS-1123 name (lower-case letters, digits, "-" and "."), at most 63 characters, since the istio.io/use-waypoint label carries it`,
    );
  }
  return value;
}

export function parseNamespace(value: string): string {
  if (!isDns1123Label(value)) {
    throw new AmbitError(
      CLI_ERRORS.BAD_NAMESPACE,
      `-n/--namespace "${value}" must be a DNS-1123 label: lower-case letters, digits and "-", at most 63 characters`,
    );
  }
  return value;
}

export function parseWaypointFor(value: string): WaypointFor {
  if (!(WAYPOINT_FOR as readonly string[]).includes(value)) {
    throw new AmbitError(
      CLI_ERRORS.WAYPOINT_BAD_FOR,
      `--for "${value}" is not a traffic type; use one of ${WAYPOINT_FOR.join(', ')}`,
    );
  }
  return value as WaypointFor;
}

export function parseReplicas(value: string): number {
  const n = /^\d{1,3}$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!(n >= 1 && n <= MAX_REPLICAS)) {
    throw new AmbitError(
      CLI_ERRORS.WAYPOINT_BAD_REPLICAS,
      `--replicas must be a whole number from 1 to ${MAX_REPLICAS}, got "${value}"`,
    );
  }
  return n;
}

/** `--timeout` in milliseconds (90s, 2m, 1h30m); AMBIT_ERR_CLI_BAD_DURATION otherwise. */
export function parseTimeout(value: string): number {
  return parseDuration(value, '--timeout') * 1000;
}

export type OutputFormat = 'table' | 'json' | 'yaml';

export function parseOutput(value: string): OutputFormat {
  if (value !== 'table' && value !== 'json' && value !== 'yaml') {
    throw new AmbitError(
      CLI_ERRORS.BAD_OUTPUT,
      `-o/--output "${value}" is not a format; use table, json or yaml`,
    );
  }
  return value;
}

// ---- Decisions: plain objects in, plain objects out. ----

export interface WaypointSpec {
  namespace: string;
  name: string;
  /** Written as `istio.io/waypoint-for` only when given, as istioctl does (the default is `service`). */
  for?: WaypointFor;
  replicas?: number;
}

/** The Gateway `istioctl waypoint apply` writes, plus Ambit's replicas annotation when asked. */
export function waypointGateway(spec: WaypointSpec): WaypointGateway {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: {
      name: spec.name,
      namespace: spec.namespace,
      ...(spec.for === undefined ? {} : { labels: { [WAYPOINT_FOR_LABEL]: spec.for } }),
      ...(spec.replicas === undefined
        ? {}
        : { annotations: { [REPLICAS_ANNOTATION]: String(spec.replicas) } }),
    },
    spec: {
      gatewayClassName: WAYPOINT_CLASS,
      listeners: [{ name: 'mesh', port: PORTS.hbone, protocol: 'HBONE' }],
    },
  };
}

export function isWaypoint(gw: { spec?: { gatewayClassName?: string } }): boolean {
  return WAYPOINT_CLASSES.includes(gw.spec?.gatewayClassName ?? '');
}

function notAWaypoint(gw: WaypointGateway, what: string): AmbitError {
  return new AmbitError(
    CLI_ERRORS.NOT_A_WAYPOINT,
    `gateway ${gw.metadata.namespace ?? 'default'}/${gw.metadata.name} is of class "${gw.spec.gatewayClassName}", not a waypoint (${WAYPOINT_CLASSES.join(' or ')}); ${what}`,
  );
}

/**
 * What apply writes over a Gateway of the same name. Like istioctl's server-side apply, it sets only
 * what it owns (the `mesh` listener, the labels and annotation it was given) and keeps the rest: other
 * labels, annotations, listeners and spec fields, and an `ambit-waypoint` class. A Gateway that is not
 * a waypoint is refused rather than turned into one.
 */
export function mergeWaypoint(
  desired: WaypointGateway,
  existing: WaypointGateway | undefined,
): WaypointGateway {
  if (!existing) return desired;
  if (!isWaypoint(existing)) throw notAWaypoint(existing, 'pick another --name');
  const labels = { ...existing.metadata.labels, ...desired.metadata.labels };
  const annotations = { ...existing.metadata.annotations, ...desired.metadata.annotations };
  return {
    apiVersion: desired.apiVersion,
    kind: 'Gateway',
    metadata: {
      name: desired.metadata.name,
      namespace: desired.metadata.namespace,
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    },
    spec: {
      ...existing.spec,
      gatewayClassName: existing.spec.gatewayClassName,
      listeners: [...desired.spec.listeners, ...existing.spec.listeners.filter((l) => l.name !== 'mesh')],
    },
  };
}

/** Why `--enroll-namespace` must not go ahead (another waypoint already enrolled, no --overwrite). */
export function enrollmentConflict(
  ns: NamespaceResource,
  waypoint: string,
  overwrite: boolean,
): string | undefined {
  const current = ns.metadata.labels?.[USE_WAYPOINT];
  const elsewhere = ns.metadata.labels?.[USE_WAYPOINT_NAMESPACE];
  if (overwrite || current === undefined || (current === waypoint && elsewhere === undefined))
    return undefined;
  const which = elsewhere ? `${elsewhere}/${current}` : current;
  return `namespace ${ns.metadata.name} already uses waypoint ${which} (${USE_WAYPOINT}); pass --overwrite to enroll it with ${waypoint} instead`;
}

/**
 * The Namespace with `istio.io/use-waypoint: NAME` and its other labels kept. The namespace's own
 * waypoint is meant, so a `istio.io/use-waypoint-namespace` (which would point the label at another
 * namespace's waypoint of that name) is removed.
 */
export function enrolledNamespace(ns: NamespaceResource, waypoint: string): NamespaceResource {
  const { [USE_WAYPOINT_NAMESPACE]: _elsewhere, ...labels } = ns.metadata.labels ?? {};
  return {
    apiVersion: ns.apiVersion,
    kind: 'Namespace',
    metadata: {
      name: ns.metadata.name,
      labels: { ...labels, [USE_WAYPOINT]: waypoint },
      ...(ns.metadata.annotations ? { annotations: ns.metadata.annotations } : {}),
    },
    ...(ns.spec === undefined ? {} : { spec: ns.spec }),
  };
}

export function programmedCondition(gw: WaypointGateway): Condition | undefined {
  return gw.status?.conditions?.find((c) => c.type === 'Programmed');
}

export function isProgrammed(gw: WaypointGateway): boolean {
  return programmedCondition(gw)?.status === 'True';
}

/**
 * The condition `status` shows: `Programmed`, else the last one the control plane reported (as
 * istioctl shows it), else a placeholder saying nothing was reported.
 */
export function shownCondition(
  gw: WaypointGateway,
): Pick<Condition, 'type' | 'status' | 'reason' | 'message'> {
  return (
    programmedCondition(gw) ??
    gw.status?.conditions?.at(-1) ?? {
      type: 'Programmed',
      status: 'Unknown',
      reason: 'NoStatus',
      message: 'the control plane has reported no status for it',
    }
  );
}

function byNamespaceThenName(a: WaypointGateway, b: WaypointGateway): number {
  const ns = (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '');
  return ns !== 0 ? ns : a.metadata.name.localeCompare(b.metadata.name);
}

/** The waypoints among `gateways`, sorted by namespace then name. */
export function waypointsOf(gateways: readonly WaypointGateway[]): WaypointGateway[] {
  return gateways.filter(isWaypoint).sort(byNamespaceThenName);
}

/** istioctl's list columns; TRAFFIC TYPE shows the default `service` where istioctl shows `none`. */
export function listTable(waypoints: readonly WaypointGateway[], allNamespaces: boolean): string {
  return table(
    [...(allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'REVISION', 'TRAFFIC TYPE', 'PROGRAMMED'],
    waypoints.map((gw) => [
      ...(allNamespaces ? [gw.metadata.namespace ?? 'default'] : []),
      gw.metadata.name,
      gw.metadata.labels?.[REVISION_LABEL] ?? 'default',
      gw.metadata.labels?.[WAYPOINT_FOR_LABEL] ?? 'service',
      programmedCondition(gw)?.status ?? 'False',
    ]),
  );
}

export function statusTable(waypoints: readonly WaypointGateway[]): string {
  return table(
    ['NAMESPACE', 'NAME', 'STATUS', 'TYPE', 'REASON', 'MESSAGE'],
    waypoints.map((gw) => {
      const c = shownCondition(gw);
      return [gw.metadata.namespace ?? 'default', gw.metadata.name, c.status, c.type, c.reason, c.message];
    }),
  );
}

/** One line for an error message: what the Gateway's status says now. */
export function describeStatus(gw: WaypointGateway | undefined): string {
  if (!gw) return 'it could not be read';
  const c = shownCondition(gw);
  return `${c.type}=${c.status} (${c.reason}): ${c.message}`;
}

// ---- Actions: thin calls to the admin API. ----

function gatewaysPath(namespace: string | undefined): string {
  return namespace === undefined
    ? `${GATEWAYS}/gateways`
    : `${GATEWAYS}/namespaces/${encodeURIComponent(namespace)}/gateways`;
}

function gatewayPath(namespace: string, name: string): string {
  return `${gatewaysPath(namespace)}/${encodeURIComponent(name)}`;
}

/** GET that answers undefined for 404 (AMBIT_ERR_API_NOT_FOUND). */
async function getIfExists<T>(api: AdminClient, path: string): Promise<T | undefined> {
  try {
    return await api.call<T>('GET', path);
  } catch (err) {
    if (hasCode(err, CONTROL_ERRORS.API_NOT_FOUND)) return undefined;
    throw err;
  }
}

async function listWaypoints(api: AdminClient, namespace: string | undefined): Promise<WaypointGateway[]> {
  const { items } = await api.call<{ items: WaypointGateway[] }>('GET', gatewaysPath(namespace));
  return waypointsOf(items);
}

async function readNamespace(api: AdminClient, name: string): Promise<NamespaceResource> {
  const ns = await getIfExists<NamespaceResource>(api, `/api/v1/namespaces/${encodeURIComponent(name)}`);
  if (!ns) {
    throw new AmbitError(
      CLI_ERRORS.NO_NAMESPACE,
      `namespace ${name} not found: --enroll-namespace labels an existing Namespace; apply one first (kind: Namespace, usually with ${DATAPLANE_MODE}: ambient)`,
    );
  }
  return ns;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Polls the Gateway every `intervalMs` until `Programmed` is True; after `timeoutMs` throws
 * AMBIT_ERR_CLI_WAYPOINT_TIMEOUT with what its status last said.
 */
export async function waitProgrammed(
  api: AdminClient,
  namespace: string,
  name: string,
  timeoutMs: number,
  intervalMs = 1000,
): Promise<WaypointGateway> {
  const deadline = Date.now() + timeoutMs;
  let last: WaypointGateway | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await api.call<WaypointGateway>('GET', gatewayPath(namespace, name));
      lastError = undefined;
      if (isProgrammed(last)) return last;
    } catch (err) {
      lastError = err;
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    await sleep(Math.min(intervalMs, left));
  }
  const said = lastError === undefined ? describeStatus(last) : `last error: ${(lastError as Error).message}`;
  throw new AmbitError(
    CLI_ERRORS.WAYPOINT_TIMEOUT,
    `timed out after ${timeoutMs / 1000}s waiting for waypoint ${namespace}/${name} to be programmed; ${said}`,
    { cause: lastError },
  );
}

interface ApplyFlags {
  namespace: string;
  name: string;
  for?: WaypointFor;
  enrollNamespace: boolean;
  overwrite: boolean;
  replicas?: number;
  wait: boolean;
  timeout: number;
  server?: string;
  token?: string;
}

async function apply(opts: ApplyFlags): Promise<void> {
  const api = adminClient(opts);
  const { namespace: ns, name } = opts;
  // As istioctl: a conflicting enrollment is found before anything is written.
  let namespace: NamespaceResource | undefined;
  if (opts.enrollNamespace) {
    namespace = await readNamespace(api, ns);
    const conflict = enrollmentConflict(namespace, name, opts.overwrite);
    if (conflict) throw new AmbitError(CLI_ERRORS.WAYPOINT_ENROLLED, conflict);
    if (namespace.metadata.labels?.[DATAPLANE_MODE] !== 'ambient') {
      console.error(
        `⚠️ Warning: namespace ${ns} is not enrolled in ambient. Consider labeling it ${DATAPLANE_MODE}=ambient`,
      );
    }
  }
  const existing = await getIfExists<WaypointGateway>(api, gatewayPath(ns, name));
  const gw = mergeWaypoint(
    waypointGateway({ namespace: ns, name, for: opts.for, replicas: opts.replicas }),
    existing,
  );
  await api.call('POST', '/ambit/v1/apply', { objects: [gw] });
  console.log(`✅ waypoint ${ns}/${name} applied`);
  if (opts.wait) {
    await waitProgrammed(api, ns, name, opts.timeout);
    console.log(`✅ waypoint ${ns}/${name} is ready!`);
  }
  // Labelled last, as istioctl does: traffic is sent to the waypoint only once it exists (and, with
  // --wait, runs). Read again: the namespace may have changed while we waited.
  if (namespace) {
    const latest = opts.wait ? await readNamespace(api, ns) : namespace;
    await api.call('POST', '/ambit/v1/apply', { objects: [enrolledNamespace(latest, name)] });
    console.log(`✅ namespace ${ns} labeled with "${USE_WAYPOINT}: ${name}"`);
  }
}

async function list(opts: {
  namespace: string;
  allNamespaces: boolean;
  output: OutputFormat;
  server?: string;
  token?: string;
}): Promise<void> {
  const items = await listWaypoints(adminClient(opts), opts.allNamespaces ? undefined : opts.namespace);
  if (opts.output === 'json')
    return void console.log(JSON.stringify({ apiVersion: 'v1', kind: 'List', items }, null, 2));
  if (opts.output === 'yaml')
    return void console.log(stringify({ apiVersion: 'v1', kind: 'List', items }).trimEnd());
  if (items.length === 0) return void console.error('No waypoints found.');
  console.log(listTable(items, opts.allNamespaces));
}

async function status(opts: {
  namespace: string;
  name?: string;
  server?: string;
  token?: string;
}): Promise<void> {
  const api = adminClient(opts);
  let items: WaypointGateway[];
  if (opts.name) {
    const gw = await getIfExists<WaypointGateway>(api, gatewayPath(opts.namespace, opts.name));
    if (!gw) {
      throw new AmbitError(CONTROL_ERRORS.API_NOT_FOUND, `waypoint ${opts.namespace}/${opts.name} not found`);
    }
    if (!isWaypoint(gw)) throw notAWaypoint(gw, 'it has no waypoint status');
    items = [gw];
  } else {
    items = await listWaypoints(api, opts.namespace);
  }
  if (items.length === 0) return void console.error('No waypoints found.');
  console.log(statusTable(items));
}

async function remove(
  names: string[],
  opts: { namespace: string; all: boolean; server?: string; token?: string },
): Promise<void> {
  if (opts.all && names.length > 0)
    throw new AmbitError(
      CLI_ERRORS.USAGE,
      'cannot specify waypoint names when deleting all waypoints (--all)',
    );
  if (!opts.all && names.length === 0)
    throw new AmbitError(CLI_ERRORS.USAGE, 'must specify a waypoint name or delete all using --all');
  for (const n of names) parseWaypointName(n, 'waypoint name');
  const api = adminClient(opts);
  const ns = opts.namespace;
  let targets: string[];
  let missing = false;
  if (opts.all) {
    targets = (await listWaypoints(api, ns)).map((gw) => gw.metadata.name);
    if (targets.length === 0) return void console.error(`No waypoints found in namespace ${ns}.`);
  } else {
    targets = [];
    const refused: AmbitError[] = [];
    for (const name of [...new Set(names)]) {
      const gw = await getIfExists<WaypointGateway>(api, gatewayPath(ns, name));
      if (!gw) {
        console.log(`waypoint ${ns}/${name} not found`);
        missing = true;
      } else if (!isWaypoint(gw))
        refused.push(notAWaypoint(gw, 'ambit waypoint delete deletes waypoints only'));
      else targets.push(name);
    }
    // Refused before anything is deleted, so a typo never removes half of the list.
    if (refused.length > 0) {
      throw new AmbitError(
        CLI_ERRORS.NOT_A_WAYPOINT,
        `nothing was deleted: ${refused.map((e) => e.message).join('; ')}`,
      );
    }
  }
  if (targets.length > 0) {
    const { results } = await api.call<{ results: Array<{ name: string; action: string }> }>(
      'POST',
      '/ambit/v1/delete',
      { refs: targets.map((name) => ({ kind: 'Gateway', namespace: ns, name })) },
    );
    for (const [i, r] of results.entries()) {
      const name = targets[i] ?? r.name;
      if (r.action === 'not found') missing = true;
      console.log(`waypoint ${ns}/${name} ${r.action === 'not found' ? 'not found' : 'deleted'}`);
    }
  }
  if (missing) process.exitCode = 1;
}

function namespaceOption(cmd: Command): Command {
  return cmd.option('-n, --namespace <ns>', 'namespace', parseNamespace, 'default');
}

function withServer(cmd: Command): Command {
  return cmd.addOption(serverOption()).addOption(tokenOption());
}

interface ReplicaView {
  name: string;
  namespace: string;
  node?: string;
  isWaypoint: boolean;
  labels: Record<string, string>;
}

/** `ambit waypoint config NAME [routes|clusters|endpoints|policies|memory|all]`: each replica's view, from its node's data directory. */
async function config(
  name: string,
  what: 'routes' | 'clusters' | 'endpoints' | 'policies' | 'memory' | 'all',
  opts: { namespace: string; output: OutputFormat; server?: string; token?: string },
): Promise<void> {
  const { items } = await adminClient(opts).call<{ items: ReplicaView[] }>(
    'GET',
    `/ambit/v1/workloads?namespace=${encodeURIComponent(opts.namespace)}`,
  );
  const replicas = items.filter(
    (w) => w.isWaypoint && w.labels['gateway.networking.k8s.io/gateway-name'] === name && w.node,
  );
  if (replicas.length === 0) {
    throw new AmbitError(
      CLI_ERRORS.NO_REPLICA,
      `waypoint ${opts.namespace}/${name} has no replica placed on a node (see \`ambit waypoint status -n ${opts.namespace}\`)`,
    );
  }
  const views =
    what === 'all' ? (['routes', 'clusters', 'endpoints', 'policies'] as const) : ([what] as const);
  const out: Record<string, Record<string, unknown>> = {};
  for (const r of replicas) {
    const socket = waypointAdminSocket(join(ambitHome(), 'nodes', r.node!), r.name);
    out[r.name] = {};
    for (const v of views) out[r.name]![v] = await adminGet(socket, `/${v}`, 'waypoint');
  }
  if (opts.output === 'json') return void console.log(JSON.stringify(out, null, 2));
  for (const [replica, got] of Object.entries(out)) {
    console.log(`# ${opts.namespace}/${name} replica ${replica}`);
    const routes = got.routes as { httpRoutes: RouteLike[]; grpcRoutes: RouteLike[] } | undefined;
    if (routes) {
      const rows = [...routes.httpRoutes, ...routes.grpcRoutes].map((r) => [
        r.kind,
        `${r.metadata.namespace ?? 'default'}/${r.metadata.name}`,
        (r.spec.parentRefs ?? [])
          .map((p) => `${p.kind ?? 'Gateway'}/${p.name}${p.port ? `:${p.port}` : ''}`)
          .join(','),
        String(r.spec.rules?.length ?? 0),
      ]);
      console.log(rows.length ? table(['KIND', 'ROUTE', 'PARENTS', 'RULES'], rows) : 'no routes');
    }
    const clusters = got.clusters as { clusters: Array<Record<string, string | number>> } | undefined;
    if (clusters) {
      console.log(
        table(
          ['CLUSTER', 'SERVICE', 'PROTOCOL', 'ENDPOINTS'],
          clusters.clusters.map((c) => [
            String(c.name),
            String(c.service),
            String(c.protocol),
            String(c.endpoints),
          ]),
        ),
      );
    }
    const endpoints = got.endpoints as
      | {
          endpoints: Array<{
            cluster: string;
            endpoints: Array<{ address: string; port: number; identity: string }>;
          }>;
        }
      | undefined;
    if (endpoints) {
      const rows = endpoints.endpoints.flatMap((c) =>
        c.endpoints.map((e) => [c.cluster, `${e.address}:${e.port}`, e.identity]),
      );
      console.log(rows.length ? table(['CLUSTER', 'ENDPOINT', 'IDENTITY'], rows) : 'no endpoints');
    }
    const policies = got.policies as PoliciesView | undefined;
    if (policies) printPolicies(policies);
    const memory = got.memory as MemoryReport | undefined;
    if (memory) console.log(memoryTable(memory));
  }
}

interface PoliciesView {
  targets: Array<{
    target: string;
    authorizationPolicies: Array<{ name: string; action: string; dryRun?: boolean; provider?: string }>;
    requestAuthentications: string[];
    rateLimitPolicies: string[];
  }>;
  routeRateLimitPolicies: string[];
  jwks: Array<{ uri: string; ok: boolean; keys?: number; error?: string }>;
  rateLimiter: { redis?: { url: string; ok: boolean; error?: string }; localBuckets: number };
}

/** The request policies a replica enforces, per target, in evaluation order. */
function printPolicies(p: PoliciesView): void {
  const rows = p.targets.flatMap((t) => [
    ...t.authorizationPolicies.map((a) => [
      t.target,
      'AuthorizationPolicy',
      a.name,
      `${a.action}${a.provider ? ` (${a.provider})` : ''}${a.dryRun ? ' dry-run' : ''}`,
    ]),
    ...t.requestAuthentications.map((r) => [t.target, 'RequestAuthentication', r, '']),
    ...t.rateLimitPolicies.map((r) => [t.target, 'RateLimitPolicy', r, '']),
  ]);
  for (const r of p.routeRateLimitPolicies) rows.push(['(its routes)', 'RateLimitPolicy', r, '']);
  console.log(rows.length ? table(['TARGET', 'KIND', 'POLICY', 'ACTION'], rows) : 'no policies');
  for (const j of p.jwks)
    console.log(`jwks ${j.uri}: ${j.ok ? `ok, ${j.keys ?? 0} key(s)` : `failing: ${j.error}`}`);
  const redis = p.rateLimiter.redis;
  if (redis) console.log(`rate-limit redis ${redis.url}: ${redis.ok ? 'ok' : `failing: ${redis.error}`}`);
}

interface RouteLike {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec: { parentRefs?: Array<{ kind?: string; name: string; port?: number }>; rules?: unknown[] };
}

/**
 * `ambit waypoint` and its subcommands. The parent has no action yet; its options are positional so
 * that options a later `ambit waypoint` process action adds (say `--token`) are never taken from a
 * subcommand's arguments.
 */
export function waypointCommand(): Command {
  const waypoint = waypointProcess(new Command('waypoint'))
    .description(
      'manage waypoints (the L7 proxies of ambient mode), as istioctl waypoint does; with no subcommand, run one waypoint replica',
    )
    .enablePositionalOptions();

  const applyCmd = new Command('apply')
    .description('create or update a waypoint Gateway (class istio-waypoint, HBONE on 15008)')
    .option(
      '--name <name>',
      'name of the waypoint',
      (v: string) => parseWaypointName(v),
      DEFAULT_WAYPOINT_NAME,
    )
    .option(
      '--for <type>',
      `traffic type: ${WAYPOINT_FOR.join(', ')} (unset: the default, service)`,
      parseWaypointFor,
    )
    .option('--enroll-namespace', 'label the namespace istio.io/use-waypoint: NAME', false)
    .option('--overwrite', 'with --enroll-namespace, replace the waypoint the namespace already uses', false)
    .option(
      '--replicas <n>',
      `replicas the control plane runs (1..${MAX_REPLICAS}; default 1)`,
      parseReplicas,
    )
    .option('-w, --wait', 'wait until the waypoint is programmed (its replicas run)', false)
    .addOption(
      new Option('--timeout <duration>', 'with --wait, how long to wait (90s, 2m)')
        .argParser(parseTimeout)
        .default(parseTimeout(DEFAULT_TIMEOUT), DEFAULT_TIMEOUT),
    )
    .action((opts: ApplyFlags) => apply(opts));
  const listCmd = new Command('list')
    .description('list the waypoints of a namespace, or of all (-A)')
    .option('-A, --all-namespaces', 'every namespace', false)
    .option('-o, --output <format>', 'table, json or yaml', parseOutput, 'table' as OutputFormat)
    .action(list);
  const statusCmd = new Command('status')
    .description("show each waypoint's Programmed condition (else the last condition reported)")
    .option('--name <name>', 'only this waypoint', (v: string) => parseWaypointName(v))
    .action(status);
  const deleteCmd = new Command('delete')
    .description('delete waypoints by name, or every waypoint of the namespace (--all)')
    .argument('[names...]', 'waypoint names')
    .option('--all', 'delete every waypoint in the namespace', false)
    .action(remove);

  const configCmd = new Command('config')
    .description(
      "what a waypoint's replicas hold, read from their admin sockets (as istioctl's proxy-config)",
    )
    .argument('<name>', 'the waypoint')
    .addArgument(
      new Command()
        .createArgument(
          '[what]',
          'routes, clusters, endpoints, policies, memory or all (every view but memory)',
        )
        .choices(['routes', 'clusters', 'endpoints', 'policies', 'memory', 'all'])
        .default('all'),
    )
    .option('-o, --output <format>', 'table or json', parseOutput, 'table' as OutputFormat)
    .action(config);

  for (const cmd of [applyCmd, listCmd, statusCmd, deleteCmd, configCmd]) {
    waypoint.addCommand(withServer(namespaceOption(cmd)));
  }
  return waypoint;
}
