// The mesh carries TCP only (as Istio ambient): a Service in an ambient namespace that declares UDP or
// SCTP ports is reported as a registry issue (shown by `/ambit/v1/issues`), since STRICT mTLS and
// AuthorizationPolicy do not cover those ports. Services elsewhere, and TCP ports, are not.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertValid, type Resource } from '../../../src/config/index.ts';
import { deriveRegistry } from '../../../src/control/registry/index.ts';

const r = (doc: unknown): Resource => assertValid(doc);
const namespace = (name: string, labels: Record<string, string> = {}) =>
  r({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
const service = (name: string, ns: string, ports: Array<Record<string, unknown>>) =>
  r({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns },
    spec: { selector: { app: name }, ports },
  });
const AMBIENT = { 'istio.io/dataplane-mode': 'ambient' };

const issuesOf = (resources: Resource[]) =>
  deriveRegistry({ resources }).issues.filter((i) => /carries TCP only/.test(i.message));

describe('Services with UDP or SCTP ports in ambient namespaces', () => {
  it('names each such Service once, with its UDP and SCTP ports', () => {
    const issues = issuesOf([
      namespace('shop', AMBIENT),
      service('dns', 'shop', [
        { name: 'dns-udp', port: 53, protocol: 'UDP' },
        { name: 'dns-tcp', port: 53, protocol: 'TCP' },
      ]),
      service('signal', 'shop', [
        { name: 'sctp', port: 3868, protocol: 'SCTP' },
        { name: 'media', port: 5004, protocol: 'UDP' },
      ]),
    ]);
    assert.deepEqual(
      issues.map((i) => i.object),
      ['Service shop/dns', 'Service shop/signal'],
    );
    const [dns, signal] = issues;
    assert.match(dns!.message, /port dns-udp \(53\/UDP\) in ambient namespace shop/);
    assert.doesNotMatch(dns!.message, /dns-tcp/);
    assert.match(dns!.message, /STRICT PeerAuthentication and AuthorizationPolicy do not apply/);
    assert.match(signal!.message, /ports sctp \(3868\/SCTP\), media \(5004\/UDP\)/);
  });

  const quiet: Array<[string, Resource[]]> = [
    [
      'TCP ports only (explicit or by default)',
      [
        namespace('shop', AMBIENT),
        service('web', 'shop', [
          { name: 'http', port: 80, protocol: 'TCP' },
          { name: 'alt', port: 8080 },
        ]),
      ],
    ],
    [
      'a namespace not in the mesh',
      [namespace('legacy'), service('dns', 'legacy', [{ port: 53, protocol: 'UDP' }])],
    ],
    [
      'a namespace that opted out',
      [
        namespace('legacy', { 'istio.io/dataplane-mode': 'none' }),
        service('dns', 'legacy', [{ port: 53, protocol: 'UDP' }]),
      ],
    ],
    ['an undeclared namespace', [service('dns', 'nowhere', [{ port: 53, protocol: 'UDP' }])]],
    ['a Service without ports', [namespace('shop', AMBIENT), service('headless', 'shop', [])]],
  ];
  for (const [name, resources] of quiet) {
    it(`says nothing for ${name}`, () => assert.deepEqual(issuesOf(resources), []));
  }
});
