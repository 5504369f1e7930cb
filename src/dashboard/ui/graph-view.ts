// The service graph on a cytoscape canvas. A refresh with the same nodes and edges only changes their
// data (labels, colours), so nothing moves under the reader; the layout runs again only when the set of
// nodes or edges changed.

import cytoscape from 'cytoscape';
import type { Graph, GraphEdge, GraphNode } from '../model.ts';
import { graphStyle } from './graph-style.ts';
import { onSchemeChange, readTheme } from './theme.ts';
import { deniedText, edgeHealth, isHttp, SECURITY_WORDS, trafficParts } from './words.ts';

export interface GraphViewEvents {
  /** A node with a detail page was clicked. */
  onNode(node: GraphNode): void;
  /** An edge was clicked, or the background (undefined). */
  onEdge(edge: GraphEdge | undefined): void;
}

const SHORT_SECURITY_WORDS: Record<GraphEdge['security'], string> = {
  mtls: SECURITY_WORDS.mtls,
  plaintext: SECURITY_WORDS.plaintext,
  mixed: '◐ mixed',
};

const NODE_HEALTH_WORDS: Record<GraphNode['health'], string> = {
  healthy: '✓',
  degraded: '⚠ degraded',
  failing: '✖ failing',
  idle: 'idle',
};

/** Spacing of the layout's columns and rows, in multiples of the largest node with its label. */
const COLUMN_SPACING = 1.5;
const ROW_SPACING = 1.3;
/** Space between a box and what is not in it. */
const GROUP_GAP = 40;
const FIT_PADDING = 30;
/** A small graph is not blown up beyond this to fill the canvas. */
const MAX_FIT_ZOOM = 1.25;

export class GraphView {
  readonly #cy: cytoscape.Core;
  readonly #container: HTMLElement;
  readonly #stopSchemeWatch: () => void;
  #nodes = new Map<string, GraphNode>();
  #edges = new Map<string, GraphEdge>();
  /** The ids (and parents) drawn now; the layout runs again when they change. */
  #signature = '';

  constructor(container: HTMLElement, events: GraphViewEvents) {
    this.#container = container;
    this.#cy = cytoscape({
      container,
      style: graphStyle(readTheme(container)),
      boxSelectionEnabled: false,
      selectionType: 'single',
      minZoom: 0.2,
      maxZoom: 3,
    });
    this.#cy.on('tap', 'node', (event) => {
      const node = this.#nodes.get(event.target.id());
      if (node && (node.kind === 'service' || node.kind === 'workload' || node.kind === 'waypoint')) {
        events.onNode(node);
      }
    });
    this.#cy.on('tap', 'edge', (event) => events.onEdge(this.#edges.get(event.target.id())));
    this.#cy.on('tap', (event) => {
      if (event.target === this.#cy) events.onEdge(undefined);
    });
    this.#cy.on('mouseover', 'node[kind="service"], node[kind="workload"], node[kind="waypoint"], edge', () =>
      container.classList.add('is-pointing'),
    );
    this.#cy.on('mouseout', 'node, edge', () => container.classList.remove('is-pointing'));
    this.#stopSchemeWatch = onSchemeChange(() => this.#cy.style(graphStyle(readTheme(container))));
  }

  /** Draws `graph`; resolves once it is laid out. */
  async update(graph: Graph): Promise<void> {
    this.#nodes = new Map(graph.nodes.map((n) => [n.id, n]));
    this.#edges = new Map(graph.edges.map((e) => [e.id, e]));
    // An edge or a parent the answer names but does not hold would stop cytoscape: leave it off the
    // canvas (the tables below it still list every edge).
    const ids = new Set(graph.nodes.map((n) => n.id));
    const elements = [
      ...graph.nodes.map((n) =>
        nodeElement(n.parent && !ids.has(n.parent) ? { ...n, parent: undefined } : n),
      ),
      ...graph.edges.filter((e) => ids.has(e.source) && ids.has(e.target)).map(edgeElement),
    ];
    const signature = elements
      .map((e) => `${e.data.id}|${e.data.parent ?? ''}`)
      .sort()
      .join('\n');
    if (signature === this.#signature) {
      this.#cy.batch(() => {
        // What an element is attached to cannot change through data(), and has not changed.
        for (const { data } of elements) {
          const { id = '', source: _s, target: _t, parent: _p, ...rest } = data;
          this.#cy.getElementById(id).data(rest);
        }
      });
      return;
    }
    this.#signature = signature;
    const selected = this.#cy.$(':selected').map((e) => e.id());
    this.#cy.batch(() => {
      this.#cy.elements().remove();
      this.#cy.add(elements);
    });
    for (const id of selected) this.#cy.getElementById(id).select();
    await this.#layout();
  }

  /** How many nodes and edges are drawn. */
  get counts(): { nodes: number; edges: number } {
    return { nodes: this.#cy.nodes().length, edges: this.#cy.edges().length };
  }

  /** Marks `id` as the selected edge (or none). */
  select(id: string | undefined): void {
    this.#cy.$(':selected').unselect();
    if (id) this.#cy.getElementById(id).select();
  }

  async #layout(): Promise<void> {
    const cy = this.#cy;
    // Breadth-first over the nodes that are not boxes (the boxes fit around them), in a tiny box so that
    // the spacing is the nodes' own size with their labels whatever the canvas's size, then turned to run
    // left to right with room between columns for the edges' labels.
    const layout = cy
      .elements()
      .filter((e) => e.isEdge() || e.isChildless())
      .layout({
        name: 'breadthfirst',
        directed: true,
        animate: false,
        nodeDimensionsIncludeLabels: true,
        boundingBox: { x1: 0, y1: 0, w: 1, h: 1 },
        padding: 0,
        depthSort: (a, b) => boxKey(a).localeCompare(boxKey(b)),
        transform: (_node, p) => ({ x: p.y * COLUMN_SPACING, y: p.x * ROW_SPACING }),
      });
    const done = layout.promiseOn('layoutstop');
    layout.run();
    await done;
    separateGroups(cy);
    cy.fit(undefined, FIT_PADDING);
    if (cy.zoom() > MAX_FIT_ZOOM) {
      cy.zoom(MAX_FIT_ZOOM);
      cy.center();
    }
  }

  destroy(): void {
    this.#stopSchemeWatch();
    this.#cy.destroy();
    this.#container.classList.remove('is-pointing');
  }
}

