// #/graph: the service graph, its controls, the clicked edge's details, a legend, and the graph again as
// tables.

import type { Graph, GraphEdge, Window as TimeWindow } from '../model.ts';
import type { ApiRequest } from './api.ts';
import { setWindowSelect, windowSelect } from './controls.ts';
import { facts, h, labelledSelect, option, replaceKeepingFocus } from './dom.ts';
import { formatNumber } from './format.ts';
import { edgeTable, nodeCell, nodeTable } from './graph-tables.ts';
import { GraphView } from './graph-view.ts';
import type { Page } from './page.ts';
import { navigate, type Route } from './router.ts';
import { deniedText, errorText, isHttp, nodeHref, p99Text, rateText, SECURITY_WORDS } from './words.ts';

type GraphRoute = Extract<Route, { page: 'graph' }>;

/** What a browser test reads: how much is drawn, and whether the last answer is drawn and laid out. */
export interface GraphHook {
  nodes: number;
  edges: number;
  ready: boolean;
}

declare global {
  interface Window {
    __ambitGraph?: GraphHook;
  }
}

export class GraphPage implements Page {
  readonly title = 'Graph';
  readonly element: HTMLElement;
  #route: GraphRoute;
  #graph: Graph | undefined;
  #selectedEdge: string | undefined;
  #view: GraphView | undefined;
  readonly #windowControl: HTMLElement;
  readonly #namespaceSelect: HTMLSelectElement;
  readonly #canvas: HTMLElement;
  readonly #empty: HTMLElement;
  readonly #panel: HTMLElement;
  readonly #tables: HTMLElement;

