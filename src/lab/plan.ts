// Pure planning for the lab: names of namespaces and links, and the address plan (198.18.0.0/24 nodes, 198.18.N.0/24 pods, 198.19.0.0/16 VIPs).
// Nothing here touches the system, so every rule is tested as a table of cases.

import { AmbitError } from '../errors/index.ts';
import { LAB_ERRORS } from './errors.ts';

/** Node underlay 198.18.0.0/24 (node N is .N); pods on node N in 198.18.N.0/24; VIPs 198.19.0.0/16. */
export const UNDERLAY_PREFIX = '198.18.0';
/** Nodes take 198.18.0.1–199: from .200 on is the lab's infrastructure, which may scrape every node's metrics. */
export const MAX_NODES = 199;
/** Pod host numbers on a node: .1 is the node's gateway address, pods take .2 … .254. */
export const FIRST_POD_HOST = 2;
/** The control plane's address on the underlay, in the bridge's namespace (reachable from every node). */
export const CONTROL_ADDRESS = '198.18.0.254';
export const LAST_POD_HOST = 254;
/** The cluster DNS the lab's pods and nodes use: the control plane serves it there (`ambit up`). */
export const CLUSTER_DNS_ADDRESS = CONTROL_ADDRESS;

/**
 * The lab's infrastructure hosts, each a namespace of its own on the bridge: etcd members `etcd-1…7`
 * at 198.18.0.201–207 and control-plane replicas `control-1…9` at 198.18.0.211–219 (`ambit up --ha`).
 */
const HOST_NAME = /^(etcd-[1-7]|control-[1-9])$/;
export const MAX_ETCD_MEMBERS = 7;
export const MAX_CONTROL_REPLICAS = 9;

export function isHostName(name: string): boolean {
  return HOST_NAME.test(name);
}

/** The address of an infrastructure host on the underlay. */
export function hostAddress(name: string): string {
  if (!HOST_NAME.test(name))
    throw invalid(
      LAB_ERRORS.INVALID_NAME,
      `"${name}" is not a lab host: etcd-1 … etcd-${MAX_ETCD_MEMBERS} or control-1 … control-${MAX_CONTROL_REPLICAS}`,
    );
  const [kind, n] = name.split('-') as [string, string];
  return `${UNDERLAY_PREFIX}.${(kind === 'etcd' ? 200 : 210) + Number(n)}`;
}

/** Every namespace the lab makes starts with this, so cleanup finds leftovers after a crash. */
export const NETNS_PREFIX = 'ambit-';

// No '-' in a lab's name: the '-' after it ends the prefix, so lab "a" can never match lab "a-b"'s
// namespaces when cleanup looks for its own by prefix.
const LAB_NAME = /^[a-z0-9]{1,16}$/;
const POD_NAME = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;
const LABEL_KEY = /^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function invalid(code: string, message: string): AmbitError {
  return new AmbitError(code, message);
}

export function validateLabName(name: string): string {
  if (!LAB_NAME.test(name)) {
    throw invalid(
      LAB_ERRORS.INVALID_NAME,
      `lab name "${name}" is invalid: use 1-16 lowercase letters and digits (no '-': it separates the lab's name in its namespaces)`,
    );
  }
  return name;
}

export function validatePodName(name: string): string {
  if (!POD_NAME.test(name)) {
    throw invalid(
      LAB_ERRORS.INVALID_POD_NAME,
      `pod name "${name}" is invalid: use 1-40 lowercase letters, digits or '-', starting and ending with a letter or digit`,
    );
  }
  return name;
}

/** A Kubernetes-style name for a namespace or service account (DNS-1123 label). */
export function validateDnsLabel(what: string, value: string): string {
  if (!DNS_LABEL.test(value)) {
    throw invalid(
      LAB_ERRORS.INVALID_NAME,
      `${what} "${value}" is invalid: use 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit`,
    );
  }
  return value;
}

export function validateNodeCount(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > MAX_NODES) {
    throw invalid(
      LAB_ERRORS.INVALID_NODES,
      `--nodes must be a whole number from 1 to ${MAX_NODES}, got "${n}"`,
    );
  }
  return n;
}

