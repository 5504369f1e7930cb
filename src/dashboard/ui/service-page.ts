// #/service/<ns>/<name>: a service's facts, golden signals, neighbours, route splits and policies.

import type { RouteSplit, ServiceDetail, Window as TimeWindow } from '../model.ts';
import type { ApiRequest } from './api.ts';
import { SignalCharts } from './charts.ts';
import {
  DetailHead,
  type DetailRoute,
  explanation,
  listOrNone,
  neighbourTable,
  refLink,
} from './detail-parts.ts';
import { facts, h, link, replaceKeepingFocus, section, table } from './dom.ts';
import { formatPercent, yesNo } from './format.ts';
import type { Page } from './page.ts';
import { href, type Route } from './router.ts';

export class ServicePage implements Page {
  readonly title: string;
  readonly element: HTMLElement;
  #route: DetailRoute;
  readonly #head: DetailHead;
  readonly #charts = new SignalCharts();
  readonly #facts = h('div');
  readonly #traffic = h('div');
  readonly #routes = h('div');
  readonly #explanation = h('div');

  constructor(route: DetailRoute) {
    this.#route = route;
    this.title = `Service ${route.namespace}/${route.name}`;
    this.#head = new DetailHead(route, 'Service');
    this.element = h(
      'div',
      { class: 'detail-page' },
      this.#head.element,
      this.#facts,
      section('Golden signals', this.#charts.element),
      this.#traffic,
      this.#routes,
      this.#explanation,
    );
  }

  request(): ApiRequest {
    const { namespace, name, window } = this.#route;
    return { path: '/api/service', params: { namespace, name, window } };
  }

  setRoute(route: Route): void {
    if (route.page !== 'service') return;
    this.#route = route;
    this.#head.setRoute(route);
  }

  render(d: ServiceDetail): void {
    const timeWindow = this.#route.window;
    replaceKeepingFocus(
      this.#facts,
      section(
        'Facts',
        facts([
          ['Hostname', d.hostname],
          ['VIPs', listOrNone(d.vips)],
          ['Waypoint', d.waypoint ? refLink(d.waypoint, 'workload', d.namespace, timeWindow) : 'none'],
        ]),
        table(
          'Ports',
          ['Port', 'Name', 'Target port'],
          d.ports.map((p) => ({ cells: [String(p.port), p.name ?? '', String(p.targetPort)] })),
        ),
        table(
          'Endpoints',
          ['Workload', 'Address', 'Node', 'Enrolled in the mesh'],
          d.endpoints.map((e) => ({
            cells: [
              link(
                e.name,
                href({ page: 'workload', namespace: d.namespace, name: e.name, window: timeWindow }),
              ),
              e.address,
              e.node ?? '',
              yesNo(e.enrolled),
            ],
          })),
        ),
      ),
    );
    this.#charts.update(d.signals);
    replaceKeepingFocus(
      this.#traffic,
      section(
        'Traffic',
        neighbourTable(`Inbound: who called ${d.name}`, d.inbound, timeWindow),
        neighbourTable(`Outbound: what ${d.name} called`, d.outbound, timeWindow),
      ),
    );
    replaceKeepingFocus(
      this.#routes,
      section(
        'Route splits',
        ...(d.routes.length > 0 ? d.routes.map((r) => splitTable(r, timeWindow)) : [h('p', {}, 'none')]),
      ),
    );
    replaceKeepingFocus(this.#explanation, explanation(d.explanation));
  }

  destroy(): void {
    this.#charts.destroy();
  }
}

/** A route's backends: the share each is configured for beside the share it received. */
function splitTable(split: RouteSplit, timeWindow: TimeWindow): HTMLElement {
  return table(
    `${split.route}, rule ${split.rule}`,
    ['Backend', 'Configured weight %', 'Observed %'],
    split.backends.map((b) => ({
      cells: [
        link(
          `${b.namespace}/${b.name}`,
          href({ page: 'service', namespace: b.namespace, name: b.name, window: timeWindow }),
        ),
        `${formatPercent(b.configuredShare)} (weight ${b.weight})`,
        b.observedShare === undefined ? 'no requests seen' : formatPercent(b.observedShare),
      ],
    })),
  );
}
