// ServiceEntry (networking.istio.io/v1): hosts outside the registry (or beside it) added to it, with
// their addresses, ports, where they live (MESH_EXTERNAL / MESH_INTERNAL), how their endpoints are
// found (NONE / STATIC / DNS / DNS_ROUND_ROBIN) and the endpoints themselves, inline or selected.
// The cross-field rules are Istio's (pkg/config/validation ValidateServiceEntry), each with its path.

import { z } from 'zod';
import {
  dns1123Label,
  dns1123Subdomain,
  isCidr,
  isDns1123Label,
  isDns1123Subdomain,
  isIpAddress,
  labelMap,
  portNumber,
} from '../fields.ts';
import { envelope, namespacedMetadata } from '../meta.ts';

export const SERVICE_ENTRY_PROTOCOLS = ['HTTP', 'HTTPS', 'GRPC', 'HTTP2', 'MONGO', 'TCP', 'TLS'] as const;
export const SERVICE_ENTRY_RESOLUTIONS = ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN'] as const;
export const SERVICE_ENTRY_LOCATIONS = ['MESH_EXTERNAL', 'MESH_INTERNAL'] as const;

export type ServiceEntryProtocol = (typeof SERVICE_ENTRY_PROTOCOLS)[number];
export type ServiceEntryResolution = (typeof SERVICE_ENTRY_RESOLUTIONS)[number];
export type ServiceEntryLocation = (typeof SERVICE_ENTRY_LOCATIONS)[number];

/** True for a host written `*.example.com`: the one wildcard form a ServiceEntry host may take. */
export function isWildcardHost(host: string): boolean {
  return host.startsWith('*.');
}

/** A DNS name, or one with a leading `*.`; never a bare `*` nor an IP address (which `addresses` holds). */
const host = z.string().superRefine((s, ctx) => {
  if (s === '*') {
    ctx.addIssue({
      code: 'custom',
      message: 'a bare "*" is not allowed: name the hosts, or use a wildcard such as "*.example.com"',
    });
  } else if (isIpAddress(s)) {
    ctx.addIssue({
      code: 'custom',
      message: 'must be a DNS name, not an IP address: put the address in spec.addresses',
    });
  } else if (!isDns1123Subdomain(s.replace(/^\*\./, ''))) {
    ctx.addIssue({
      code: 'custom',
      message:
        'must be a DNS name such as api.example.com, or a wildcard such as *.example.com ("*." only at the start)',
    });
  }
});

/** Istio parses a protocol without regard to case; it is stored upper-case. */
const protocol = z
  .string()
  .transform((s) => s.toUpperCase())
  .pipe(
    z.enum(SERVICE_ENTRY_PROTOCOLS, {
      error: `must be one of ${SERVICE_ENTRY_PROTOCOLS.join(', ')}`,
    }),
  );

const port = z
  .object({
    number: portNumber,
    protocol: protocol.optional(),
    name: dns1123Label,
    targetPort: portNumber.optional(),
  })
  .strict();

const endpoint = z
  .object({
    // An IP address, or (resolution DNS) a hostname: which one is checked against the resolution below.
    address: z.string().min(1, 'is required').optional(),
    ports: z.record(z.string(), portNumber).optional(),
    labels: labelMap.optional(),
    network: z.string().optional(),
    locality: z.string().optional(),
    weight: z.number().int().min(0).max(4294967295).optional(),
    serviceAccount: dns1123Subdomain.optional(),
  })
  .strict();

const exportTo = z.string().refine((s) => s === '.' || s === '*' || s === '~' || isDns1123Label(s), {
  message: 'must be ".", "*", "~" or a namespace name',
});

