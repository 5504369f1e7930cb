// The node agent: joins the mesh once with a token (keeping the node credential in its data
// directory), keeps capture in step with the workloads the control plane places on its node and says
// are enrolled, and runs the node's ztunnel in the same process. It reports nothing about workloads:
// which workloads (and so which identities) a node has is operator-owned configuration, never the
// node's word, so a node credential cannot obtain an identity nobody placed on it.

import { X509Certificate } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { CaptureDriver, ServiceVips } from '../capture/index.ts';
import { AmbitError, describeError } from '../errors/index.ts';
import { createCsr, generateKeyPair, nodeId } from '../identity/index.ts';
import { logger } from '../log/index.ts';
import { type NodeCredentialOptions, obtainNodeCredential, saveNodeCredential } from '../proxy/index.ts';
import {
  CaClient,
  CONTROL_CHANNEL_OPTIONS,
  controlPlaneCredentials,
  type NodeCredential,
  TYPE,
} from '../xds/index.ts';
import { ZTUNNEL_ERRORS } from './errors.ts';
import type { ConnectionLimits } from './limits.ts';
import type { ZtunnelPorts } from './options.ts';
import { isNodeLocal, serves } from './plan.ts';
import { PodProcesses } from './pod-processes.ts';
import { ServiceVipSync } from './service-vips.ts';
import { Ztunnel } from './ztunnel.ts';

/** The node's credential options (its data directory also holds the admin socket), and the ztunnel's. */
export interface NodeAgentOptions extends Omit<NodeCredentialOptions, 'log'> {
  /** Kernel capture; undefined runs the ztunnel without it (SOCKS5 only). */
  capture?: CaptureDriver;
  /** Service VIPs for every pod on the node, meshed or not (kube-proxy's job; the lab's nodes have it). */
  serviceVips?: ServiceVips;
  /** The ztunnel's DNS proxy (see ZtunnelOptions.dns); the capture driver sends pods' DNS to it. */
  dns?: { upstreams: ReadonlyArray<{ host: string; port: number }> };
  bindAddress?: string;
  /** Opt-in SOCKS5 listen address (see ZtunnelOptions.socks5). */
  socks5?: string;
  /** The admin on loopback TCP too (see ZtunnelOptions.adminListen); the Unix socket is always on. */
  adminListen?: string;
  /** Who may scrape 15020 besides the node itself (see ZtunnelOptions.metricsAllow). */
  metricsAllow?: string[];
  ports?: Partial<ZtunnelPorts>;
  drainMs?: number;
  /** Caps on connections and handshakes (see ZtunnelOptions.limits). */
  limits?: Partial<ConnectionLimits>;
  /** Proxied connections idle this long are cut (see ZtunnelOptions.idleTimeoutMs). */
  idleTimeoutMs?: number;
  /** Threads that carry traffic (see ZtunnelOptions.workerThreads). */
  workerThreads?: number;
  /**
   * The lab's state file: waypoint replicas and sidecar-mode pods placed on this node get their processes
   * in their pods (the lab's pod namespaces). Without it, they must be started by hand (`ambit waypoint`,
   * `ambit sidecar`).
   */
  labState?: string;
}

export class NodeAgent {
  private readonly opts: NodeAgentOptions;
  private readonly log;
  ztunnel: Ztunnel | undefined;
  private cred: NodeCredential | undefined;
  private caClient: CaClient | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private captureChain: Promise<void> = Promise.resolve();
  private captureRetry: NodeJS.Timeout | undefined;
  private captureBackoffMs = 500;
  private enrolled = new Set<string>();
  private addresses: string[] = [];
  private addressTimer: NodeJS.Timeout | undefined;
  private podProcesses: PodProcesses | undefined;
  private vips: ServiceVipSync | undefined;

  constructor(opts: NodeAgentOptions) {
    this.opts = opts;
    this.log = logger('node-agent').child({ node: opts.node });
  }

  async start(): Promise<void> {
    try {
      await this.startParts();
    } catch (err) {
      await this.stop().catch(() => {}); // nothing half-started stays behind: listeners, timers, channels
      throw err;
    }
  }

