// #/workload/<ns>/<name>: a workload's facts and certificate, golden signals, neighbours and policies.

import type { CertificateInfo, WorkloadDetail } from '../model.ts';
import { DetailPage, type DetailRoute, listOrNone, refLink } from './detail-parts.ts';
import { type Child, facts, h } from './dom.ts';
import { formatExpiry, formatTime } from './format.ts';

const MESH_MODE = {
  ambient: 'ambient (its node’s ztunnel)',
  sidecar: 'sidecar (its own proxy, in its pod)',
  none: 'none (not enrolled)',
} as const;

export class WorkloadPage extends DetailPage<WorkloadDetail> {
  constructor(route: DetailRoute) {
    super(route, 'workload');
  }

  protected facts(d: WorkloadDetail): Child[] {
    const timeWindow = this.route.window;
    return [
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
    ];
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
