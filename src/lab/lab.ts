// The lab's operations: up, pod add/rm, run, exec, status, down. Each change takes the lab lock,
// acts on the kernel, then records what it made; a failure half-way undoes what it had made.

import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AmbitError } from '../errors/index.ts';
import { logger } from '../log/index.ts';
import { LAB_ERRORS } from './errors.ts';
import {
  allocatePodHost,
  antiSpoofRuleset,
  CLUSTER_DNS_ADDRESS,
  CONTROL_ADDRESS,
  formatLabels,
  hostAddress,
  isHostName,
  type LabNames,
  labNames,
  NODE_SYSCTLS,
  nodeAddress,
  nodeIndex,
  nodeName,
  nodeResolvConf,
  planPodAdd,
  planUp,
  podAddress,
  podLinkSysctls,
  podResolvConf,
  validateDnsLabel,
  validateLabName,
  validateNodeCount,
  validatePodName,
} from './plan.ts';
import { ambitHome, type LabState, LabStore, type PodRecord, type ProcessRecord } from './state.ts';
import {
  type CommandResult,
  checkPrerequisites,
  deleteNetns,
  execInNetns,
  ip,
  isAlive,
  listNetns,
  listNetnsEtc,
  nftApply,
  removeNetnsEtc,
  setSysctls,
  spawnInNetns,
  stopNetnsProcesses,
  writeNetnsResolvConf,
} from './system.ts';

const log = logger('lab');

export const DEFAULT_LAB = 'lab';

/** The lab a command acts on when none is named: `$AMBIT_LAB`, else `lab`. */
export function defaultLabName(env: NodeJS.ProcessEnv = process.env): string {
  return env.AMBIT_LAB || DEFAULT_LAB;
}
/** `run`/`exec` target for the bridge's namespace, where the lab's control plane runs. */
export const CONTROL_TARGET = 'control';

export interface LabOptions {
  /** Data directory; `$AMBIT_HOME` or /var/lib/ambit by default. */
  home?: string;
  /** Keeps labs apart on one host: namespaces are named `ambit-<name>-…`. Default `$AMBIT_LAB`, else `lab`. */
  name?: string;
}

export interface LabUpOptions {
  /**
   * Infrastructure hosts to make on the bridge (`etcd-N`, `control-N`). With control hosts, their
   * addresses are the cluster DNS every resolv.conf names, in place of the bridge's 198.18.0.254.
   */
  hosts?: readonly string[];
}

export interface PodSpec {
  name: string;
  node: string;
  namespace?: string;
  serviceAccount?: string;
  labels?: Record<string, string>;
}

export interface ProcessStatus extends ProcessRecord {
  running: boolean;
}

export interface LabStatus {
  name: string;
  control: { address: string; processes: ProcessStatus[] };
  hosts: Array<{ name: string; address: string; processes: ProcessStatus[] }>;
  nodes: Array<{ name: string; address: string; processes: ProcessStatus[] }>;
  pods: Array<{
    name: string;
    node: string;
    address: string;
    namespace: string;
    serviceAccount: string;
    labels: Record<string, string>;
    processes: ProcessStatus[];
  }>;
}

/** Where a command runs: a pod's namespace or a node's. */
interface Target {
  netns: string;
  env: Record<string, string>;
  pod?: PodRecord;
  node?: string;
}

const AMBIT_BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/ambit.js');

export class Lab {
  readonly name: string;
  readonly names: LabNames;
  private readonly store: LabStore;
  private readonly homeDir: string;

  constructor(opts: LabOptions = {}) {
    this.name = validateLabName(opts.name ?? defaultLabName());
    this.names = labNames(this.name);
    this.homeDir = opts.home ?? ambitHome();
    this.store = new LabStore(this.homeDir, this.name);
  }

  /** The lab whose state file is `file` (`<home>/labs/<name>/state.json`), for a part given only that path. */
  static atStateFile(file: string): Lab {
    const dir = dirname(resolve(file));
    return new Lab({ home: dirname(dirname(dir)), name: basename(dir) });
  }

