// Node-level capture with nftables: one table owned by Ambit in the node's network
// namespace, a set of enrolled pod addresses, and NAT redirects to the ztunnel's listeners.
// Every change is one `nft -f` transaction, so the kernel never sees a half-applied ruleset.

import { PORTS as MESH_PORTS } from '../config/index.ts';
import { AmbitError } from '../errors/index.ts';
import { logger } from '../log/index.ts';
import { CAPTURE_ERRORS } from './errors.ts';
import { runNft } from './nft.ts';

const log = logger('capture');

export const TABLE = 'ambit';
export const PORTS = {
  outbound: MESH_PORTS.outbound,
  inboundPlaintext: MESH_PORTS.inboundPlaintext,
  inboundHbone: MESH_PORTS.hbone,
  dns: MESH_PORTS.dns,
} as const;

/** The capture contract; an in-pod driver (rules inside each pod's namespace) can implement it too. */
export interface CaptureDriver {
  /** Creates (or atomically replaces) the rules, keeping the given pods enrolled. */
  install(enrolled: readonly string[]): Promise<void>;
  enroll(address: string): Promise<void>;
  unenroll(address: string): Promise<void>;
  enrolled(): Promise<string[]>;
  /** Removes every rule; plain networking is restored. Idempotent. */
  remove(): Promise<void>;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function checkAddress(address: string): string {
  if (!IPV4.test(address)) {
    throw new AmbitError(
      CAPTURE_ERRORS.BAD_ADDRESS,
      `"${address}" is not an IPv4 address; only IPv4 pods can be enrolled`,
    );
  }
  return address;
}

/**
 * The whole table as one nft script. In prerouting (traffic arriving from pods and other nodes):
 * TCP from an enrolled pod goes to the outbound listener, but only when it arrives on the link its
 * source address is routed through (`fib saddr . iif oif exists`, a strict reverse-path check): an
 * enrolled pod is local, so that is its own pod link, never the underlay or another pod's link, and a
 * packet that merely claims an enrolled address is never taken as that pod's outbound. TCP to an
 * enrolled pod's 15008 goes to the HBONE listener; any other TCP to an enrolled pod to the plaintext
 * inbound listener. In output (the node's own traffic), only HBONE to a local enrolled pod is
 * redirected, so the ztunnel reaches a pod on its own node the same way as a remote one; its
 * connections to the pods' applications are left alone. Every rule counts what it redirects
 * (`nft list table ip ambit`). Dropping spoofed packets is the pod network's job (the lab's own
 * table; a CNI in a cluster), and the node's `rp_filter` drops them again at routing.
 *
 * With `dns`, an enrolled pod's DNS (UDP and TCP to port 53, whatever server it names) goes to the
 * ztunnel's DNS proxy first, as Istio ambient's does; the same reverse-path check applies, and the
 * rules come before the TCP outbound rule, which would otherwise take DNS over TCP; and only enrolled
 * pods and the node itself reach the proxy's port.
 *
 * In forward, TCP to a local enrolled pod that was DNATed (by the Service VIP table, which sends only
 * non-mesh endpoints there) is reset: a VIP rule written before the pod was enrolled would otherwise
 * deliver plaintext past its policy until the Service rules catch up. Legitimate TCP to a local enrolled
 * pod never crosses forward: it comes from the ztunnel on the node itself.
 */
export function ruleset(enrolled: readonly string[], opts: RulesetOptions = {}): string {
  const dnsPort = opts.dnsPort ?? PORTS.dns;
  const dns = opts.dns
    ? `
    ip saddr @enrolled fib saddr . iif oif exists udp dport 53 counter redirect to :${dnsPort}
    ip saddr @enrolled fib saddr . iif oif exists tcp dport 53 counter redirect to :${dnsPort}`
    : '';
  // Only enrolled pods (captured) and the node itself may ask the DNS proxy: not an open forwarder to
  // the upstreams for every pod and node that can route here.
  const dnsInput = opts.dns
    ? `
  chain input {
    type filter hook input priority 0; policy accept;
    meta l4proto { tcp, udp } th dport ${dnsPort} iifname != "lo" ip saddr != @enrolled counter drop
  }`
    : '';
  const elements = enrolled.length > 0 ? `\n    elements = { ${enrolled.map(checkAddress).join(', ')} }` : '';
  return `add table ip ${TABLE}
delete table ip ${TABLE}
table ip ${TABLE} {
  set enrolled {
    type ipv4_addr${elements}
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;${dns}
    ip saddr @enrolled fib saddr . iif oif exists meta l4proto tcp counter redirect to :${PORTS.outbound}
    ip daddr @enrolled tcp dport ${PORTS.inboundHbone} counter redirect to :${PORTS.inboundHbone}
    ip daddr @enrolled meta l4proto tcp counter redirect to :${PORTS.inboundPlaintext}
  }
  chain output {
    type nat hook output priority -100; policy accept;
    ip daddr @enrolled tcp dport ${PORTS.inboundHbone} counter redirect to :${PORTS.inboundHbone}
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip daddr @enrolled meta l4proto tcp ct status dnat counter reject with tcp reset
  }${dnsInput}
}
`;
}

export interface RulesetOptions {
  /** Capture enrolled pods' DNS to the ztunnel's DNS proxy. */
  dns?: boolean;
  /** Where the DNS proxy listens (PORTS.dns, 15053). */
  dnsPort?: number;
}

export interface NftablesCaptureOptions {
  /** Prefix that runs a command in the node's namespace, e.g. `['ip', 'netns', 'exec', ns]`; [] when already in it. */
  inNetns?: string[];
  /** Capture enrolled pods' DNS (port 53) to the ztunnel's DNS proxy on PORTS.dns. */
  dns?: boolean;
}

export class NftablesCapture implements CaptureDriver {
  private readonly prefix: string[];
  private readonly dns: boolean;

