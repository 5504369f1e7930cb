// Sidecar mode's capture: one nftables table inside a single pod's network namespace that sends the
// pod's own TCP to the proxy running next to it in that namespace (the sidecar), as Istio's sidecar
// iptables rules do. The sidecar installs it itself, from inside the namespace (as Istio's init
// container does), in one `nft -f` transaction.

import { PORTS as MESH_PORTS } from '../config/index.ts';
import { AmbitError } from '../errors/index.ts';
import { logger } from '../log/index.ts';
import { CAPTURE_ERRORS } from './errors.ts';
import { runNft } from './nft.ts';

const log = logger('capture');

export const SIDECAR_TABLE = 'ambit_sidecar';
/** The sidecar proxy's group (Istio's proxy uid/gid): its own sockets are never captured. */
export const SIDECAR_GID = 1337;

export interface SidecarPorts {
  /** Where the sidecar takes the pod's outgoing connections (15001). */
  outbound?: number;
  /** Where the sidecar takes plaintext connections to the pod (15006). */
  inboundPlaintext?: number;
  /** The sidecar's own HBONE listener, never redirected (15008). */
  hbone?: number;
}

export interface SidecarRulesetOptions {
  ports?: SidecarPorts;
  /**
   * The sidecar's DNS proxy port: the pod's DNS (UDP and TCP to port 53, whatever server it names) goes
   * there, as Istio's sidecar DNS capture does. Undefined: DNS is left alone.
   */
  dnsPort?: number;
  /** Inbound ports left alone (the sidecar's metrics and readiness, 15020 and 15021, by default). */
  excludeInboundPorts?: readonly number[];
}

export type SidecarCaptureOptions = SidecarRulesetOptions;

function checkPort(port: number, what: string): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new AmbitError(
      CAPTURE_ERRORS.BAD_PORT,
      `${what} ${port} is not a port (an integer from 1 to 65535)`,
    );
  }
  return port;
}

/**
 * The whole sidecar table as one nft script, replacing any earlier one atomically (the table is
 * created if absent, deleted, and written again in the same transaction). It is IPv4 only (`table ip`)
 * and touches TCP, and with `dnsPort` the pod's DNS: other UDP is left alone.
 *
 * With `dnsPort`, the pod's DNS queries (UDP and TCP to port 53) go to the sidecar's DNS proxy, except
 * the sidecar's own (group 1337), which are its queries upstream.
 *
 * In output (connections the pod's own processes open): TCP from a socket of group 1337 (the sidecar's
 * own traffic) is returned first, so what the sidecar sends is never captured again; TCP leaving
 * through `lo` is returned too (the application talking to itself or to the sidecar, or the sidecar
 * delivering to the application; a connection to the pod's own address also goes out `lo`); any other
 * TCP is redirected to the sidecar's outbound listener (15001).
 *
 * In prerouting (connections arriving at the pod): TCP to the sidecar's HBONE port (15008) is
 * returned, since the sidecar itself listens there; TCP to the excluded inbound ports (15020 metrics
 * and 15021 readiness by default) is returned; any other TCP is redirected to the sidecar's plaintext
 * inbound listener (15006), which decides what to do with it (it refuses it under STRICT mTLS, for
 * one). Every rule counts what it matches (`nft list table ip ambit_sidecar`).
 */
export function sidecarRuleset(opts: SidecarRulesetOptions = {}): string {
  const outbound = checkPort(opts.ports?.outbound ?? MESH_PORTS.outbound, 'outbound port');
  const inbound = checkPort(
    opts.ports?.inboundPlaintext ?? MESH_PORTS.inboundPlaintext,
    'inbound plaintext port',
  );
  const hbone = checkPort(opts.ports?.hbone ?? MESH_PORTS.hbone, 'HBONE port');
  const excluded = [
    ...new Set(
      (opts.excludeInboundPorts ?? [MESH_PORTS.metrics, MESH_PORTS.readiness]).map((p) =>
        checkPort(p, 'excluded inbound port'),
      ),
    ),
  ];
  const exclude = excluded.length > 0 ? `\n    tcp dport { ${excluded.join(', ')} } counter return` : '';
  const dnsPort = opts.dnsPort === undefined ? undefined : checkPort(opts.dnsPort, 'DNS proxy port');
  // After the sidecar's own sockets (its queries upstream), before loopback: DNS to a local resolver too.
  const dns =
    dnsPort === undefined
      ? ''
      : `
    meta l4proto udp meta skgid ${SIDECAR_GID} counter return
    udp dport 53 counter redirect to :${dnsPort}
    tcp dport 53 counter redirect to :${dnsPort}`;
  return `add table ip ${SIDECAR_TABLE}
delete table ip ${SIDECAR_TABLE}
table ip ${SIDECAR_TABLE} {
  chain output {
    type nat hook output priority -100; policy accept;
    meta l4proto tcp meta skgid ${SIDECAR_GID} counter return${dns}
    meta l4proto tcp oifname "lo" counter return
    meta l4proto tcp counter redirect to :${outbound}
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    tcp dport ${hbone} counter return${exclude}
    meta l4proto tcp counter redirect to :${inbound}
  }
}
`;
}

/** Installs and removes the sidecar table in the current network namespace (the pod's, when the sidecar runs in it). */
export class SidecarCapture {
  private readonly opts: SidecarCaptureOptions;

  constructor(opts: SidecarCaptureOptions = {}) {
    this.opts = opts;
    sidecarRuleset(opts); // a bad port fails here, not at install
  }

  /** Creates (or atomically replaces) the table. */
  async install(): Promise<void> {
    await runNft([], ['-f', '-'], sidecarRuleset(this.opts));
    log.info({ table: SIDECAR_TABLE }, 'sidecar capture rules installed');
  }

  /** Deletes the table; plain networking is restored. Idempotent. */
  async remove(): Promise<void> {
    await runNft([], ['-f', '-'], `add table ip ${SIDECAR_TABLE}\ndelete table ip ${SIDECAR_TABLE}\n`);
    log.info({ table: SIDECAR_TABLE }, 'sidecar capture rules removed');
  }

  /** Whether the table exists in this namespace. */
  async installed(): Promise<boolean> {
    try {
      await runNft([], ['list', 'table', 'ip', SIDECAR_TABLE]);
      return true;
    } catch (err) {
      // Only "no such table" means not installed; any other failure (no nft, no permission) is raised.
      if (/No such file or directory/.test((err as Error).message)) return false;
      throw err;
    }
  }
}