  /**
   * Brings up `count` nodes (and the infrastructure hosts asked for). Up again with the same shape is a
   * no-op; leftovers of a crash are cleared first.
   */
  async up(count = 2, opts: LabUpOptions = {}): Promise<LabState> {
    validateNodeCount(count);
    const hosts = [...new Set(opts.hosts ?? [])].sort();
    for (const h of hosts) hostAddress(h); // validates the name
    const dns = clusterDns(hosts);
    await checkPrerequisites();
    return this.store.withLock(async () => {
      let existing = await this.store.load();
      if (existing && !(await this.kernelObjectsExist(existing))) {
        // The record outlived its namespaces (a reboot empties /run/netns): start afresh.
        log.warn({ lab: this.name }, 'the lab was recorded as up but its namespaces are gone; rebuilding it');
        await this.store.erase();
        existing = undefined;
      }
      if (existing) {
        const shape = (nodes: number, h: readonly string[]) =>
          `${nodes} node(s)${h.length > 0 ? ` and hosts ${h.join(', ')}` : ''}`;
        if (existing.nodes === count && existing.hosts.join() === hosts.join()) return existing;
        throw new AmbitError(
          LAB_ERRORS.ALREADY_UP,
          `lab "${this.name}" is already up with ${shape(existing.nodes, existing.hosts)}, not ${shape(count, hosts)}; run \`ambit down\` (or \`ambit lab down\`) first to change it`,
        );
      }
      await this.removeKernelObjects(); // leftovers of a lab that crashed before recording its state
      try {
        for (const step of planUp(this.names, count, hosts)) await ip(step);
        for (let i = 1; i <= count; i++) {
          await setSysctls(this.names.node(i), NODE_SYSCTLS);
          await nftApply(this.names.node(i), antiSpoofRuleset(i));
          await writeNetnsResolvConf(this.names.node(i), nodeResolvConf(dns));
        }
      } catch (err) {
        await this.removeKernelObjects();
        throw err;
      }
      const state: LabState = {
        version: 1,
        name: this.name,
        nodes: count,
        createdAt: new Date().toISOString(),
        nodeProcesses: {},
        pods: [],
        hosts,
      };
      await this.store.save(state);
      log.info({ lab: this.name, nodes: count }, 'lab up');
      return state;
    });
  }

  /** Removes everything the lab made — processes, namespaces (and so their links), state. Idempotent. */
  async down(): Promise<void> {
    await checkPrerequisites();
    await this.store.withLock(async () => {
      await this.removeKernelObjects();
      await this.store.erase();
    });
    log.info({ lab: this.name }, 'lab down');
  }

  async addPod(spec: PodSpec): Promise<PodRecord> {
    validatePodName(spec.name);
    if (spec.name === CONTROL_TARGET || /^node-\d+$/.test(spec.name) || isHostName(spec.name)) {
      throw new AmbitError(
        LAB_ERRORS.INVALID_POD_NAME,
        `"${spec.name}" names a node, the control plane or a lab host; pick another pod name`,
      );
    }
    const namespace = validateDnsLabel('namespace', spec.namespace ?? 'default');
    const serviceAccount = validateDnsLabel('service account', spec.serviceAccount ?? 'default');
    const labels = { ...(spec.labels ?? {}) };
    await checkPrerequisites();
    return this.store.withLock(async () => {
      const state = await this.requireState();
      const idx = nodeIndex(spec.node, state.nodes);
      if (idx === undefined) {
        throw new AmbitError(
          LAB_ERRORS.UNKNOWN_NODE,
          `unknown node "${spec.node}": this lab has ${listNodes(state.nodes)}`,
        );
      }
      if (state.pods.some((p) => p.name === spec.name)) {
        throw new AmbitError(LAB_ERRORS.DUPLICATE_POD, `a pod named "${spec.name}" already exists`);
      }
      // A pod namespace the state does not know was left by an `add` killed half-way; it still holds
      // its link on the node, which would collide with the one about to be made.
      const known = new Set(state.pods.map((p) => this.names.pod(p.name)));
      for (const ns of await listNetns(`${this.names.prefix}pod-`)) {
        if (known.has(ns)) continue;
        await stopNetnsProcesses(ns);
        await deleteNetns(ns);
      }
      const taken = state.pods.filter((p) => p.node === spec.node).map((p) => p.address);
      const host = allocatePodHost(idx, taken);
      try {
        for (const step of planPodAdd(this.names, spec.name, idx, host)) await ip(step);
        await setSysctls(this.names.node(idx), podLinkSysctls(host));
        await writeNetnsResolvConf(
          this.names.pod(spec.name),
          podResolvConf(namespace, clusterDns(state.hosts)),
        );
      } catch (err) {
        await deleteNetns(this.names.pod(spec.name)).catch(() => {});
        throw err;
      }
      const pod: PodRecord = {
        name: spec.name,
        node: spec.node,
        address: podAddress(idx, host),
        host,
        namespace,
        serviceAccount,
        labels,
        processes: [],
      };
      state.pods.push(pod);
      await this.store.save(state);
      log.info({ pod: pod.name, node: pod.node, address: pod.address }, 'pod added');
      return pod;
    });
  }

