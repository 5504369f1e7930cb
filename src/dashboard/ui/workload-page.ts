// #/workload/<ns>/<name>: a workload's facts and certificate, golden signals, neighbours and policies.

import type { CertificateInfo, WorkloadDetail } from '../model.ts';
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
import { type Child, facts, h, replaceKeepingFocus, section } from './dom.ts';
import { formatExpiry, formatTime } from './format.ts';
import type { Page } from './page.ts';
import type { Route } from './router.ts';

const MESH_MODE = {
  ambient: 'ambient (its node’s ztunnel)',
  sidecar: 'sidecar (its own proxy, in its pod)',
  none: 'none (not enrolled)',
} as const;

export class WorkloadPage implements Page {
  readonly title: string;
  readonly element: HTMLElement;
  #route: DetailRoute;
  readonly #head: DetailHead;
  readonly #charts = new SignalCharts();
  readonly #facts = h('div');
  readonly #traffic = h('div');
  readonly #explanation = h('div');

  constructor(route: DetailRoute) {
    this.#route = route;
    this.title = `Workload ${route.namespace}/${route.name}`;
    this.#head = new DetailHead(route, 'Workload');
    this.element = h(
      'div',
      { class: 'detail-page' },
      this.#head.element,
      this.#facts,
      section('Golden signals', this.#charts.element),
      this.#traffic,
      this.#explanation,
    );
  }

  request(): ApiRequest {
    const { namespace, name, window } = this.#route;
    return { path: '/api/workload', params: { namespace, name, window } };
  }

  setRoute(route: Route): void {
    if (route.page !== 'workload') return;
    this.#route = route;
    this.#head.setRoute(route);
  }

  render(d: WorkloadDetail): void {
    const timeWindow = this.#route.window;
    replaceKeepingFocus(
      this.#facts,
      section(
        'Facts',
        facts([
          ['Kind', d.workloadKind],
          ['Identity', h('code', {}, d.identity)],
          ['Node', d.node ?? 'unknown'],
          ['Mesh mode', MESH_MODE[d.mesh]],
          ['Waypoint', d.waypoint ? refLink(d.waypoint, 'workload', d.namespace, timeWindow) : 'none'],
          ['Services', listOrNone(d.services, (s) => refLink(s, 'service', d.namespace, timeWindow))],
          ['mTLS mode', d.mtls],
          ['Addresses', listOrNone(d.addresses)],
          ['Certificate', d.certificate ? certificate(d.certificate) : 'none held'],
        ]),
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
    replaceKeepingFocus(this.#explanation, explanation(d.explanation));
  }

  destroy(): void {
    this.#charts.destroy();
  }
}

function certificate(c: CertificateInfo): Child {
  const expiry = formatExpiry(c.expiresInSeconds);
  return facts([
    ['Serial', h('code', {}, c.serial)],
    ['Valid from', c.notBefore ? formatTime(c.notBefore) : null],
    ['Valid until', formatTime(c.notAfter)],
    ['Expiry', h('span', { class: c.expiresInSeconds < 0 ? 'is-bad' : '' }, expiry)],
    [
      'Held by',
      c.sidecar ? `its sidecar (pod ${c.sidecar}, node ${c.node})` : `the ztunnel of node ${c.node}`,
    ],
  ]);
}
