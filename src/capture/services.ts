// Service VIPs for every pod on a node, the job kube-proxy's nftables mode does on a cluster: a
// connection to a Service's VIP and port is DNATed to one of its endpoints, picked at random, with the
// port mapped to the endpoint's target port. One table, `ip ambit_services`, beside the capture table,
// replaced whole in one `nft -f` transaction whenever the services change.
//
// Order against capture: both tables NAT in prerouting, capture at -100 and this one just after (-90;
// `dstnat + 10` reads better but nft takes `dstnat` only in prerouting, and output needs the same). The
// kernel makes one destination NAT binding per connection and runs no later NAT chain once it exists,
// so an enrolled pod's connection, already redirected to the ztunnel, never reaches these rules; only
// pods outside the mesh (and the node's own processes, through output) are load-balanced here. The
// same rule cuts the other way: a connection DNATed here to a meshed pod on this node never meets the
// capture table's inbound redirect, so such endpoints are redirected to the ztunnel instead
// (`inboundCapture`).
//
// Only TCP: UDP and SCTP ports are skipped (the registry reports them as unsupported), as are IPv6
// VIPs and endpoints (the lab and the capture rules are IPv4).

import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { AmbitError } from '../errors/index.ts';
import { logger } from '../log/index.ts';
import { CAPTURE_ERRORS } from './errors.ts';
import { runNft } from './nft.ts';
import { PORTS } from './nftables.ts';

const log = logger('capture');

export const SERVICES_TABLE = 'ambit_services';
/** Marks a connection whose endpoint is its own source (hairpin) for masquerade; kube-proxy's bit. */
export const HAIRPIN_MARK = 0x4000;

/** A Service as the VIP rules need it (the xds ServiceResource has this shape). */
export interface ServiceVipInput {
  /** Unique and stable, e.g. `Service/ns/name`: names the service's chains and its rules' comments. */
  key: string;
  vips: readonly string[];
  ports: ReadonlyArray<{ port: number; protocol: string }>;
  /** Each endpoint's `ports` maps a service port (as a string) to the endpoint's target port. */
  endpoints: ReadonlyArray<{
    address: string;
    ports: Readonly<Record<string, number>>;
    /**
     * A pod on this node in the mesh. The capture table's inbound redirect never sees a connection this
     * table DNATs (one NAT binding per connection), so such a pod is not DNATed to but sent to the
     * ztunnel's inbound plaintext listener, whose original destination is then the VIP and port: the
     * ztunnel must resolve that to its local endpoint. Without it, STRICT is bypassed on the node.
     */
    inboundCapture?: boolean;
  }>;
}

/** One VIP port of one Service, decided: where its connections go (none: they are reset). */
export interface ServicePortRule {
  key: string;
  /** nft identifier of the port's chain, unique and stable per key and port. */
  chain: string;
  port: number;
  vips: string[];
  /** `inbound`: the ztunnel's inbound listener takes it (see ServiceVipInput's `inboundCapture`). */
  endpoints: Array<{ address: string; targetPort: number; inbound: boolean }>;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
// Registry keys (`Kind/namespace/name`) fit; nothing that could end the quoted comment it goes in.
const KEY = /^[A-Za-z0-9][A-Za-z0-9._/:*@-]{0,511}$/;
// nft's longest rule comment; a longer key is cut there (the chain name's hash still tells keys apart).
const COMMENT_MAX = 128;

function bad(key: string, what: string): AmbitError {
  return new AmbitError(
    CAPTURE_ERRORS.BAD_SERVICE,
    `service ${JSON.stringify(key)}: ${what}; its VIP rules were not written (fix the Service or its endpoints)`,
  );
}

/** True for an IPv4 address, false for IPv6 (skipped); anything else is refused. */
function ipv4(key: string, what: string, address: string): boolean {
  if (IPV4.test(address)) return true;
  if (isIPv6(address)) return false;
  throw bad(key, `${what} ${JSON.stringify(address)} is not an IP address`);
}

function checkPort(key: string, what: string, port: unknown): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
    throw bad(key, `${what} ${JSON.stringify(port)} is not a port (1-65535)`);
  return port;
}