function nodeElement(node: GraphNode): cytoscape.ElementDefinition {
  const box = node.kind === 'namespace' || node.kind === 'app';
  const lines = [box ? `${node.kind} ${node.label}` : node.label];
  if (node.version && !node.label.includes(node.version)) lines.push(node.version);
  if (node.kind === 'waypoint') lines.push('waypoint');
  // A box's health is its members'; a node's is written beside its name (✓) or under it.
  if (!box && node.health === 'healthy') lines[0] = `${NODE_HEALTH_WORDS.healthy} ${lines[0]}`;
  else if (!box) lines.push(NODE_HEALTH_WORDS[node.health]);
  return {
    group: 'nodes',
    data: {
      id: node.id,
      parent: node.parent,
      label: lines.join('\n'),
      kind: node.kind,
      health: node.health,
      idle: !node.traffic,
    },
  };
}

function edgeElement(edge: GraphEdge): cytoscape.ElementDefinition {
  // The traffic summary in short lines ("N rps · E% err", "p99 X ms"): a long label would need wide columns.
  const parts = trafficParts(edge);
  const lines = [parts.slice(0, 2).join(' · '), ...parts.slice(2), SHORT_SECURITY_WORDS[edge.security]];
  const denied = deniedText(edge);
  if (denied) lines.push(denied);
  const idle = isHttp(edge) ? !edge.requestsPerSecond && !edge.deniedPerSecond : !edge.bytesPerSecond;
  return {
    group: 'edges',
    data: {
      id: edge.id,
      source: edge.source,
      target: edge.target,
      label: lines.join('\n'),
      health: edgeHealth(edge),
      security: edge.security,
      denied: edge.deniedPerSecond > 0,
      idle,
    },
  };
}

/** Sorts a column: nodes outside any box first, then box by box, so that a box's members sit together. */
function boxKey(node: cytoscape.NodeSingular): string {
  const top = node.ancestors().filter((a) => a.isOrphan());
  return `${top.length > 0 ? `1${top.first().id()}` : '0'}|${node.parent().first().id() ?? ''}|${node.id()}`;
}

/**
 * The layout knows nothing of boxes: moves each top-level group (a namespace box with what is in it, or a
 * node outside any box) down below the groups above it that share its columns, so that no box covers a
 * node that is not in it and boxes do not overlap.
 */
function separateGroups(cy: cytoscape.Core): void {
  const groups = cy
    .nodes()
    .orphans()
    .map((top) => ({
      nodes: top
        .union(top.descendants())
        .nodes()
        .filter((n) => n.isChildless()),
      box: top.boundingBox(),
    }))
    .sort((a, b) => a.box.y1 - b.box.y1);
  const placed: cytoscape.BoundingBox12[] = [];
  for (const { nodes, box } of groups) {
    const above = placed.filter((p) => p.x1 < box.x2 && box.x1 < p.x2);
    const shift = Math.max(0, ...above.map((p) => p.y2 + GROUP_GAP - box.y1));
    if (shift > 0) nodes.shift({ x: 0, y: shift });
    placed.push({ x1: box.x1, x2: box.x2, y1: box.y1 + shift, y2: box.y2 + shift });
  }
}
