// The overhead benchmark's lab work: one namespace per size N, with a client pod on node-1 and N server
// pods on node-2 (each an haproxy answering 200 itself, behind a Service of its own), and the moves from
// one mode to the next with their enrollment timed — ambient (a namespace label, until both nodes
// capture every pod), a waypoint (a Gateway and a label, until every Service answers through it) and
// sidecars (every pod re-created with `sidecar.istio.io/inject: "true"`, as a rollout restart does,
// until each pod's own proxy runs, is SYNCED and carries a request). Also: which proxy processes serve
// each mode, read from the lab's process records.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Mesh } from '../../src/cli/up.ts';
import { waitProgrammed, waypointGateway } from '../../src/cli/waypoint.ts';
import { SIDECAR_INJECT } from '../../src/config/index.ts';
import { DATAPLANE_MODE, USE_WAYPOINT } from '../../src/control/registry/index.ts';
import { type Lab, waitUntil } from '../../src/lab/index.ts';
import type { Procs } from '../l7/load.ts';
import { busyShare, hostTicks } from './measure.ts';

export const MODES = ['direct', 'ambient', 'waypoint', 'sidecar'] as const;
export type Mode = (typeof MODES)[number];
export const MODE_LABEL: Record<Mode, string> = {
  direct: 'direct (no mesh)',
  ambient: 'ambient L4 (ztunnels)',
  waypoint: 'ambient + waypoint',
  sidecar: 'sidecars',
};

const SERVER_PORT = 8080;
const SERVICE_PORT = 80;
const WAYPOINT = 'waypoint';
/**
 * The header the static server answers with: the request's `x-forwarded-proto`, which only an L7 proxy
 * adds (the waypoint, or a sidecar serving the HTTP port), never a ztunnel.
 */
const SEEN_HEADER = 'x-seen-forwarded-proto';
/** How long one mode change may take before the run fails (50 sidecars take ~1 minute on 2 cores). */
const ENROLL_TIMEOUT_MS = 240_000;

/** One size's pods, Services and where the load goes. */
export interface Fleet {
  n: number;
  namespace: string;
  client: string;
  servers: string[];
  /** `VIP:80` of each server's Service, in server order: what the load and the probes ask. */
  targets: string[];
  /** The static server's configuration file. */
  serverConfig: string;
}

/** Per-round timing of one enrollment; `seconds` is the figure, the rest says where the time went. */
export interface Enrollment {
  seconds: number;
  parts: Record<string, number>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const since = (t0: number) => (performance.now() - t0) / 1000;

/** The server at the end of every path: one haproxy thread answering 200 and echoing x-forwarded-proto. */
export function serverConfig(): string {
  return `${[
    'global',
    '  maxconn 4000',
    '  nbthread 1',
    'defaults',
    '  mode http',
    '  option http-keep-alive',
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  timeout http-keep-alive 60s',
    'frontend web',
    `  bind :${SERVER_PORT}`,
    `  http-request return status 200 content-type text/plain string ok hdr ${SEEN_HEADER} "%[req.hdr(x-forwarded-proto)]"`,
  ].join('\n')}\n`;
}

const namespaceObject = (name: string, labels: Record<string, string>) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels },
});

const serviceObject = (namespace: string, server: string) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: server, namespace },
  spec: {
    selector: { app: server },
    ports: [{ name: 'http', port: SERVICE_PORT, targetPort: SERVER_PORT, appProtocol: 'http' }],
  },
});

async function apply(mesh: Mesh, objects: unknown[]): Promise<void> {
  await mesh.admin.call('POST', '/ambit/v1/apply', { objects });
}

async function labelNamespace(mesh: Mesh, f: Fleet, labels: Record<string, string>): Promise<void> {
  await apply(mesh, [namespaceObject(f.namespace, labels)]);
}

/** Adds a pod and, for a server, starts its haproxy. The lab serialises pod changes under one lock. */
async function addPod(lab: Lab, f: Fleet, name: string, sidecar: boolean): Promise<void> {
  const server = name !== f.client;
  await lab.addPod({
    name,
    node: server ? 'node-2' : 'node-1',
    namespace: f.namespace,
    serviceAccount: server ? name.split('-').at(-1)! : 'client',
    labels: {
      app: server ? name.split('-').at(-1)! : 'client',
      ...(sidecar ? { [SIDECAR_INJECT]: 'true' } : {}),
    },
  });
  if (server) await lab.run(name, ['haproxy', '-f', f.serverConfig, '-db']);
}

/**
 * One `curl` in the client pod asking every target once: per target its HTTP status (0: no answer) and
 * whether the request went through an L7 proxy (the server saw `x-forwarded-proto`).
 */