  async removePod(name: string): Promise<void> {
    await checkPrerequisites();
    await this.store.withLock(async () => {
      const state = await this.requireState();
      const pod = state.pods.find((p) => p.name === name);
      if (!pod) throw unknownPod(name, state);
      const netns = this.names.pod(name);
      await stopNetnsProcesses(netns);
      await deleteNetns(netns); // takes the veth pair, and so the node's route, with it
      state.pods = state.pods.filter((p) => p.name !== name);
      await this.store.save(state);
      log.info({ pod: name }, 'pod removed');
    });
  }

  /** Starts a long-running process in a pod (or node); output goes to a log file. Returns its record. */
  async run(
    target: string,
    argv: string[],
    opts: {
      env?: Record<string, string>;
      /**
       * Open-file limit (soft and hard) to run under: Node cannot raise its own, so `prlimit` (util-linux)
       * sets it and execs the command (same pid; the record keeps the command as given).
       */
      nofile?: number;
    } = {},
  ): Promise<ProcessRecord> {
    if (argv.length === 0) throw new AmbitError(LAB_ERRORS.NO_COMMAND, 'give the command to run after `--`');
    await checkPrerequisites();
    return this.store.withLock(async () => {
      const state = await this.requireState();
      const where = this.target(state, target);
      await mkdir(this.store.logDir, { recursive: true });
      const log = join(this.store.logDir, `${target}-${Date.now()}.log`);
      const fd = openSync(log, 'a', 0o600);
      let pid: number;
      try {
        // Never above our own hard limit: raising it needs CAP_SYS_RESOURCE, which root in a container
        // often lacks, and prlimit would then fail instead of starting the command.
        const nofile = opts.nofile === undefined ? undefined : Math.min(opts.nofile, hardNofileLimit());
        const limited = nofile === undefined ? [] : ['prlimit', `--nofile=${nofile}`, '--'];
        pid = spawnInNetns(where.netns, [...limited, ...expandAmbit(argv)], {
          env: { ...process.env, ...where.env, ...opts.env },
          logFd: fd,
          // A control plane adds pods (waypoint replicas), so it keeps the host's /etc: see spawnInNetns.
          ownEtc: !isControlTarget(target),
        });
      } finally {
        closeSync(fd);
      }
      const record: ProcessRecord = { pid, command: argv, log, startedAt: new Date().toISOString() };
      if (where.pod) where.pod.processes.push(record);
      else state.nodeProcesses[target] = [...(state.nodeProcesses[target] ?? []), record];
      await this.store.save(state);
      return record;
    });
  }

  /** Runs a command in a pod (or node) to completion. */
  async exec(
    target: string,
    argv: string[],
    opts: { inherit?: boolean; timeoutMs?: number; input?: string | Buffer } = {},
  ): Promise<CommandResult> {
    if (argv.length === 0) throw new AmbitError(LAB_ERRORS.NO_COMMAND, 'give the command to run after `--`');
    await checkPrerequisites();
    const where = this.target(await this.requireState(), target);
    return execInNetns(where.netns, expandAmbit(argv), { ...opts, env: { ...process.env, ...where.env } });
  }

  async status(): Promise<LabStatus | undefined> {
    const state = await this.store.load();
    if (!state) return undefined;
    const withLiveness = (ps: ProcessRecord[]) => ps.map((p) => ({ ...p, running: isAlive(p.pid) }));
    return {
      name: state.name,
      control: {
        address: CONTROL_ADDRESS,
        processes: withLiveness(state.nodeProcesses[CONTROL_TARGET] ?? []),
      },
      hosts: state.hosts.map((h) => ({
        name: h,
        address: hostAddress(h),
        processes: withLiveness(state.nodeProcesses[h] ?? []),
      })),
      nodes: Array.from({ length: state.nodes }, (_, i) => ({
        name: nodeName(i + 1),
        address: nodeAddress(i + 1),
        processes: withLiveness(state.nodeProcesses[nodeName(i + 1)] ?? []),
      })),
      pods: state.pods.map((p) => ({
        name: p.name,
        node: p.node,
        address: p.address,
        namespace: p.namespace,
        serviceAccount: p.serviceAccount,
        labels: p.labels,
        processes: withLiveness(p.processes),
      })),
    };
  }

