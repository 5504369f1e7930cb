// The DNS server's Prometheus metrics. The istio_dns_* four are named and labelled as Istio's ztunnel
// exports them (request_query_type, request_protocol, source_canonical_service,
// source_canonical_revision), so dashboards built for Istio read them. The source labels are
// `unknown`, as Istio writes them, unless the server's owner maps a client address to a workload
// (DnsServerOptions.source): the cluster DNS cannot, the ztunnel can. Istio's histogram buckets are
// kept (sorted: Istio's list has 0.005 before 0.001).
// ambit_dns_* are Ambit's own: every answer by where it came from and its rcode, and every query not
// served as asked, by reason.

import { Counter, Histogram, type Registry } from 'prom-client';

const ISTIO_LABELS = [
  'request_query_type',
  'request_protocol',
  'source_canonical_service',
  'source_canonical_revision',
] as const;

export interface DnsLabels {
  request_query_type: string;
  request_protocol: 'udp' | 'tcp';
  source_canonical_service: string;
  source_canonical_revision: string;
}

/** `table`: from the name table; `upstream`: relayed, or SERVFAIL after the upstreams failed; `server`: the server's own refusals (FORMERR, NOTIMP, REFUSED with no upstream, SERVFAIL when overloaded or the table failed). */
export type AnswerSource = 'table' | 'upstream' | 'server';

/**
 * Why a query was not served as asked. `short`: under 12 bytes, no header to answer; `response`: QR
 * set, dropped so two servers cannot answer each other forever; `overload`: the forwarding bound was
 * reached and the query was answered SERVFAIL at once; `tcp_limit`: a TCP connection over the bound,
 * closed at once; `tcp_length`: a TCP message over the size bound, the connection closed; `closed`:
 * forwarding when the server or the client's connection closed; `send`: the answer could not be sent.
 */
export type DropReason = 'short' | 'response' | 'overload' | 'tcp_limit' | 'tcp_length' | 'closed' | 'send';

/** Query types as label values: dns-packet's names lower-cased (as Istio's are), SVCB and HTTPS by name, the rest `other`, so a client cannot mint label values. */
export function queryTypeLabel(type: string): string {
  if (type === 'UNKNOWN_64') return 'svcb';
  if (type === 'UNKNOWN_65') return 'https';
  return type.startsWith('UNKNOWN_') ? 'other' : type.toLowerCase();
}

export class DnsMetrics {
  private readonly requests: Counter;
  private readonly upstreamRequests: Counter;
  private readonly upstreamFailures: Counter;
  private readonly upstreamDuration: Histogram;
  private readonly answers: Counter;
  private readonly drops: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    const labelNames = [...ISTIO_LABELS];
    this.requests = new Counter({
      name: 'istio_dns_requests_total',
      help: 'Total number of DNS requests (unstable)',
      labelNames,
      registers,
    });
    this.upstreamRequests = new Counter({
      name: 'istio_dns_upstream_requests_total',
      help: 'Total number of DNS requests forwarded to upstream (unstable)',
      labelNames,
      registers,
    });
    this.upstreamFailures = new Counter({
      name: 'istio_dns_upstream_failures_total',
      help: 'Total number of DNS requests that failed to forward upstream (unstable)',
      labelNames,
      registers,
    });
    this.upstreamDuration = new Histogram({
      name: 'istio_dns_upstream_request_duration_seconds',
      help: 'Total time in seconds Istio takes to get DNS response from upstream (unstable)',
      labelNames,
      buckets: [0.001, 0.005, 0.01, 0.1, 1, 5],
      registers,
    });
    this.answers = new Counter({
      name: 'ambit_dns_answers_total',
      help: 'DNS answers sent, by where the answer came from (table, upstream, server) and its rcode',
      labelNames: ['source', 'rcode'],
      registers,
    });
    this.drops = new Counter({
      name: 'ambit_dns_dropped_total',
      help: 'DNS queries not served as asked, by reason (short, response, overload, tcp_limit, tcp_length, closed, send)',
      labelNames: ['reason'],
      registers,
    });
  }

  request(labels: DnsLabels): void {
    this.requests.inc({ ...labels });
  }

  upstreamRequest(labels: DnsLabels): void {
    this.upstreamRequests.inc({ ...labels });
  }

  /** A forwarded query done: its time, and whether it failed. */
  upstreamDone(labels: DnsLabels, seconds: number, failed: boolean): void {
    this.upstreamDuration.observe({ ...labels }, seconds);
    if (failed) this.upstreamFailures.inc({ ...labels });
  }

  answer(source: AnswerSource, rcode: string): void {
    this.answers.inc({ source, rcode });
  }

  dropped(reason: DropReason): void {
    this.drops.inc({ reason });
  }
}