/** Parses `k=v,k2=v2` into labels, with Kubernetes' rules for keys and values. */
export function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  if (text.trim() === '') return labels;
  for (const [i, part] of text.split(',').entries()) {
    const eq = part.indexOf('=');
    if (eq <= 0)
      throw invalid(LAB_ERRORS.INVALID_LABEL, `label #${i + 1} "${part}" is malformed: write key=value`);
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (!LABEL_KEY.test(key)) throw invalid(LAB_ERRORS.INVALID_LABEL, `label key "${key}" is invalid`);
    if (!LABEL_VALUE.test(value))
      throw invalid(LAB_ERRORS.INVALID_LABEL, `label value "${value}" for "${key}" is invalid`);
    if (Object.hasOwn(labels, key)) throw invalid(LAB_ERRORS.INVALID_LABEL, `label "${key}" is given twice`);
    labels[key] = value;
  }
  return labels;
}

export function formatLabels(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

export function nodeName(index: number): string {
  return `node-${index}`;
}

/** The node index of `node-N`, or undefined when the name is not a node of a lab with `count` nodes. */
export function nodeIndex(name: string, count: number): number | undefined {
  const m = /^node-([1-9][0-9]*)$/.exec(name);
  if (!m) return undefined;
  const n = Number(m[1]);
  return n <= count ? n : undefined;
}

export function nodeAddress(index: number): string {
  return `${UNDERLAY_PREFIX}.${index}`;
}

/** The node's address on its pods' links: the pods' default gateway. */
export function nodeGateway(index: number): string {
  return `198.18.${index}.1`;
}

export function podSubnet(index: number): string {
  return `198.18.${index}.0/24`;
}

export function podAddress(nodeIdx: number, host: number): string {
  return `198.18.${nodeIdx}.${host}`;
}

/** The lowest free pod host number on a node, given the addresses already taken there. */
export function allocatePodHost(nodeIdx: number, taken: readonly string[]): number {
  const used = new Set(taken);
  for (let host = FIRST_POD_HOST; host <= LAST_POD_HOST; host++) {
    if (!used.has(podAddress(nodeIdx, host))) return host;
  }
  throw invalid(
    LAB_ERRORS.NODE_FULL,
    `${nodeName(nodeIdx)} has no free pod address left in ${podSubnet(nodeIdx)}`,
  );
}

/** Names of the kernel objects of one lab; the lab name keeps two labs on one host apart. */
export interface LabNames {
  prefix: string;
  /** The namespace holding the bridge that joins the nodes (never the host's namespace). */
  net: string;
  node(index: number): string;
  pod(name: string): string;
  host(name: string): string;
}

export function labNames(lab: string): LabNames {
  const prefix = `${NETNS_PREFIX}${lab}-`;
  return {
    prefix,
    net: `${prefix}net`,
    node: (index) => `${prefix}${nodeName(index)}`,
    pod: (name) => `${prefix}pod-${name}`,
    host: (name) => `${prefix}host-${name}`,
  };
}

/** Link names: interface names are at most 15 bytes and only need to be unique per namespace. */
export const BRIDGE = 'br0';
export const NODE_UPLINK = 'eth0';
export const POD_IFACE = 'eth0';
export function bridgePort(nodeIdx: number): string {
  return `n${nodeIdx}`;
}
/** The node side of each pod's veth is `pod<host>`; the anti-spoofing rules match links by this prefix. */
export const POD_LINK_PREFIX = 'pod';
export function podLink(host: number): string {
  return `${POD_LINK_PREFIX}${host}`;
}

/** One `ip` invocation: argv after `ip`, optionally inside a namespace (`ip -n NS …`). */
export interface IpStep {
  netns?: string;
  args: string[];
}

function inNs(netns: string, ...args: string[]): IpStep {
  return { netns, args };
}

/** The bridge's port of an infrastructure host's link. */
export function hostBridgePort(name: string): string {
  return `h-${name}`;
}

/**
 * The steps that build a lab of `count` nodes — bridge namespace, node namespaces, uplinks, routes —
 * and its infrastructure `hosts` (each on the bridge, with routes to every node's pods).
 */
export function planUp(names: LabNames, count: number, hosts: readonly string[] = []): IpStep[] {
  const steps: IpStep[] = [
    { args: ['netns', 'add', names.net] },
    inNs(names.net, 'link', 'set', 'lo', 'up'),
    inNs(names.net, 'link', 'add', BRIDGE, 'type', 'bridge'),
    inNs(names.net, 'link', 'set', BRIDGE, 'up'),
    inNs(names.net, 'addr', 'add', `${CONTROL_ADDRESS}/24`, 'dev', BRIDGE),
  ];
  for (let i = 1; i <= count; i++) {
    const ns = names.node(i);
    steps.push(
      { args: ['netns', 'add', ns] },
      inNs(ns, 'link', 'set', 'lo', 'up'),
      inNs(ns, 'link', 'add', NODE_UPLINK, 'type', 'veth', 'peer', 'name', bridgePort(i), 'netns', names.net),
      inNs(names.net, 'link', 'set', bridgePort(i), 'master', BRIDGE),
      inNs(names.net, 'link', 'set', bridgePort(i), 'up'),
      inNs(ns, 'addr', 'add', `${nodeAddress(i)}/24`, 'dev', NODE_UPLINK),
      inNs(ns, 'link', 'set', NODE_UPLINK, 'up'),
    );
    for (let j = 1; j <= count; j++) {
      if (j !== i) steps.push(inNs(ns, 'route', 'add', podSubnet(j), 'via', nodeAddress(j)));
    }
    // The control plane reaches pods as a cluster's does: a waypoint pod dials it from its own address.
    steps.push(inNs(names.net, 'route', 'add', podSubnet(i), 'via', nodeAddress(i)));
  }
  for (const host of hosts) {
    const ns = names.host(host);
    steps.push(
      { args: ['netns', 'add', ns] },
      inNs(ns, 'link', 'set', 'lo', 'up'),
      inNs(
        ns,
        'link',
        'add',
        NODE_UPLINK,
        'type',
        'veth',
        'peer',
        'name',
        hostBridgePort(host),
        'netns',
        names.net,
      ),
      inNs(names.net, 'link', 'set', hostBridgePort(host), 'master', BRIDGE),
      inNs(names.net, 'link', 'set', hostBridgePort(host), 'up'),
      inNs(ns, 'addr', 'add', `${hostAddress(host)}/24`, 'dev', NODE_UPLINK),
      inNs(ns, 'link', 'set', NODE_UPLINK, 'up'),
    );
    for (let j = 1; j <= count; j++)
      steps.push(inNs(ns, 'route', 'add', podSubnet(j), 'via', nodeAddress(j)));
  }
  return steps;
}

/**
 * Sysctls each node needs: it routes for its pods. Reverse-path filtering is strict per link (the
 * kernel uses the higher of `all` and the link's value, so `all` stays 0 and each link says its own):
 * on the underlay, a packet claiming a local pod's address is dropped; pod links get theirs as they
 * are made (`podLinkSysctls`). Every route in the lab is symmetric, so strict mode drops only spoofs.
 */
export const NODE_SYSCTLS: Record<string, string> = {
  'net.ipv4.ip_forward': '1',
  'net.ipv4.conf.all.rp_filter': '0',
  'net.ipv4.conf.default.rp_filter': '0',
  [`net.ipv4.conf.${NODE_UPLINK}.rp_filter`]: '1',
};

/** Sysctls of a pod's link on its node: strict reverse-path filtering (only the pod's /32 routes there). */
export function podLinkSysctls(host: number): Record<string, string> {
  return { [`net.ipv4.conf.${podLink(host)}.rp_filter`]: '1' };
}

/**
 * The lab's anti-spoofing table in a node (in a cluster, the CNI's job; the lab stands in for it, so
 * it covers every pod, meshed or not). Each pod link may carry only its pod's address: link `podH`
 * and address `198.18.N.H` come from the same host number, so the whole map is known when the node is
 * made and no pod change has to touch it. Anything else arriving on a pod link is dropped and counted
 * (`nft list counter inet lab spoofed`), before capture's NAT sees it; IPv6 from pods too (the lab is
 * IPv4). The table lives in the node's namespace and goes with it; its name leaves `ambit` to capture.
 */
export const ANTI_SPOOF_TABLE = 'lab';
export function antiSpoofRuleset(nodeIdx: number): string {
  const pairs: string[] = [];
  for (let host = FIRST_POD_HOST; host <= LAST_POD_HOST; host++) {
    pairs.push(`"${podLink(host)}" . ${podAddress(nodeIdx, host)}`);
  }
  return `add table inet ${ANTI_SPOOF_TABLE}
delete table inet ${ANTI_SPOOF_TABLE}
table inet ${ANTI_SPOOF_TABLE} {
  counter spoofed {
  }
  set pods {
    type ifname . ipv4_addr
    elements = { ${pairs.join(', ')} }
  }
  chain prerouting {
    type filter hook prerouting priority -300; policy accept;
    iifname "${POD_LINK_PREFIX}*" iifname . ip saddr @pods accept
    iifname "${POD_LINK_PREFIX}*" counter name "spoofed" drop
  }
}
`;
}

/** The steps that attach a pod namespace to its node: veth pair, /32 route, default route. */
export function planPodAdd(names: LabNames, pod: string, nodeIdx: number, host: number): IpStep[] {
  const podNs = names.pod(pod);
  const nodeNs = names.node(nodeIdx);
  const address = podAddress(nodeIdx, host);
  const gateway = nodeGateway(nodeIdx);
  const link = podLink(host);
  return [
    { args: ['netns', 'add', podNs] },
    inNs(podNs, 'link', 'set', 'lo', 'up'),
    inNs(nodeNs, 'link', 'add', link, 'type', 'veth', 'peer', 'name', POD_IFACE, 'netns', podNs),
    // The same /32 gateway address sits on every pod link of the node, as routed CNIs do.
    inNs(nodeNs, 'addr', 'add', `${gateway}/32`, 'dev', link),
    inNs(nodeNs, 'link', 'set', link, 'up'),
    inNs(nodeNs, 'route', 'add', `${address}/32`, 'dev', link),
    inNs(podNs, 'addr', 'add', `${address}/32`, 'dev', POD_IFACE),
    inNs(podNs, 'link', 'set', POD_IFACE, 'up'),
    inNs(podNs, 'route', 'add', gateway, 'dev', POD_IFACE, 'scope', 'link'),
    inNs(podNs, 'route', 'add', 'default', 'via', gateway, 'dev', POD_IFACE),
  ];
}

/**
 * A pod's resolv.conf, as a cluster gives it: the cluster DNS, and the search path of the pod's namespace
 * (so `<svc>` and `<svc>.<ns>` resolve); ndots 5 as a kubelet writes it.
 */
export function podResolvConf(namespace: string, dns: readonly string[] = [CLUSTER_DNS_ADDRESS]): string {
  return [
    `# ambit lab: cluster DNS for a pod in namespace ${namespace}`,
    `search ${namespace}.svc.cluster.local svc.cluster.local cluster.local`,
    ...nameservers(dns),
  ].join('\n');
}

/** `nameserver` lines (the resolver reads three at most) and options; with several, a dead one costs a second. */
function nameservers(dns: readonly string[]): string[] {
  const servers = dns.slice(0, 3).map((a) => `nameserver ${a}`);
  return [...servers, dns.length > 1 ? 'options ndots:5 timeout:1 attempts:2 rotate' : 'options ndots:5', ''];
}

/** A node's resolv.conf: the cluster DNS, with full names (`<svc>.<ns>`) found through the search path. */
export function nodeResolvConf(dns: readonly string[] = [CLUSTER_DNS_ADDRESS]): string {
  return [
    '# ambit lab: cluster DNS for a node',
    'search svc.cluster.local cluster.local',
    ...nameservers(dns),
  ].join('\n');
}
