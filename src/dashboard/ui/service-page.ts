// #/service/<ns>/<name>: a service's facts, golden signals, neighbours, route splits and policies.

import type { RouteSplit, ServiceDetail, Window as TimeWindow } from '../model.ts';
import { DetailPage, type DetailRoute, listOrNone, refLink } from './detail-parts.ts';
import { type Child, facts, h, link, replaceKeepingFocus, section, table } from './dom.ts';
import { formatPercent, yesNo } from './format.ts';
import { href } from './router.ts';

export class ServicePage extends DetailPage<ServiceDetail> {
  readonly #routes: HTMLElement;

  constructor(route: DetailRoute) {
    const routes = h('div');
    super(route, 'service', [routes]);
    this.#routes = routes;
  }

  protected facts(d: ServiceDetail): Child[] {
    const timeWindow = this.route.window;
    return [
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
    ];
  }

  protected override renderExtra(d: ServiceDetail): void {
    const timeWindow = this.route.window;
    replaceKeepingFocus(
      this.#routes,
      section(
        'Route splits',
        ...(d.routes.length > 0 ? d.routes.map((r) => splitTable(r, timeWindow)) : [h('p', {}, 'none')]),
      ),
    );
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