export async function probe(lab: Lab, f: Fleet): Promise<Array<{ status: number; viaL7: boolean }>> {
  const r = await lab.exec(
    f.client,
    [
      'curl',
      '-s',
      '--max-time',
      '2',
      '-w',
      `%{http_code} %header{${SEEN_HEADER}}\\n`,
      ...f.targets.flatMap((t) => ['-o', '/dev/null', `http://${t}/`]),
    ],
    { timeoutMs: 5_000 + 2_500 * f.targets.length },
  );
  const lines = r.stdout.split('\n').filter((l) => l !== '');
  return f.targets.map((_, i) => {
    const [status = '0', seen = ''] = (lines[i] ?? '0').split(' ');
    return { status: Number(status), viaL7: seen.trim() !== '' };
  });
}

async function allAnswer(lab: Lab, f: Fleet, viaL7: boolean): Promise<true | undefined> {
  const answers = await probe(lab, f);
  return answers.every((a) => a.status === 200 && a.viaL7 === viaL7) ? true : undefined;
}

/** The Service VIPs of the fleet's servers, once the control plane has given each one. */
async function vips(mesh: Mesh, f: Fleet): Promise<string[]> {
  return waitUntil(
    `${f.n} Services in ${f.namespace} to get VIPs`,
    30_000,
    async () => {
      const { items } = await mesh.admin.call<{ items: Array<{ name: string; vips: string[] }> }>(
        'GET',
        `/ambit/v1/services?namespace=${f.namespace}`,
      );
      const byName = new Map(items.map((s) => [s.name, s.vips[0]]));
      const out = f.servers.map((s) => byName.get(s.split('-').at(-1)!));
      return out.every((v) => v !== undefined) ? out.map((v) => `${v}:${SERVICE_PORT}`) : undefined;
    },
    250,
  );
}

/** The namespace un-enrolled, its Services, the client and the N servers (started), answering directly. */
export async function setUpFleet(mesh: Mesh, n: number, dir: string): Promise<Fleet> {
  const namespace = `ovh-n${n}`;
  const serverConfigFile = join(dir, 'server.cfg');
  await writeFile(serverConfigFile, serverConfig());
  const names = Array.from({ length: n }, (_, i) => `s${i}`);
  const f: Fleet = {
    n,
    namespace,
    client: `n${n}-client`,
    servers: names.map((s) => `n${n}-${s}`),
    targets: [],
    serverConfig: serverConfigFile,
  };
  await apply(mesh, [namespaceObject(namespace, {}), ...names.map((s) => serviceObject(namespace, s))]);
  await addPod(mesh.lab, f, f.client, false);
  for (const s of f.servers) await addPod(mesh.lab, f, s, false);
  f.targets = await vips(mesh, f);
  await waitUntil(
    `all ${n} servers to answer the client directly`,
    60_000,
    () => allAnswer(mesh.lab, f, false),
    250,
  );
  return f;
}

/** Every pod of the fleet removed, and its namespace's Services deleted. */
export async function tearDownFleet(mesh: Mesh, f: Fleet): Promise<void> {
  for (const p of [f.client, ...f.servers]) await mesh.lab.removePod(p).catch(() => {});
  await mesh.admin
    .call('POST', '/ambit/v1/delete', {
      refs: f.servers.map((s) => ({ kind: 'Service', namespace: f.namespace, name: s.split('-').at(-1)! })),
    })
    .catch(() => {});
  await labelNamespace(mesh, f, {});
}

/** The pods' addresses, by node, as the lab placed them. */
async function addressesByNode(lab: Lab, f: Fleet): Promise<Map<string, string[]>> {
  const pods = (await lab.status())?.pods ?? [];
  const mine = new Set([f.client, ...f.servers]);
  const out = new Map<string, string[]>();
  for (const p of pods) if (mine.has(p.name)) out.set(p.node, [...(out.get(p.node) ?? []), p.address]);
  return out;
}

/** Whether each node's capture set (`ip ambit enrolled`) holds all (or none) of its pods' addresses. */
async function captured(lab: Lab, byNode: Map<string, string[]>, want: boolean): Promise<true | undefined> {
  for (const [node, addresses] of byNode) {
    const r = await lab.exec(node, ['nft', 'list', 'set', 'ip', 'ambit', 'enrolled']);
    const set = new Set(r.stdout.match(/\d+\.\d+\.\d+\.\d+/g) ?? []);
    if (!addresses.every((a) => set.has(a) === want)) return undefined;
  }
  return true;
}

/**
 * Ambient: from the namespace's label to every pod's address in its node's capture set. A repeat first
 * takes the label away and waits until no pod is captured.
 */