const serviceEntrySpec = z
  .object({
    hosts: z.array(host).min(1, 'must have at least one host'),
    addresses: z
      .array(z.string().refine(isCidr, 'must be an IP address or a CIDR block such as 198.18.200.0/24'))
      .optional(),
    ports: z.array(port).optional(),
    location: z.enum(SERVICE_ENTRY_LOCATIONS).default('MESH_EXTERNAL'),
    resolution: z.enum(SERVICE_ENTRY_RESOLUTIONS).default('NONE'),
    endpoints: z.array(endpoint).optional(),
    workloadSelector: z.object({ labels: labelMap.optional() }).strict().optional(),
    exportTo: z.array(exportTo).optional(),
    subjectAltNames: z.array(z.string()).optional(),
  })
  .strict()
  .superRefine((spec, ctx) => {
    const issue = (path: PropertyKey[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    firstOfEach(spec.hosts, (i, first) => issue(['hosts', i], `duplicates hosts[${first}]`));
    const ports = spec.ports ?? [];
    firstOfEach(
      ports.map((p) => p.number),
      (i, first) => issue(['ports', i, 'number'], `duplicates the number of ports[${first}]`),
    );
    firstOfEach(
      ports.map((p) => p.name),
      (i, first) => issue(['ports', i, 'name'], `duplicates the name of ports[${first}]`),
    );
    firstOfEach(spec.exportTo ?? [], (i, first) => issue(['exportTo', i], `duplicates exportTo[${first}]`));
    const dns = spec.resolution === 'DNS' || spec.resolution === 'DNS_ROUND_ROBIN';
    (spec.addresses ?? []).forEach((a, i) => {
      if (dns && a.includes('/'))
        issue(['addresses', i], 'a CIDR is allowed only with resolution NONE or STATIC');
    });
    const endpoints = spec.endpoints ?? [];
    if (spec.workloadSelector !== undefined && endpoints.length > 0)
      issue(['workloadSelector'], 'only one of workloadSelector or endpoints can be set');
    if (spec.resolution === 'NONE' && endpoints.length > 0)
      issue(['endpoints'], 'no endpoints should be provided for resolution NONE; use STATIC or DNS');
    if (spec.resolution === 'STATIC' && endpoints.length === 0 && spec.workloadSelector === undefined)
      issue(['endpoints'], 'resolution STATIC needs endpoints (IP addresses) or a workloadSelector');
    if (spec.resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1)
      issue(['endpoints'], 'resolution DNS_ROUND_ROBIN allows at most one endpoint');
    if (dns && endpoints.length === 0) {
      spec.hosts.forEach((h, i) => {
        if (isWildcardHost(h))
          issue(
            ['hosts', i],
            `a wildcard host cannot be resolved: resolution ${spec.resolution} with no endpoints needs every host to be a DNS name`,
          );
      });
    }
    const portNames = new Set(ports.map((p) => p.name));
    endpoints.forEach((ep, i) => {
      checkEndpointAddress(ep.address, spec.resolution, (m) => issue(['endpoints', i, 'address'], m));
      for (const name of Object.keys(ep.ports ?? {})) {
        if (!portNames.has(name))
          issue(['endpoints', i, 'ports', name], `is not the name of a port in spec.ports`);
      }
    });
    // TCP cannot tell hosts apart at one address: Istio refuses several hosts sharing `addresses`
    // with a port that is neither HTTP nor TLS (the Host header or SNI would name the host).
    if (spec.resolution !== 'NONE' && spec.hosts.length > 1 && (spec.addresses?.length ?? 0) > 0) {
      ports.forEach((p, i) => {
        if (!['HTTP', 'HTTP2', 'GRPC', 'HTTPS', 'TLS'].includes(p.protocol ?? 'TCP'))
          issue(
            ['ports', i, 'protocol'],
            'several hosts sharing spec.addresses need HTTP or TLS ports (TCP cannot tell the hosts apart); use one ServiceEntry per host',
          );
      });
    }
  });

function checkEndpointAddress(
  address: string | undefined,
  resolution: ServiceEntryResolution,
  fail: (message: string) => void,
): void {
  if (address === undefined) {
    fail('is required for an inline endpoint');
  } else if (address.startsWith('unix://')) {
    fail('unix domain socket endpoints are not supported by Ambit');
  } else if (isIpAddress(address)) {
    // An IP address is valid with every resolution that takes endpoints.
  } else if (resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') {
    if (address.includes('*') || !isDns1123Subdomain(address))
      fail('must be an IP address or a DNS name (no wildcard) such as db.example.com');
  } else {
    fail('must be an IP address (a DNS name needs resolution DNS)');
  }
}

/** Calls `dup(i, first)` for each value that repeats an earlier one. */
function firstOfEach<T>(values: readonly T[], dup: (i: number, first: number) => void): void {
  const seen = new Map<T, number>();
  values.forEach((v, i) => {
    const first = seen.get(v);
    if (first === undefined) seen.set(v, i);
    else dup(i, first);
  });
}

export const serviceEntrySchema = envelope(
  'ServiceEntry',
  namespacedMetadata(dns1123Subdomain),
  serviceEntrySpec,
);

export type ServiceEntryResource = z.infer<typeof serviceEntrySchema>;