  private async startParts(): Promise<void> {
    this.cred = await this.credential();
    // Every connection made from here on uses the credential current at the time (it is renewed).
    const credentials = () =>
      controlPlaneCredentials(this.opts.trustDomain, this.current.trustBundlePem, this.current);
    this.caClient = this.newCaClient();
    if (this.opts.capture) {
      // Keep whatever is enrolled across a restart, so pods are never left uncaptured in between.
      const kept = await this.opts.capture.enrolled();
      await this.opts.capture.install(kept);
      this.enrolled = new Set(kept);
    }
    this.addresses = localAddresses();
    this.ztunnel = new Ztunnel({
      node: this.opts.node,
      capture: this.opts.capture ? 'redirect' : 'none',
      bindAddress: this.opts.bindAddress,
      socks5: this.opts.socks5,
      ports: this.opts.ports,
      nodeAddresses: this.addresses,
      adminSocket: join(this.opts.dataDir, 'admin.sock'),
      adminListen: this.opts.adminListen,
      metricsAllow: this.opts.metricsAllow,
      control: { target: this.opts.control, credentials, channelOptions: CONTROL_CHANNEL_OPTIONS },
      certificates: { fetch: (id, csr) => this.caClient!.fetch(id, csr) },
      drainMs: this.opts.drainMs,
      limits: this.opts.limits,
      idleTimeoutMs: this.opts.idleTimeoutMs,
      workerThreads: this.opts.workerThreads,
      dns: this.opts.dns,
    });
    // A pod's link (and with it the pods' gateway address) exists before the pod is placed here, so
    // re-reading on every change knows it before the pod is captured; the poll catches the rest.
    this.ztunnel.state.onChange(() => {
      this.trackAddresses();
      this.syncCapture();
    });
    if (this.opts.serviceVips) {
      const vips = new ServiceVipSync(this.opts.serviceVips, this.opts.node, this.log);
      this.vips = vips;
      const z = this.ztunnel;
      // Until the services first arrive, "none" means "not known yet": the rules written before stay.
      z.state.onChange((s) => {
        if (z.state.hasReceived(TYPE.service)) vips.update(s.services);
      });
    }
    if (this.opts.labState) {
      const runner = new PodProcesses({
        ...this.opts,
        labState: this.opts.labState,
        log: this.log,
        onSidecarRules: () => this.syncCapture(),
      });
      this.podProcesses = runner;
      this.ztunnel.state.onChange((s) => runner.update(s.workloads.values()));
    }
    this.addressTimer = setInterval(() => this.trackAddresses(), ADDRESS_POLL_MS);
    this.addressTimer.unref();
    this.scheduleRenewal();
    await this.ztunnel.start();
    this.log.info({ control: this.opts.control, capture: Boolean(this.opts.capture) }, 'node agent ready');
  }

  async stop(): Promise<void> {
    this.podProcesses?.close();
    clearInterval(this.addressTimer);
    clearTimeout(this.captureRetry);
    clearTimeout(this.renewTimer);
    this.caClient?.close();
    await this.ztunnel?.stop();
    await this.vips?.close();
    await this.captureChain;
  }

  private get current(): NodeCredential {
    if (!this.cred) throw new AmbitError(ZTUNNEL_ERRORS.NODE_NO_CREDENTIAL, 'the node has no credential yet');
    return this.cred;
  }

  private newCaClient(): CaClient {
    return new CaClient({
      address: this.opts.control,
      trustDomain: this.opts.trustDomain,
      trustBundlePem: this.current.trustBundlePem,
      credential: this.current,
    });
  }

  /** Renews the node credential at half its life (retrying with backoff), as workload certificates are. */
  private scheduleRenewal(retryMs?: number): void {
    const leaf = new X509Certificate(this.current.certChainPem);
    const from = Date.parse(leaf.validFrom);
    const to = Date.parse(leaf.validTo);
    const due = retryMs ?? Math.max(1_000, from + (to - from) / 2 - Date.now());
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(
      () => {
        this.renewCredential().then(
          () => this.scheduleRenewal(),
          (err) => {
            const next = Math.min((retryMs ?? 5_000) * 2, 300_000);
            this.log.warn(
              { err: describeError(err), retryInMs: next },
              'could not renew the node credential; the current one stays in use',
            );
            this.scheduleRenewal(next);
          },
        );
      },
      Math.min(due, 2 ** 31 - 1),
    );
    this.renewTimer.unref();
  }

