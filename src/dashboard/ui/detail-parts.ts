// What the service and workload pages share: their head, neighbour tables, links to what the answer
// names, and the explanation.

import type { Neighbour, ServiceDetail, Window as TimeWindow, WorkloadDetail } from '../model.ts';
import type { ApiRequest } from './api.ts';
import { SignalCharts } from './charts.ts';
import { setWindowSelect, windowSelect } from './controls.ts';
import { type Child, h, joined, link, replaceKeepingFocus, section, table } from './dom.ts';
import { nodeCell, TRAFFIC_HEADERS, trafficCells } from './graph-tables.ts';
import type { Page } from './page.ts';
import { href, navigate, type Route } from './router.ts';

export type DetailRoute = Extract<Route, { page: 'service' | 'workload' }>;

/** The page's title, kind and namespace, its window control and a way back to the graph. */
export class DetailHead {
  readonly element: HTMLElement;
  readonly #windowControl: HTMLElement;
  readonly #graphLink: HTMLAnchorElement;
  #route: DetailRoute;

  constructor(route: DetailRoute, kindWord: string) {
    this.#route = route;
    this.#windowControl = windowSelect(route.window, (w) => navigate({ ...this.#route, window: w }));
    this.#graphLink = link(`Graph of namespace ${route.namespace}`, '#');
    this.element = h(
      'div',
      { class: 'page-head' },
      h(
        'div',
        {},
        h('h1', {}, route.name),
        h('p', { class: 'subtitle' }, `${kindWord} in namespace ${route.namespace}`),
      ),
      h('div', { class: 'controls' }, this.#windowControl, this.#graphLink),
    );
    this.setRoute(route);
  }

  setRoute(route: DetailRoute): void {
    this.#route = route;
    setWindowSelect(this.#windowControl, route.window);
    this.#graphLink.href = href({ page: 'graph', window: route.window, namespace: route.namespace });
  }
}

export function neighbourTable(
  caption: string,
  neighbours: Neighbour[],
  timeWindow: TimeWindow,
): HTMLElement {
  return table(
    caption,
    ['Neighbour', ...TRAFFIC_HEADERS],
    neighbours.map((n) => ({
      attrs: { 'data-neighbour-id': n.id },
      cells: [nodeCell(n, n.id, timeWindow), ...trafficCells(n)],
    })),
    {},
    'none in this window',
  );
}

export function explanation(lines: string[]): HTMLElement {
  return section(
    'Policies and why (as ambit describe)',
    lines.length > 0 ? h('pre', { class: 'explanation' }, lines.join('\n')) : h('p', {}, 'none'),
  );
}

/**
 * A service or workload named by a string of the answer: `ns/name`, a cluster hostname
 * (`name.ns.svc.…`), or a bare name in `namespace`.
 */
export function refLink(
  text: string,
  page: 'service' | 'workload',
  namespace: string,
  timeWindow: TimeWindow,
) {
  const slash = text.split('/');
  const dotted = /^([^.]+)\.([^.]+)\.svc(\.|$)/.exec(text);
  let ref: { namespace: string; name: string } | undefined;
  if (slash.length === 2 && slash[0] && slash[1]) ref = { namespace: slash[0], name: slash[1] };
  else if (dotted?.[1] && dotted[2]) ref = { namespace: dotted[2], name: dotted[1] };
  else if (/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(text)) ref = { namespace, name: text };
  return ref ? link(text, href({ page, ...ref, window: timeWindow })) : text;
}

/** A list's items joined by commas, or "none". */
export function listOrNone<T>(items: T[] | undefined, each: (item: T) => Child = String): Child {
  return items && items.length > 0 ? joined(items.map(each)) : 'none';
}

/**
 * What a service's and a workload's page share: the head, facts, golden-signal charts, neighbours and
 * `ambit describe`'s lines, in that order, with the page's own sections (`extra`) before the last.
 */
export abstract class DetailPage<D extends ServiceDetail | WorkloadDetail> implements Page {
  readonly title: string;
  readonly element: HTMLElement;
  protected route: DetailRoute;
  readonly #kind: D['kind'];
  readonly #head: DetailHead;
  readonly #charts = new SignalCharts();
  readonly #facts = h('div');
  readonly #traffic = h('div');
  readonly #explanation = h('div');

  constructor(route: DetailRoute, kind: D['kind'], extra: HTMLElement[] = []) {
    this.route = route;
    this.#kind = kind;
    const word = kind === 'service' ? 'Service' : 'Workload';
    this.title = `${word} ${route.namespace}/${route.name}`;
    this.#head = new DetailHead(route, word);
    this.element = h(
      'div',
      { class: 'detail-page' },
      this.#head.element,
      this.#facts,
      section('Golden signals', this.#charts.element),
      this.#traffic,
      ...extra,
      this.#explanation,
    );
  }

  request(): ApiRequest {
    const { namespace, name, window } = this.route;
    return { path: `/api/${this.#kind}`, params: { namespace, name, window } };
  }

  setRoute(route: Route): void {
    if (route.page !== this.#kind) return;
    this.route = route;
    this.#head.setRoute(route);
  }

  render(d: D): void {
    const timeWindow = this.route.window;
    replaceKeepingFocus(this.#facts, section('Facts', ...this.facts(d)));
    this.#charts.update(d.signals);
    replaceKeepingFocus(
      this.#traffic,
      section(
        'Traffic',
        neighbourTable(`Inbound: who called ${d.name}`, d.inbound, timeWindow),
        neighbourTable(`Outbound: what ${d.name} called`, d.outbound, timeWindow),
      ),
    );
    this.renderExtra(d);
    replaceKeepingFocus(this.#explanation, explanation(d.explanation));
  }

  destroy(): void {
    this.#charts.destroy();
  }

  /** The page's facts (lists and tables inside the Facts section). */
  protected abstract facts(d: D): Child[];

  /** The page's own sections, if any. */
  protected renderExtra(_d: D): void {}
}
