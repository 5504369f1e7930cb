// The graph as tables: every edge and every node, with links to the detail pages. This is the graph for a
// keyboard or a screen reader (the canvas is neither), and the place a test reads it from.

import type { Graph, GraphNode, Window as TimeWindow } from '../model.ts';
import { type Child, h, link, table } from './dom.ts';
import { formatNumber } from './format.ts';
import {
  deniedText,
  errorText,
  HEALTH_WORDS,
  isHttp,
  KIND_WORDS,
  type NodeRef,
  nodeHref,
  nodeName,
  p99Text,
  rateText,
  SECURITY_WORDS,
  type Traffic,
} from './words.ts';

/** A node's name (or a neighbour's), linked to its detail page when it has one, followed by its kind. */
export function nodeCell(
  node: (NodeRef & { label?: string }) | undefined,
  id: string,
  timeWindow: TimeWindow,
): Child {
  if (!node) return id;
  const name = nodeName(node);
  if (node.kind === 'unknown') return name;
  const target = nodeHref(node, timeWindow);
  return h(
    'span',
    { class: 'node-ref' },
    target ? link(name, target) : name,
    ' ',
    h('span', { class: 'kind' }, KIND_WORDS[node.kind]),
  );
}

/** Rate, error %, p99, security and denials: the cells an edge and a neighbour share. */
export function trafficCells(t: Traffic): Child[] {
  let rate = rateText(t);
  if (!isHttp(t) && t.connectionsPerSecond !== undefined) {
    rate += ` · ${formatNumber(t.connectionsPerSecond)} conn/s`;
  }
  const denied = deniedText(t);
  return [
    t.protocol.toUpperCase(),
    rate,
    errorText(t),
    p99Text(t),
    h('span', { class: `security security-${t.security}` }, SECURITY_WORDS[t.security]),
    denied ? h('span', { class: 'denied' }, denied) : 'none',
  ];
}

export const TRAFFIC_HEADERS = ['Protocol', 'Traffic', 'Errors', 'p99', 'Security', 'Denied'];

export function edgeTable(graph: Graph, timeWindow: TimeWindow): HTMLElement {
  const nodes = new Map(graph.nodes.map((n) => [n.id, n]));
  return table(
    `Edges: traffic over the last ${timeWindow}`,
    ['Source → target', ...TRAFFIC_HEADERS],
    graph.edges.map((edge) => ({
      attrs: { 'data-edge-id': edge.id },
      cells: [
        h(
          'span',
          {},
          nodeCell(nodes.get(edge.source), edge.source, timeWindow),
          ' → ',
          nodeCell(nodes.get(edge.target), edge.target, timeWindow),
        ),
        ...trafficCells(edge),
      ],
    })),
    { 'data-testid': 'edge-table' },
    'none: no traffic in this window',
  );
}

export function nodeTable(graph: Graph, timeWindow: TimeWindow): HTMLElement {
  const nodes = new Map(graph.nodes.map((n) => [n.id, n]));
  return table(
    'Nodes',
    ['Node', 'Kind', 'In', 'Version', 'Health', 'Traffic', 'Mesh'],
    graph.nodes.map((node) => {
      const box = node.kind === 'namespace' || node.kind === 'app';
      const parent = node.parent ? nodes.get(node.parent) : undefined;
      return {
        attrs: { 'data-node-id': node.id },
        cells: [
          nodeTarget(node, timeWindow),
          KIND_WORDS[node.kind],
          parent ? `${KIND_WORDS[parent.kind]} ${parent.label}` : '',
          node.version ?? '',
          box ? '' : HEALTH_WORDS[node.health],
          box ? '' : node.traffic ? 'yes' : 'idle',
          node.mesh === 'none' ? 'not enrolled' : (node.mesh ?? ''),
        ],
      };
    }),
    { 'data-testid': 'node-table' },
    'none',
  );
}

function nodeTarget(node: GraphNode, timeWindow: TimeWindow): Child {
  const target = nodeHref(node, timeWindow);
  if (node.kind === 'namespace' || node.kind === 'app') return node.label;
  return target ? link(nodeName(node), target) : nodeName(node);
}
