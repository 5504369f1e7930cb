// The ztunnel's DNS proxy, as Istio ambient's: enrolled pods' DNS (port 53, UDP and TCP) is captured to
// it; it answers the mesh's Services and ServiceEntry hosts from the state it already holds and forwards
// every other name to the node's upstream resolvers. The table is rebuilt lazily, on the first query
// after the state changed, so a config change costs nothing until a name is asked.

import type { Registry } from 'prom-client';
import { DnsMetrics, DnsServer, NameTable, serviceRecords } from '../dns/index.ts';
import type { Logger } from '../log/index.ts';
import type { StateSnapshot, ZtunnelState } from './state.ts';

export interface DnsProxyOptions {
  host: string;
  port: number;
  upstreams: ReadonlyArray<{ host: string; port: number }>;
  state: ZtunnelState;
  metrics: Registry;
  log: Logger;
}

export class DnsProxy {
  private readonly server: DnsServer;
  private readonly state: ZtunnelState;
  private readonly log: Logger;
  private seen: StateSnapshot | undefined;
  private table = new NameTable([]);

  constructor(opts: DnsProxyOptions) {
    this.state = opts.state;
    this.log = opts.log;
    this.server = new DnsServer({
      host: opts.host,
      port: opts.port,
      upstreams: opts.upstreams,
      table: () => this.current(),
      metrics: new DnsMetrics(opts.metrics),
      log: opts.log,
    });
  }

  get port(): number {
    return this.server.port;
  }

  start(): Promise<void> {
    return this.server.start();
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private current(): NameTable {
    const snapshot = this.state.snapshot;
    if (snapshot !== this.seen) {
      this.seen = snapshot;
      this.table = new NameTable(serviceRecords(snapshot.services.values()), {
        skipInvalid: (err) => this.log.warn({ err }, 'a name left out of the DNS proxy'),
      });
    }
    return this.table;
  }
}