export async function enrollAmbient(mesh: Mesh, f: Fleet): Promise<Enrollment> {
  const byNode = await addressesByNode(mesh.lab, f);
  await labelNamespace(mesh, f, {});
  await waitUntil(
    `${f.namespace} to be released`,
    ENROLL_TIMEOUT_MS,
    () => captured(mesh.lab, byNode, false),
    100,
  );
  const t0 = performance.now();
  await labelNamespace(mesh, f, { [DATAPLANE_MODE]: 'ambient' });
  await waitUntil(
    `${f.namespace} to be captured`,
    ENROLL_TIMEOUT_MS,
    () => captured(mesh.lab, byNode, true),
    50,
  );
  const seconds = since(t0);
  await waitUntil(
    `all ${f.n} servers to answer through the ztunnels`,
    60_000,
    () => allAnswer(mesh.lab, f, false),
    250,
  );
  return { seconds, parts: { captured: seconds, answered: since(t0) } };
}

/** The running waypoint replica of the fleet's namespace, if any. */
async function waypointPid(lab: Lab, f: Fleet): Promise<number | undefined> {
  for (const pod of (await lab.status())?.pods ?? []) {
    if (pod.namespace !== f.namespace) continue;
    const live = pod.processes.find((p) => p.running && p.command[1] === 'waypoint');
    if (live) return live.pid;
  }
  return undefined;
}

/** The waypoint deleted and the namespace left ambient (or, with `labels`, labelled so); until no request goes through one. */
export async function removeWaypoint(
  mesh: Mesh,
  f: Fleet,
  labels: Record<string, string> = { [DATAPLANE_MODE]: 'ambient' },
): Promise<void> {
  await labelNamespace(mesh, f, labels);
  await mesh.admin
    .call('POST', '/ambit/v1/delete', { refs: [{ kind: 'Gateway', namespace: f.namespace, name: WAYPOINT }] })
    .catch(() => {});
  await waitUntil(
    `the waypoint of ${f.namespace} to be gone`,
    ENROLL_TIMEOUT_MS,
    async () => ((await waypointPid(mesh.lab, f)) === undefined ? true : undefined),
    250,
  );
  if (labels[DATAPLANE_MODE] === 'ambient')
    await waitUntil(
      `${f.namespace} to answer without the waypoint`,
      60_000,
      () => allAnswer(mesh.lab, f, false),
      250,
    );
}

/**
 * A waypoint for the namespace: from applying its Gateway (`ambit waypoint apply -n NS
 * --enroll-namespace --wait`) to every Service answering through it — the replica started and
 * Programmed, the namespace labelled, the ztunnels sending to it. A repeat first removes it.
 */
export async function enrollWaypoint(mesh: Mesh, f: Fleet, repeat: boolean): Promise<Enrollment> {
  if (repeat) await removeWaypoint(mesh, f);
  const t0 = performance.now();
  await apply(mesh, [waypointGateway({ namespace: f.namespace, name: WAYPOINT })]);
  await waitProgrammed(mesh.admin, f.namespace, WAYPOINT, ENROLL_TIMEOUT_MS, 100);
  const programmed = since(t0);
  await labelNamespace(mesh, f, { [DATAPLANE_MODE]: 'ambient', [USE_WAYPOINT]: WAYPOINT });
  await waitUntil(
    `all ${f.n} Services to answer through the waypoint`,
    ENROLL_TIMEOUT_MS,
    () => allAnswer(mesh.lab, f, true),
    100,
  );
  const seconds = since(t0);
  return { seconds, parts: { programmed, routed: seconds - programmed } };
}

interface ProxyRow {
  name: string;
  kind: string;
  state: string;
}

/**
 * Sidecars: a restart — every pod (client and servers) removed, then each created again with
 * `sidecar.istio.io/inject: "true"` and its server's haproxy started (as a Deployment's Recreate
 * strategy; the lab makes pods one at a time, and each node starts its sidecars while the rest are
 * being made) — until every pod's sidecar runs, every sidecar is SYNCED in proxy-status, and the client,
 * through its sidecar, has an answer from every server's. The namespace carries no ambient label meanwhile.
 */
export async function enrollSidecars(mesh: Mesh, f: Fleet): Promise<Enrollment> {
  const { lab } = mesh;
  const pods = [f.client, ...f.servers];
  const t0 = performance.now();
  for (const p of pods) await lab.removePod(p);
  for (const p of pods) await addPod(lab, f, p, true);
  const recreated = since(t0);
  const names = new Set(pods.map((p) => `${p}.${f.namespace}`));
  await waitUntil(
    `${pods.length} sidecars running and SYNCED`,
    ENROLL_TIMEOUT_MS,
    async () => {
      const status = await lab.status();
      const running = (status?.pods ?? []).filter(
        (p) => pods.includes(p.name) && p.processes.some((x) => x.running && x.command[1] === 'sidecar'),
      ).length;
      if (running < pods.length) return undefined;
      const { items } = await mesh.admin.call<{ items: ProxyRow[] }>('GET', '/ambit/v1/proxies');
      const synced = items.filter((x) => x.kind === 'sidecar' && names.has(x.name) && x.state === 'SYNCED');
      return synced.length === pods.length ? true : undefined;
    },
    200,
  );
  const synced = since(t0);
  await waitUntil(
    `all ${f.n} servers to answer through the sidecars`,
    ENROLL_TIMEOUT_MS,
    () => allAnswer(lab, f, true),
    100,
  );
  const seconds = since(t0);
  return { seconds, parts: { recreated, synced: synced - recreated, answered: seconds - synced } };
}

