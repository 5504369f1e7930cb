// Where connections come in: the node-wide listeners (15001 outbound, 15006 inbound plaintext, 15008
// HBONE with kernel capture; SOCKS5 when asked) and, with capture `none`, one HBONE listener on each
// local workload's own address, as the in-pod model has.

import * as net from 'node:net';
import { originalDst } from '../capture/index.ts';
import { describeError } from '../errors/index.ts';
import type { HboneServer } from '../hbone/index.ts';
import type { Logger } from '../log/index.ts';
import { listenTcp } from '../proxy/index.ts';
import type { WorkloadResource } from '../xds/index.ts';
import type { ZtunnelContext } from './context.ts';
import { onHboneSocket } from './inbound-hbone.ts';
import { onPlaintextInbound } from './inbound-plaintext.ts';
import { canonical } from './labels.ts';
import { ZTUNNEL_DEFAULT_PORTS, type ZtunnelPorts } from './options.ts';
import { onCapturedOutbound, onSocks } from './outbound.ts';

/** The node-wide listeners; each writes the port it bound into `ctx.ports`. */
export class NodeListeners {
  private readonly servers: net.Server[] = [];
  private readonly ctx: ZtunnelContext;
  private readonly maxConnections: number;
  private readonly reusePort: boolean;

  /** `reusePort`: worker threads listen on the same ports (SO_REUSEPORT). */
  constructor(ctx: ZtunnelContext, maxConnections: number, reusePort = false) {
    this.ctx = ctx;
    this.maxConnections = maxConnections;
    this.reusePort = reusePort;
  }

  async start(bind: string, socks: string | undefined, hbone: HboneServer): Promise<void> {
    const ctx = this.ctx;
    if (ctx.capture === 'redirect') {
      await this.listen(bind, 'outbound', (s) => onCapturedOutbound(ctx, s));
      await this.listen(bind, 'inboundPlaintext', (s) => onPlaintextInbound(ctx, s));
      await this.listen(bind, 'hbone', (s) => onHboneSocket(ctx, hbone, s, () => originalDst(s).address));
    }
    if (socks) await this.listen(socks, 'socks5', (s) => onSocks(ctx, s));
  }

  /** Stops accepting; open connections stay. */
  close(): void {
    for (const l of this.servers) l.close();
  }

  private async listen(
    host: string,
    name: keyof ZtunnelPorts,
    onSocket: (s: net.Socket) => void,
  ): Promise<void> {
    const server = await listenTcp({
      host,
      port: this.ctx.ports[name],
      maxConnections: this.maxConnections,
      log: this.ctx.log,
      onSocket,
      reusePort: this.reusePort,
    });
    this.ctx.ports[name] = (server.address() as net.AddressInfo).port;
    this.servers.push(server);
  }
}

/** capture=none: one HBONE listener per local workload address, kept in step with the state. */
export class WorkloadListeners {
  private readonly servers = new Map<string, net.Server>();
  private readonly ctx: ZtunnelContext;
  private readonly hbone: HboneServer;
  private readonly maxConnections: number;
  private readonly reusePort: boolean;
  private closed = false;

  constructor(ctx: ZtunnelContext, hbone: HboneServer, maxConnections: number, reusePort = false) {
    this.ctx = ctx;
    this.hbone = hbone;
    this.maxConnections = maxConnections;
    this.reusePort = reusePort;
  }

  sync(local: WorkloadResource[]): void {
    const wanted = new Set(local.flatMap((w) => w.addresses));
    for (const [address, server] of this.servers) {
      if (!wanted.has(address)) {
        server.close();
        this.servers.delete(address);
      }
    }
    for (const address of wanted) {
      if (this.servers.has(address) || this.closed) continue;
      this.servers.set(address, this.listen(address, this.ctx.log));
    }
  }

  /** Stops accepting (and syncing); open connections stay. */
  close(): void {
    this.closed = true;
    for (const l of this.servers.values()) l.close();
  }

  private listen(address: string, log: Logger): net.Server {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
      s.on('error', () => {});
      onHboneSocket(this.ctx, this.hbone, s, () => canonical(s.localAddress));
    });
    server.maxConnections = this.maxConnections;
    server.on('error', (err) => {
      log.error(
        { err: describeError(err), address },
        'cannot listen for HBONE on a workload address; will retry',
      );
      // Forget it, so the next state change tries again.
      if (this.servers.get(address) === server) this.servers.delete(address);
    });
    const port = this.ctx.ports.hbone === 0 ? ZTUNNEL_DEFAULT_PORTS.hbone : this.ctx.ports.hbone;
    server.listen({ port, host: address, reusePort: this.reusePort });
    return server;
  }
}
