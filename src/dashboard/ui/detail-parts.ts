// What the service and workload pages share: their head, neighbour tables, links to what the answer
// names, and the explanation.

import type { Neighbour, Window as TimeWindow } from '../model.ts';
import { setWindowSelect, windowSelect } from './controls.ts';
import { type Child, h, joined, link, section, table } from './dom.ts';
import { nodeCell, TRAFFIC_HEADERS, trafficCells } from './graph-tables.ts';
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