/** A stable nft identifier for the key: readable, with a hash so keys that sanitise alike stay apart. */
function chainBase(key: string): string {
  const readable = key.replace(/[^A-Za-z0-9]/g, '_').slice(0, 40);
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 10);
  return `svc_${readable}_${hash}`;
}

function servicePorts(svc: ServiceVipInput): ServicePortRule[] {
  const key = svc.key;
  if (typeof key !== 'string' || !KEY.test(key))
    throw bad(
      String(key),
      'the key must be Kind/namespace/name (letters, digits and . _ / : * @ -, at most 512)',
    );
  const vips = [...new Set(svc.vips.filter((v) => ipv4(key, 'VIP', v)))].sort();
  const endpoints = svc.endpoints.filter((ep) => ipv4(key, 'endpoint address', ep.address));
  const rules: ServicePortRule[] = [];
  const seen = new Set<number>();
  for (const p of svc.ports) {
    const port = checkPort(key, 'port', p.port);
    if (String(p.protocol).toUpperCase() !== 'TCP' || seen.has(port)) continue;
    seen.add(port);
    const targets: ServicePortRule['endpoints'] = [];
    for (const ep of endpoints) {
      const target = ep.ports[String(port)];
      // An endpoint without this port does not serve it (kube-proxy leaves it out too).
      if (target === undefined) continue;
      targets.push({
        address: ep.address,
        targetPort: checkPort(key, `target port of ${ep.address}`, target),
        inbound: ep.inboundCapture === true,
      });
    }
    targets.sort((a, b) => compare(a.address, b.address) || a.targetPort - b.targetPort);
    rules.push({ key, chain: `${chainBase(key)}_${port}`, port, vips, endpoints: targets });
  }
  return vips.length > 0 ? rules.sort((a, b) => a.port - b.port) : [];
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Every Service's VIP ports, validated and in a stable order (so equal inputs render equal scripts). */
export function servicePlan(services: readonly ServiceVipInput[]): ServicePortRule[] {
  const keys = new Set<string>();
  const rules: ServicePortRule[] = [];
  for (const svc of [...services].sort((a, b) => compare(a.key, b.key))) {
    if (keys.has(svc.key)) throw bad(svc.key, 'the key appears twice');
    keys.add(svc.key);
    rules.push(...servicePorts(svc));
  }
  // nft refuses a verdict map with one key twice, which would leave every Service without its rules.
  const owner = new Map<string, string>();
  for (const r of rules) {
    for (const vip of r.vips) {
      const other = owner.get(`${vip}:${r.port}`);
      if (other !== undefined)
        throw bad(r.key, `VIP ${vip} port ${r.port} is also service ${JSON.stringify(other)}'s`);
      owner.set(`${vip}:${r.port}`, r.key);
    }
  }
  return rules;
}

const MARK = `0x${HAIRPIN_MARK.toString(16).padStart(8, '0')}`;

type Endpoint = ServicePortRule['endpoints'][number];

const INBOUND_CHAIN = 'inbound_capture';

/** One chain per endpoint address and port, shared by every Service port that reaches it. */
function endpointChain(e: Endpoint): string {
  return e.inbound ? INBOUND_CHAIN : `ep_${e.address.replaceAll('.', '_')}_${e.targetPort}`;
}

function portChain(rule: ServicePortRule): string {
  const comment = `comment "${rule.key.slice(0, COMMENT_MAX)}"`;
  const n = rule.endpoints.length;
  const verdict =
    n === 0
      ? 'reject with tcp reset'
      : n === 1
        ? `goto ${endpointChain(rule.endpoints[0]!)}`
        : `numgen random mod ${n} vmap { ${rule.endpoints.map((e, i) => `${i} : goto ${endpointChain(e)}`).join(', ')} }`;
  return `  chain ${rule.chain} {
    counter ${verdict} ${comment}
  }
`;
}

// A pod that reaches itself through the VIP would get its own address as the source and drop the
// packet as a martian: the mark has postrouting masquerade it behind the node.
function endpointChains(rules: readonly ServicePortRule[]): string {
  const all = rules.flatMap((r) => r.endpoints);
  const inbound = all.some((e) => e.inbound)
    ? `  chain ${INBOUND_CHAIN} {
    meta l4proto tcp counter redirect to :${PORTS.inboundPlaintext}
  }
`
    : '';
  const byName = new Map(all.filter((e) => !e.inbound).map((e) => [endpointChain(e), e] as const));
  return (
    inbound +
    [...byName]
      .sort(([a], [b]) => compare(a, b))
      .map(
        ([name, e]) => `  chain ${name} {
    ip saddr ${e.address} meta mark set meta mark | ${MARK}
    meta l4proto tcp dnat to ${e.address}:${e.targetPort}
  }
`,
      )
      .join('')
  );
}

/**
 * The whole table as one nft script. `services` looks a connection's VIP and port up in one verdict
 * map and jumps to that Service port's chain, which counts it and picks an endpoint at random; an
 * endpoint's chain DNATs. A VIP port with no endpoint, or a port the Service does not have, is reset,
 * as kube-proxy does, so a client fails at once ("connection refused") rather than timing out.
 */
export function serviceRuleset(services: readonly ServiceVipInput[]): string {
  const rules = servicePlan(services);
  const vips = [...new Set(rules.flatMap((r) => r.vips))].sort();
  const map = rules.flatMap((r) => r.vips.map((v) => `${v} . ${r.port} : goto ${r.chain}`));
  const lookup = map.length > 0 ? `\n    ip daddr . tcp dport vmap { ${map.join(', ')} }` : '';
  const elements = vips.length > 0 ? `\n    elements = { ${vips.join(', ')} }` : '';
  return `add table ip ${SERVICES_TABLE}
delete table ip ${SERVICES_TABLE}
table ip ${SERVICES_TABLE} {
  set vips {
    type ipv4_addr${elements}
  }
  chain prerouting {
    type nat hook prerouting priority -90; policy accept;
    jump services
  }
  chain output {
    type nat hook output priority -90; policy accept;
    jump services
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    meta mark & ${MARK} == ${MARK} counter masquerade
  }
  chain services {${lookup}
    ip daddr @vips meta l4proto tcp counter reject with tcp reset
  }
${rules.map(portChain).join('')}${endpointChains(rules)}}
`;
}

export interface ServiceVipsOptions {
  /** Prefix that runs a command in the node's namespace, e.g. `['ip', 'netns', 'exec', ns]`; [] when already in it. */
  inNetns?: string[];
}

/** Writes a node's Service VIP table; a sync that would write the same script again does nothing. */
export class ServiceVips {
  private readonly prefix: string[];
  private written: string | undefined;
  // Syncs run one after another, so "unchanged" is always judged against what the kernel has.
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: ServiceVipsOptions = {}) {
    this.prefix = opts.inNetns ?? [];
  }

  sync(services: readonly ServiceVipInput[]): Promise<void> {
    return this.serial(async () => {
      const script = serviceRuleset(services);
      if (script === this.written) return;
      await runNft(this.prefix, ['-f', '-'], script);
      this.written = script;
      log.info({ services: services.length }, 'service VIP rules written');
    });
  }

  /** Removes the table; pods lose the VIPs. Idempotent. */
  remove(): Promise<void> {
    return this.serial(async () => {
      this.written = undefined;
      await runNft(
        this.prefix,
        ['-f', '-'],
        `add table ip ${SERVICES_TABLE}\ndelete table ip ${SERVICES_TABLE}\n`,
      );
      log.info('service VIP rules removed');
    });
  }

  private serial(step: () => Promise<void>): Promise<void> {
    const run = this.queue.then(step);
    this.queue = run.catch(() => {});
    return run;
  }
}
