// The ztunnel's TCP metrics, named and labelled as Istio's are (so existing dashboards and alerts work).

import { Counter, type Registry } from 'prom-client';

const LABELS = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
] as const;

export type TcpLabels = Partial<Record<(typeof LABELS)[number], string>> & {
  reporter: 'source' | 'destination';
};

/** Istio writes `unknown` for a label it cannot fill; dashboards group on it. */
function complete(labels: TcpLabels): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of LABELS) out[l] = labels[l] ?? 'unknown';
  out.request_protocol = 'tcp';
  out.response_flags = labels.response_flags ?? '-';
  return out;
}

export class TcpMetrics {
  private readonly opened: Counter;
  private readonly closed: Counter;
  private readonly sent: Counter;
  private readonly received: Counter;

  constructor(registry: Registry) {
    const counter = (name: string, help: string) =>
      new Counter({ name, help, labelNames: [...LABELS], registers: [registry] });
    this.opened = counter('istio_tcp_connections_opened_total', 'TCP connections opened');
    this.closed = counter('istio_tcp_connections_closed_total', 'TCP connections closed');
    this.sent = counter('istio_tcp_sent_bytes_total', 'Bytes sent toward the client (response direction)');
    this.received = counter(
      'istio_tcp_received_bytes_total',
      'Bytes received from the client (request direction)',
    );
  }

  open(labels: TcpLabels): void {
    this.opened.inc(complete(labels));
  }

  /** At close: the connection's bytes in each direction, and the close itself. */
  close(labels: TcpLabels, bytes: { fromClient: number; toClient: number }): void {
    const l = complete(labels);
    this.closed.inc(l);
    if (bytes.fromClient > 0) this.received.inc(l, bytes.fromClient);
    if (bytes.toClient > 0) this.sent.inc(l, bytes.toClient);
  }
}
