// #/health: what may be wrong with the mesh itself: control-plane replicas, proxies and their NACKs,
// certificates near expiry, resources not ready, and what the registry found wrong.

import type { MeshHealth } from '../model.ts';
import type { ApiRequest } from './api.ts';
import { h, replaceKeepingFocus, section, table } from './dom.ts';
import { formatDuration, formatExpiry, formatTime, yesNo } from './format.ts';
import type { Page } from './page.ts';

export class HealthPage implements Page {
  readonly title = 'Mesh health';
  readonly element: HTMLElement;
  readonly #content = h('div');

  constructor() {
    this.element = h(
      'div',
      { class: 'health-page' },
      h('div', { class: 'page-head' }, h('h1', {}, 'Mesh health')),
      this.#content,
    );
  }

  request(): ApiRequest {
    return { path: '/api/health', params: {} };
  }

  setRoute(): void {}

  render(d: MeshHealth): void {
    replaceKeepingFocus(
      this.#content,
      replicas(d),
      proxies(d),
      certificates(d),
      resources(d),
      section(
        'Registry issues',
        table(
          'What the registry found wrong or ignored',
          ['Object', 'Problem'],
          d.issues.map((i) => ({ cells: [i.object, i.message] })),
        ),
      ),
    );
  }

  destroy(): void {}
}

function replicas(d: MeshHealth): HTMLElement {
  return section(
    'Control plane',
    table(
      'Control-plane replicas',
      ['Replica', 'gRPC address', 'Writable', 'Duties', 'Proxies', 'Reported', 'Error'],
      d.replicas.map((r) => ({
        cells: [
          r.replica,
          r.grpc,
          yesNo(r.writable),
          r.duties.length > 0 ? r.duties.join(', ') : 'none',
          String(r.proxies),
          formatTime(r.at),
          r.error ? h('span', { class: 'is-bad' }, `✖ ${r.error}`) : 'none',
        ],
      })),
    ),
  );
}

function proxies(d: MeshHealth): HTMLElement {
  return section(
    'Proxies',
    table(
      'Proxies connected to the control plane',
      ['Proxy', 'Kind', 'State', 'Control plane', 'Connected', 'Rejected configuration (NACKs)'],
      d.proxies.map((p) => ({
        attrs: { 'data-proxy': p.name },
        cells: [
          p.name,
          p.kind,
          p.state,
          p.controlPlane ?? '',
          formatTime(p.connectedAt),
          p.nacks.length === 0
            ? 'none'
            : h(
                'ul',
                { class: 'nacks' },
                ...p.nacks.map((n) =>
                  h(
                    'li',
                    {},
                    h('strong', { class: 'is-bad' }, `✖ NACK of ${n.type} (version ${n.version}): `),
                    n.error,
                  ),
                ),
              ),
        ],
      })),
    ),
  );
}

function certificates(d: MeshHealth): HTMLElement {
  return section(
    'Certificates near expiry',
    table(
      `Workload certificates that expire within ${formatDuration(d.nearExpirySeconds)}, soonest first`,
      ['Identity', 'Serial', 'Node', 'Valid until', 'Expiry'],
      d.certificates.map((c) => ({
        cells: [
          h('code', {}, c.identity),
          h('code', {}, c.serial),
          c.node,
          formatTime(c.notAfter),
          h(
            'span',
            { class: c.expiresInSeconds < 0 ? 'is-bad' : 'is-warn' },
            formatExpiry(c.expiresInSeconds),
          ),
        ],
      })),
    ),
  );
}

function resources(d: MeshHealth): HTMLElement {
  return section(
    'Resources not ready',
    table(
      'Resources with a condition that is not True',
      ['Resource', 'Kind', 'Condition', 'Status', 'Reason', 'Message'],
      d.resources.map((r) => ({
        cells: [
          r.namespace ? `${r.namespace}/${r.name}` : r.name,
          r.kind,
          r.condition,
          r.status,
          r.reason ?? '',
          r.message ?? '',
        ],
      })),
    ),
  );
}