  constructor(route: GraphRoute) {
    this.#route = route;
    window.__ambitGraph = { nodes: 0, edges: 0, ready: false };
    this.#windowControl = windowSelect(route.window, (w) => navigate({ ...this.#route, window: w }));
    this.#namespaceSelect = h('select');
    this.#namespaceSelect.addEventListener('change', () =>
      navigate({ ...this.#route, namespace: this.#namespaceSelect.value || undefined }),
    );
    this.#fillNamespaces([]);
    this.#canvas = h('div', {
      class: 'graph-canvas',
      'data-testid': 'graph',
      role: 'img',
      'aria-label': 'Service graph. The tables below list the same nodes and edges, with links.',
    });
    this.#empty = h(
      'p',
      { class: 'graph-empty', hidden: true },
      'Nothing to draw: no workloads, services or traffic.',
    );
    this.#panel = h('aside', { class: 'edge-panel', 'aria-labelledby': 'edge-panel-title' });
    this.#tables = h('div', { class: 'graph-tables' });
    this.element = h(
      'div',
      { class: 'graph-page' },
      h(
        'div',
        { class: 'page-head' },
        h('h1', {}, 'Service graph'),
        h(
          'div',
          { class: 'controls' },
          this.#windowControl,
          labelledSelect('namespace-select', 'Namespace', this.#namespaceSelect),
        ),
      ),
      h(
        'p',
        { class: 'hint' },
        'Click an edge for its details, or a service or workload to open its page. ',
        'The tables below the graph list every edge and node, with links.',
      ),
      h('div', { class: 'graph-layout' }, this.#canvas, this.#empty, this.#panel),
      legend(),
      this.#tables,
    );
    this.#renderPanel();
  }

  request(): ApiRequest {
    return { path: '/api/graph', params: { window: this.#route.window, namespace: this.#route.namespace } };
  }

  setRoute(route: Route): void {
    if (route.page !== 'graph') return;
    this.#route = route;
    setWindowSelect(this.#windowControl, route.window);
    this.#namespaceSelect.value = route.namespace ?? '';
  }

  async render(graph: Graph): Promise<void> {
    this.#graph = graph;
    const hook: GraphHook = { nodes: 0, edges: 0, ready: false };
    window.__ambitGraph = hook;
    this.#fillNamespaces(graph.allNamespaces);
    this.#empty.hidden = graph.nodes.length > 0;
    replaceKeepingFocus(
      this.#tables,
      h('h2', {}, 'The graph as tables'),
      edgeTable(graph, this.#route.window),
      nodeTable(graph, this.#route.window),
    );
    if (this.#selectedEdge && !graph.edges.some((e) => e.id === this.#selectedEdge)) {
      this.#selectedEdge = undefined;
    }
    this.#renderPanel();
    const view = this.#ensureView();
    await view.update(graph);
    if (this.#view !== view) return; // gone meanwhile
    view.select(this.#selectedEdge);
    if (window.__ambitGraph === hook) window.__ambitGraph = { ...view.counts, ready: true };
  }

  destroy(): void {
    this.#view?.destroy();
    this.#view = undefined;
    window.__ambitGraph = { nodes: 0, edges: 0, ready: false };
  }

  /** The canvas needs a size: the view is made on the first render, once the page is in the document. */
  #ensureView(): GraphView {
    this.#view ??= new GraphView(this.#canvas, {
      onNode: (node) => {
        const target = nodeHref(node, this.#route.window);
        if (target) location.hash = target;
      },
      onEdge: (edge) => {
        this.#selectedEdge = edge?.id;
        this.#renderPanel();
      },
    });
    return this.#view;
  }

  #fillNamespaces(all: string[]): void {
    const current = this.#route.namespace ?? '';
    const names = [...new Set([...all, ...(current ? [current] : [])])].sort();
    const wanted = JSON.stringify(['', ...names]);
    const have = JSON.stringify([...this.#namespaceSelect.options].map((o) => o.value));
    if (wanted !== have) {
      this.#namespaceSelect.replaceChildren(
        option('', 'all namespaces', current === ''),
        ...names.map((ns) => option(ns, ns, ns === current)),
      );
    }
    this.#namespaceSelect.value = current;
  }

  #renderPanel(): void {
    const edge = this.#graph?.edges.find((e) => e.id === this.#selectedEdge);
    const heading = h('h2', { id: 'edge-panel-title' }, 'Edge details');
    this.#panel.hidden = !edge;
    if (!edge || !this.#graph) {
      this.#panel.replaceChildren();
      return;
    }
    const close = h('button', { type: 'button', id: 'edge-panel-close' }, 'Close');
    close.addEventListener('click', () => {
      this.#selectedEdge = undefined;
      this.#view?.select(undefined);
      this.#renderPanel();
    });
    replaceKeepingFocus(this.#panel, heading, edgeFacts(edge, this.#graph, this.#route.window), close);
  }
}

function edgeFacts(edge: GraphEdge, graph: Graph, timeWindow: TimeWindow): HTMLElement {
  const node = (id: string) =>
    nodeCell(
      graph.nodes.find((n) => n.id === id),
      id,
      timeWindow,
    );
  const http = isHttp(edge);
  return facts([
    ['From', node(edge.source)],
    ['To', node(edge.target)],
    ['Protocol', edge.protocol.toUpperCase()],
    [http ? 'Requests' : 'Bytes', rateText(edge)],
    ['Errors', http ? errorText(edge) : null],
    ['p99 latency', http ? p99Text(edge) : null],
    [
      'Connections',
      !http && edge.connectionsPerSecond !== undefined
        ? `${formatNumber(edge.connectionsPerSecond)} opened/s`
        : null,
    ],
    ['Security', h('span', { class: `security security-${edge.security}` }, SECURITY_WORDS[edge.security])],
    ['Denied', deniedText(edge) ? h('span', { class: 'denied' }, deniedText(edge)) : 'none'],
  ]);
}

function legend(): HTMLElement {
  const item = (symbol: string, text: string, cls = '') =>
    h('li', {}, h('span', { class: `legend-symbol ${cls}`, 'aria-hidden': 'true' }, symbol), ' ', text);
  return h(
    'details',
    { class: 'legend', open: true },
    h('summary', {}, 'Legend'),
    h(
      'ul',
      { class: 'legend-items' },
      item('▲', 'service'),
      item('●', 'workload (name and version)'),
      item('⬢', 'waypoint'),
      item('◆', 'unknown (traffic from outside the mesh or not identified)'),
      item('▭', 'namespace and app boxes (an app with several versions)'),
      item('—', 'solid line: 🔒 mTLS'),
      item('- -', 'dashed line: ⚠ plaintext'),
      item('···', 'dotted line: ◐ mixed'),
      item('●', 'green: ✓ healthy', 'is-ok'),
      item('●', 'orange: ⚠ degraded (over 0.1% errors, or denials)', 'is-warn'),
      item('●', 'red: ✖ failing (over 20% errors); red text: ⛔ denied', 'is-bad'),
      item('○', 'faded: idle (no traffic in the window)', 'is-idle'),
    ),
    h(
      'p',
      {},
      'Edge labels: requests per second, error share and p99 latency (HTTP, gRPC) or bytes per second (TCP).',
    ),
  );
}