  constructor(opts: NftablesCaptureOptions = {}) {
    this.prefix = opts.inNetns ?? [];
    this.dns = opts.dns ?? false;
  }

  async install(enrolled: readonly string[]): Promise<void> {
    await this.nft(['-f', '-'], ruleset(enrolled, { dns: this.dns }));
    log.info({ enrolled: enrolled.length, dns: this.dns }, 'capture rules installed');
  }

  async enroll(address: string): Promise<void> {
    await this.nft(['-f', '-'], `add element ip ${TABLE} enrolled { ${checkAddress(address)} }\n`);
  }

  async unenroll(address: string): Promise<void> {
    checkAddress(address);
    // `delete element` fails when absent; un-enrolling twice is not an error.
    if (!(await this.enrolled()).includes(address)) return;
    await this.nft(['-f', '-'], `delete element ip ${TABLE} enrolled { ${address} }\n`);
  }

  async enrolled(): Promise<string[]> {
    let out: string;
    try {
      out = await this.nft(['-j', 'list', 'set', 'ip', TABLE, 'enrolled']);
    } catch (err) {
      // No table means nothing is enrolled; any other failure must not pass for "nothing enrolled",
      // or a restart would rewrite the table empty and let every pod out of the mesh.
      if (/No such file or directory/.test((err as Error).message)) return [];
      throw err;
    }
    const parsed = JSON.parse(out) as { nftables: Array<{ set?: { elem?: unknown[] } }> };
    const elems = parsed.nftables.find((x) => x.set)?.set?.elem ?? [];
    return elems.filter((e): e is string => typeof e === 'string').sort();
  }

  async remove(): Promise<void> {
    await this.nft(['-f', '-'], `add table ip ${TABLE}\ndelete table ip ${TABLE}\n`);
    log.info('capture rules removed');
  }

  private nft(args: string[], input?: string): Promise<string> {
    return runNft(this.prefix, args, input);
  }
}