/** The proxies that serve a mode's traffic (`counted`), and those running beside them (`beside`). */
export interface ModeProcs {
  counted: Procs;
  beside: Procs;
  /** The counted processes' log files (their stderr says whether they run from the build). */
  logs: string[];
}

/**
 * Read afresh from the lab's records before each run: the ztunnels of both nodes (ambient), plus the
 * waypoint replica (waypoint), or every sidecar of the fleet (sidecar). Beside them: the control plane,
 * and in sidecar mode the ztunnels, which run on as the node agents but carry none of the traffic.
 */
export async function procsOf(lab: Lab, f: Fleet, mode: Mode): Promise<ModeProcs> {
  const status = await lab.status();
  if (!status) throw new Error('the lab is gone');
  const ztunnels: Procs = {};
  const logs = new Map<number, string>();
  for (const node of status.nodes) {
    const z = node.processes.find((p) => p.running && p.command[1] === 'ztunnel');
    if (z) {
      ztunnels[`ztunnel ${node.name}`] = z.pid;
      logs.set(z.pid, z.log);
    }
  }
  const control: Procs = {};
  const c = status.control.processes.find((p) => p.running && p.command[1] === 'control');
  if (c) control['control plane'] = c.pid;
  if (Object.keys(ztunnels).length !== 2)
    throw new Error(`expected 2 ztunnels, found ${Object.keys(ztunnels).join(', ')}`);
  const pods: Procs = {};
  for (const pod of status.pods) {
    if (pod.namespace !== f.namespace) continue;
    const what = mode === 'waypoint' ? 'waypoint' : 'sidecar';
    const p = pod.processes.find((x) => x.running && x.command[1] === what);
    if (p) {
      pods[`${what} ${pod.name}`] = p.pid;
      logs.set(p.pid, p.log);
    }
  }
  const out = (counted: Procs, beside: Procs): ModeProcs => ({
    counted,
    beside,
    logs: Object.values(counted).map((pid) => logs.get(pid) ?? ''),
  });
  if (mode === 'direct') return out({}, { ...ztunnels, ...control });
  if (mode === 'ambient') return out(ztunnels, control);
  if (mode === 'waypoint') {
    if (Object.keys(pods).length !== 1) throw new Error(`expected 1 waypoint replica for ${f.namespace}`);
    return out({ ...ztunnels, ...pods }, control);
  }
  if (Object.keys(pods).length !== f.n + 1)
    throw new Error(`expected ${f.n + 1} sidecars in ${f.namespace}, found ${Object.keys(pods).length}`);
  return out(pods, { ...ztunnels, ...control });
}

/**
 * Mutual TLS in effect, as the proxy on the servers' side reports it for the fleet's namespace, summed:
 * node-2's ztunnel counts connections (`istio_tcp_connections_opened_total`); a server's sidecar, which
 * serves the HTTP port at L7 as Istio's does, counts requests (`istio_requests_total`). Both with
 * `reporter="destination"` and `connection_security_policy="mutual_tls"`.
 */
export async function mtlsConnections(lab: Lab, f: Fleet, mode: Mode): Promise<number> {
  if (mode === 'direct') return 0;
  const where = mode === 'sidecar' ? f.servers[0]! : 'node-2';
  const metric = mode === 'sidecar' ? 'istio_requests_total{' : 'istio_tcp_connections_opened_total{';
  const r = await lab.exec(where, ['curl', '-s', '--max-time', '5', 'http://127.0.0.1:15020/metrics']);
  let sum = 0;
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith(metric)) continue;
    if (!line.includes('reporter="destination"') || !line.includes('connection_security_policy="mutual_tls"'))
      continue;
    if (!line.includes(`destination_workload_namespace="${f.namespace}"`)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Until the host's CPUs are mostly idle (busy < `busy` of all cores over 1 s), or `maxMs` passed. */
export async function settle(maxMs: number, busy = 0.35): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const a = await hostTicks();
    await sleep(1_000);
    const share = busyShare(a, await hostTicks());
    if (share < busy || performance.now() - t0 >= maxMs) return share;
  }
}
