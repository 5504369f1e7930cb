// Keeps a node's Service VIP rules (the job kube-proxy does: a pod outside the mesh connecting to a VIP
// reaches one of the Service's endpoints) in step with the services the control plane streams. One
// sync runs at a time; changes that arrive meanwhile collapse into one more; a failure is retried with
// backoff while the last rules written keep serving.

import type { ServiceVipInput, ServiceVips } from '../capture/index.ts';
import { describeError } from '../errors/index.ts';
import type { Logger } from '../log/index.ts';
import type { ServiceResource } from '../xds/index.ts';
import { serves } from './plan.ts';

export class ServiceVipSync {
  private readonly driver: ServiceVips;
  private readonly log: Logger;
  private readonly node: string;
  private wanted: readonly ServiceVipInput[] | undefined;
  private seen: ReadonlyMap<string, ServiceResource> | undefined;
  private running: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private backoffMs = 500;
  private closed = false;

  constructor(driver: ServiceVips, node: string, log: Logger) {
    this.driver = driver;
    this.node = node;
    this.log = log;
  }

  /** The services as they are now (the state's map: a map not changed since the last call is skipped). */
  update(services: ReadonlyMap<string, ServiceResource>): void {
    if (services === this.seen) return;
    this.seen = services;
    this.wanted = vipInputs(services.values(), this.node);
    this.kick();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await this.running;
  }

  private kick(): void {
    if (this.running || this.closed) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
    });
  }

  private async drain(): Promise<void> {
    while (this.wanted && !this.closed) {
      const services = this.wanted;
      this.wanted = undefined;
      try {
        await this.driver.sync(services);
        this.backoffMs = 500;
      } catch (err) {
        this.log.error(
          { err: describeError(err), retryInMs: this.backoffMs },
          'could not update the Service VIP rules; the last ones written stay; retrying',
        );
        this.wanted ??= services;
        clearTimeout(this.retry);
        this.retry = setTimeout(() => this.kick(), this.backoffMs);
        this.retry.unref();
        this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
        return;
      }
    }
  }
}

/**
 * Kubernetes Services only: kube-proxy gives ServiceEntries nothing (their hosts are the DNS proxy's
 * and the ztunnel's). An endpoint in the mesh on this node is sent to the ztunnel's inbound plaintext
 * listener rather than DNATed to, so its policy (STRICT above all) still decides.
 */
export function vipInputs(services: Iterable<ServiceResource>, node: string): ServiceVipInput[] {
  const inputs: ServiceVipInput[] = [];
  for (const s of services) {
    if (s.kind === 'ServiceEntry') continue;
    inputs.push({
      key: s.key,
      vips: s.vips,
      ports: s.ports,
      endpoints: s.endpoints.map((e) => ({
        address: e.address,
        ports: e.ports,
        inboundCapture: serves({ node }, e),
      })),
    });
  }
  return inputs;
}
