// What the page says about traffic, security and health, in words and icons: colour only ever repeats
// what these say. The graph's labels and the tables use the same words.

import type { GraphEdge, GraphNode, NodeKind, Security, Window as TimeWindow } from '../model.ts';
import { formatBytesPerSecond, formatMs, formatNumber, formatPercent, formatRps } from './format.ts';
import { href } from './router.ts';

/** The traffic fields an edge and a neighbour share. */
export type Traffic = Pick<
  GraphEdge,
  | 'protocol'
  | 'requestsPerSecond'
  | 'errorRate'
  | 'p99Ms'
  | 'bytesPerSecond'
  | 'connectionsPerSecond'
  | 'deniedPerSecond'
  | 'security'
>;

export type Health = GraphNode['health'];

/** Above these error rates an edge is drawn degraded, and failing: the server's rule for nodes (Kiali's). */
export const DEGRADED_ERROR_RATE = 0.001;
export const FAILING_ERROR_RATE = 0.2;

export const SECURITY_WORDS: Record<Security, string> = {
  mtls: '🔒 mTLS',
  plaintext: '⚠ plaintext',
  mixed: '◐ mixed (some plaintext)',
};

export const HEALTH_WORDS: Record<Health, string> = {
  healthy: '✓ healthy',
  degraded: '⚠ degraded',
  failing: '✖ failing',
  idle: '○ idle',
};

export const KIND_WORDS: Record<NodeKind, string> = {
  namespace: 'namespace',
  app: 'app',
  service: 'service',
  workload: 'workload',
  waypoint: 'waypoint',
  unknown: 'unknown',
};

export function isHttp(traffic: Pick<Traffic, 'protocol'>): boolean {
  return traffic.protocol !== 'tcp';
}

/** "12.3 rps", or for TCP "4.5 KB/s". */
export function rateText(t: Traffic): string {
  if (isHttp(t)) return formatRps(t.requestsPerSecond ?? 0);
  return formatBytesPerSecond(t.bytesPerSecond ?? 0);
}

export function errorText(t: Traffic): string {
  if (!isHttp(t)) return 'n/a (TCP)';
  return t.errorRate === undefined ? 'n/a' : formatPercent(t.errorRate);
}

export function p99Text(t: Traffic): string {
  if (!isHttp(t)) return 'n/a (TCP)';
  return t.p99Ms === undefined ? 'too few requests' : formatMs(t.p99Ms);
}

/** ["N rps", "E% err", "p99 X ms"] (HTTP, gRPC; error and p99 when known) or ["X KB/s"] (TCP). */
export function trafficParts(t: Traffic): string[] {
  if (!isHttp(t)) return [formatBytesPerSecond(t.bytesPerSecond ?? 0)];
  const parts = [formatRps(t.requestsPerSecond ?? 0)];
  if (t.errorRate !== undefined) parts.push(`${formatPercent(t.errorRate)} err`);
  if (t.p99Ms !== undefined) parts.push(`p99 ${formatMs(t.p99Ms)}`);
  return parts;
}

/** "N rps · E% err · p99 X ms" (HTTP, gRPC) or "X KB/s" (TCP). */
export function trafficSummary(t: Traffic): string {
  return trafficParts(t).join(' · ');
}

/** "⛔ denied 1.5/s", or '' when nothing was denied. */
export function deniedText(t: Pick<Traffic, 'deniedPerSecond'>): string {
  return t.deniedPerSecond > 0 ? `⛔ denied ${formatNumber(t.deniedPerSecond)}/s` : '';
}

/** How an edge is drawn: by its error rate (HTTP, gRPC), and degraded at least when anything is denied. */
export function edgeHealth(t: Traffic): Exclude<Health, 'idle'> {
  const errors = t.errorRate ?? 0;
  if (errors > FAILING_ERROR_RATE) return 'failing';
  if (errors > DEGRADED_ERROR_RATE || t.deniedPerSecond > 0) return 'degraded';
  return 'healthy';
}

/** A graph node or neighbour, as far as its detail page goes. */
export interface NodeRef {
  kind: NodeKind;
  namespace?: string;
  name?: string;
}

/**
 * The detail page of a node: a service's, or a workload's (a waypoint is a workload too); undefined for
 * boxes and the unknown node.
 */
export function nodeHref(node: NodeRef, timeWindow: TimeWindow): string | undefined {
  if (!node.namespace || !node.name) return undefined;
  if (node.kind === 'service')
    return href({ page: 'service', namespace: node.namespace, name: node.name, window: timeWindow });
  if (node.kind === 'workload' || node.kind === 'waypoint') {
    return href({ page: 'workload', namespace: node.namespace, name: node.name, window: timeWindow });
  }
  return undefined;
}

/** "shop/catalog", or the label when the node has no namespace and name (the unknown node). */
export function nodeName(node: NodeRef & { label?: string; id?: string }): string {
  if (node.namespace && node.name) return `${node.namespace}/${node.name}`;
  return node.name ?? node.label ?? node.id ?? 'unknown';
}