  private async renewCredential(): Promise<void> {
    const pair = await generateKeyPair();
    const id = nodeId(this.opts.trustDomain, this.opts.node);
    const chain = await this.caClient!.fetch(id, await createCsr(id, pair.keys));
    const renewed: NodeCredential = {
      ...this.current,
      certChainPem: chain.slice(0, -1).join('') || chain.join(''),
      keyPem: pair.privateKeyPem,
    };
    await this.save(renewed);
    this.cred = renewed;
    const old = this.caClient;
    this.caClient = this.newCaClient();
    old?.close();
    this.log.info('renewed the node credential');
  }

  private save(cred: NodeCredential): Promise<void> {
    return saveNodeCredential(this.opts.dataDir, cred);
  }

  /** The saved node credential, or a new one from the join token. */
  private credential(): Promise<NodeCredential> {
    return obtainNodeCredential({ ...this.opts, log: this.log });
  }

  /** Keeps the ztunnel's view of the node's own addresses current: every one of them is the node. */
  private trackAddresses(): void {
    const now = localAddresses();
    if (isDeepStrictEqual(now, this.addresses)) return;
    this.addresses = now;
    this.ztunnel?.setNodeAddresses(now);
    this.log.info({ addresses: now }, 'node addresses changed');
  }

  /**
   * Enroll exactly the local workloads the control plane says are in the mesh; nothing else. The
   * whole set is written in one transaction and recorded only once it is in the kernel; a failure is
   * retried with backoff, so a pod is never left out of (or stuck in) capture by a passing error.
   */
  private syncCapture(): void {
    const capture = this.opts.capture;
    const z = this.ztunnel;
    // Before the first workloads arrive, "none wanted" means "not known yet": un-enrolling then would
    // let pods out of the mesh for a moment after every restart.
    if (!capture || !z?.state.hasReceived(TYPE.workload)) return;
    clearTimeout(this.captureRetry);
    this.captureChain = this.captureChain.then(async () => {
      const wanted = new Set<string>();
      const nodeAddresses = new Set(this.addresses);
      for (const w of z.state.snapshot.workloads.values()) {
        // The nftables table is IPv4 (as the lab is); other addresses are not captured. Nor is the node
        // itself: a WorkloadEntry at the node's address would take every connection to the node.
        // A sidecar pod stays captured (and refused: the ztunnel does not carry it) until its own rules
        // are in, where the node runs its sidecars; it is never in clear in between.
        const sidecarStarting =
          w.sidecar &&
          w.enrolled &&
          w.node === this.opts.node &&
          this.podProcesses?.sidecarRulesIn(w.uid) === false;
        if (serves({ node: this.opts.node }, w) || sidecarStarting)
          for (const a of w.addresses) if (isIPv4(a) && !isNodeLocal(a, nodeAddresses)) wanted.add(a);
      }
      if (isDeepStrictEqual(wanted, this.enrolled)) return;
      try {
        await capture.install([...wanted].sort());
        this.enrolled = wanted;
        this.captureBackoffMs = 500;
        this.log.info({ enrolled: [...wanted] }, 'capture updated');
      } catch (err) {
        this.log.error(
          { err: describeError(err), retryInMs: this.captureBackoffMs },
          'could not update capture; retrying',
        );
        this.captureRetry = setTimeout(() => this.syncCapture(), this.captureBackoffMs);
        this.captureBackoffMs = Math.min(this.captureBackoffMs * 2, 30_000);
      }
    });
  }
}

/** How often the node's addresses are re-read, besides on every workload change. */
const ADDRESS_POLL_MS = 1_000;

/**
 * Every IPv4 address of this network namespace, once each and sorted (a routed CNI puts the pods'
 * gateway address on every pod link): the ztunnel never relays a captured connection to any of them.
 */
export function localAddresses(
  interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces(),
): string[] {
  const found = new Set<string>();
  for (const list of Object.values(interfaces)) {
    for (const i of list ?? []) if (i.family === 'IPv4') found.add(i.address);
  }
  return [...found].sort();
}