  /** The network namespace of a pod or node, for callers that act inside it (capture, tests). */
  async netnsOf(target: string): Promise<string> {
    return this.target(await this.requireState(), target).netns;
  }

  /** The lab's state file (node agents read it to discover pods). */
  get stateFile(): string {
    return this.store.file;
  }

  /** The data directory this lab lives in. */
  get home(): string {
    return this.homeDir;
  }

  private target(state: LabState, name: string): Target {
    if (name === CONTROL_TARGET) return { netns: this.names.net, env: { AMBIT_CONTROL_IP: CONTROL_ADDRESS } };
    if (state.hosts.includes(name))
      return { netns: this.names.host(name), env: { AMBIT_HOST: name, AMBIT_HOST_IP: hostAddress(name) } };
    const pod = state.pods.find((p) => p.name === name);
    if (pod) {
      return {
        netns: this.names.pod(pod.name),
        pod,
        env: {
          AMBIT_POD: pod.name,
          AMBIT_NODE: pod.node,
          AMBIT_NAMESPACE: pod.namespace,
          AMBIT_SERVICE_ACCOUNT: pod.serviceAccount,
          AMBIT_LABELS: formatLabels(pod.labels),
          AMBIT_POD_IP: pod.address,
        },
      };
    }
    const idx = nodeIndex(name, state.nodes);
    if (idx !== undefined) {
      return {
        netns: this.names.node(idx),
        node: name,
        env: { AMBIT_NODE: name, AMBIT_NODE_IP: nodeAddress(idx) },
      };
    }
    throw unknownPod(name, state);
  }

  private async requireState(): Promise<LabState> {
    const state = await this.store.load();
    if (!state) {
      throw new AmbitError(LAB_ERRORS.NOT_UP, `lab "${this.name}" is not up: run \`ambit lab up\` first`);
    }
    return state;
  }

  private async kernelObjectsExist(state: LabState): Promise<boolean> {
    const present = new Set(await listNetns(this.names.prefix));
    return (
      present.has(this.names.net) &&
      Array.from({ length: state.nodes }, (_, i) => this.names.node(i + 1)).every((n) => present.has(n)) &&
      state.hosts.every((h) => present.has(this.names.host(h)))
    );
  }

  /** Finds the lab's namespaces by prefix (so it works without state), stops their processes, deletes them. */
  private async removeKernelObjects(): Promise<void> {
    const all = await listNetns(this.names.prefix);
    // Pods first, then nodes, then the bridge: each holds one end of the next one's links.
    const order = (ns: string) => (ns.includes('-pod-') ? 0 : ns === this.names.net ? 2 : 1);
    all.sort((a, b) => order(a) - order(b));
    await Promise.all(all.map((ns) => stopNetnsProcesses(ns)));
    for (const ns of all) await deleteNetns(ns);
    // Files under /etc/netns outlive their namespaces across a reboot.
    for (const ns of await listNetnsEtc(this.names.prefix)) await removeNetnsEtc(ns);
  }
}

/** Where the lab's cluster DNS answers: each control host's address, else the bridge's (`ambit up`'s control plane). */
export function clusterDns(hosts: readonly string[]): string[] {
  const control = hosts.filter((h) => h.startsWith('control-')).map(hostAddress);
  return control.length > 0 ? control : [CLUSTER_DNS_ADDRESS];
}

/** Where a control plane runs: the bridge's namespace or a `control-N` host. */
function isControlTarget(target: string): boolean {
  return target === CONTROL_TARGET || /^control-\d+$/.test(target);
}

function listNodes(count: number): string {
  return count === 1 ? 'node-1 only' : `node-1 … node-${count}`;
}

function unknownPod(name: string, state: LabState): AmbitError {
  const pods = state.pods.map((p) => p.name).join(', ') || 'none';
  return new AmbitError(
    LAB_ERRORS.UNKNOWN_POD,
    `no pod or node named "${name}" (pods: ${pods}; nodes: ${listNodes(state.nodes)})`,
  );
}

/** `ambit …` inside the lab means this very installation, on this very Node runtime. */
function expandAmbit(argv: string[]): string[] {
  return argv[0] === 'ambit' ? [process.execPath, AMBIT_BIN, ...argv.slice(1)] : argv;
}

/** This process's hard RLIMIT_NOFILE (what an unprivileged raise may reach), from procfs. */
function hardNofileLimit(): number {
  const text = readFileSync('/proc/self/limits', 'utf8');
  const hard = /^Max open files\s+\S+\s+(\S+)/m.exec(text)?.[1];
  return hard === undefined || hard === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(hard);
}
