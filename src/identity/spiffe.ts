// SPIFFE IDs: `spiffe://<trust-domain>/<path>`, validated to the SPIFFE ID spec, plus the two shapes Ambit
// issues — workload identities (`/ns/<ns>/sa/<sa>`, Istio's shape) and node credentials.

import { AmbitError } from '../errors/index.ts';
import { IDENTITY_ERRORS } from './errors.ts';

/** A validated SPIFFE ID in canonical form. Only `parseSpiffeId` and the constructors below make one. */
export type SpiffeId = string & { readonly __brand: 'SpiffeId' };

export interface ParsedSpiffeId {
  id: SpiffeId;
  trustDomain: string;
  /** The path, starting with `/` (empty string for a bare trust-domain ID). */
  path: string;
  /** Set when the path is exactly `/ns/<namespace>/sa/<service-account>`. */
  namespace?: string;
  serviceAccount?: string;
  /** Set when the path is a node credential (`/ns/ambit-system/sa/node/<node>`). */
  node?: string;
}

/** The namespace that holds Ambit's own identities (the control plane and node credentials). */
export const SYSTEM_NAMESPACE = 'ambit-system';
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
const MAX_ID_LENGTH = 2048;
const MAX_TRUST_DOMAIN_LENGTH = 255;

const TRUST_DOMAIN_RE = /^[a-z0-9._-]+$/;
const SEGMENT_RE = /^[A-Za-z0-9._-]+$/;
// Kubernetes names: a namespace is a DNS-1123 label, a service account a DNS-1123 subdomain.
const LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function invalid(input: string, why: string): AmbitError {
  return new AmbitError(
    IDENTITY_ERRORS.INVALID_SPIFFE_ID,
    `invalid SPIFFE ID ${JSON.stringify(input)}: ${why}; expected spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`,
    { detail: { input } },
  );
}

/** Checks a trust domain name (lower-case letters, digits, `.`, `-`, `_`). Throws AMBIT_ERR_IDENTITY_INVALID_TRUST_DOMAIN. */
export function validateTrustDomain(td: string): string {
  if (td.length === 0 || td.length > MAX_TRUST_DOMAIN_LENGTH || !TRUST_DOMAIN_RE.test(td)) {
    throw new AmbitError(
      IDENTITY_ERRORS.INVALID_TRUST_DOMAIN,
      `invalid trust domain ${JSON.stringify(td)}: use lower-case letters, digits, ".", "-" and "_" (e.g. cluster.local)`,
      { detail: { trustDomain: td } },
    );
  }
  return td;
}

/** Parses and validates any SPIFFE ID. Throws AMBIT_ERR_IDENTITY_INVALID_SPIFFE_ID naming what is wrong. */
export function parseSpiffeId(input: string): ParsedSpiffeId {
  if (typeof input !== 'string' || input.length === 0) throw invalid(String(input), 'it is empty');
  if (input.length > MAX_ID_LENGTH)
    throw invalid(input.slice(0, 64), `it is longer than ${MAX_ID_LENGTH} bytes`);
  if (!input.startsWith('spiffe://')) throw invalid(input, 'the scheme must be "spiffe://" (lower case)');
  const rest = input.slice('spiffe://'.length);
  if (/[?#]/.test(rest)) throw invalid(input, 'a query or fragment is not allowed');
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (trustDomain.length === 0) throw invalid(input, 'the trust domain is missing');
  if (trustDomain.length > MAX_TRUST_DOMAIN_LENGTH)
    throw invalid(input, `the trust domain is longer than ${MAX_TRUST_DOMAIN_LENGTH} bytes`);
  if (!TRUST_DOMAIN_RE.test(trustDomain)) {
    throw invalid(
      input,
      `the trust domain "${trustDomain}" may hold only a-z, 0-9, ".", "-" and "_" (no port or user)`,
    );
  }
  const parsed: ParsedSpiffeId = { id: input as SpiffeId, trustDomain, path };
  if (path === '') return parsed;
  const segments = path.slice(1).split('/');
  for (const seg of segments) {
    if (seg === '') throw invalid(input, 'the path has an empty segment or a trailing "/"');
    if (seg === '.' || seg === '..') throw invalid(input, 'the path may not contain "." or ".." segments');
    if (!SEGMENT_RE.test(seg))
      throw invalid(input, `the path segment "${seg}" may hold only A-Z, a-z, 0-9, ".", "-" and "_"`);
  }
  if (segments.length === 4 && segments[0] === 'ns' && segments[2] === 'sa') {
    parsed.namespace = segments[1];
    parsed.serviceAccount = segments[3];
  } else if (
    segments.length === 5 &&
    segments[0] === 'ns' &&
    segments[1] === SYSTEM_NAMESPACE &&
    segments[2] === 'sa'
  ) {
    if (segments[3] === 'node') parsed.node = segments[4];
  }
  return parsed;
}

/** Parses a workload identity: a SPIFFE ID whose path is `/ns/<namespace>/sa/<service-account>`. */
export function parseWorkloadId(
  input: string,
): ParsedSpiffeId & { namespace: string; serviceAccount: string } {
  const parsed = parseSpiffeId(input);
  if (parsed.namespace === undefined || parsed.serviceAccount === undefined) {
    throw invalid(input, 'a workload identity needs the path /ns/<namespace>/sa/<service-account>');
  }
  if (!LABEL_RE.test(parsed.namespace) || parsed.namespace.length > 63) {
    throw invalid(
      input,
      `namespace "${parsed.namespace}" is not a valid Kubernetes name (lower-case DNS label)`,
    );
  }
  if (!SUBDOMAIN_RE.test(parsed.serviceAccount) || parsed.serviceAccount.length > 253) {
    throw invalid(input, `service account "${parsed.serviceAccount}" is not a valid Kubernetes name`);
  }
  return parsed as ParsedSpiffeId & { namespace: string; serviceAccount: string };
}

/** True when `input` is a valid SPIFFE ID (any shape). */
export function isSpiffeId(input: string): input is SpiffeId {
  try {
    parseSpiffeId(input);
    return true;
  } catch {
    return false;
  }
}

/** The workload identity for a service account: `spiffe://<td>/ns/<ns>/sa/<sa>`. */
export function workloadId(trustDomain: string, namespace: string, serviceAccount: string): SpiffeId {
  return parseWorkloadId(`spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`).id;
}

/**
 * A node's credential identity: `spiffe://<td>/ns/ambit-system/sa/node/<node>`. It has five path segments,
 * so it can never be mistaken for (or issued as) a workload identity, which has exactly four.
 */
export function nodeId(trustDomain: string, node: string): SpiffeId {
  const id = `spiffe://${trustDomain}/ns/${SYSTEM_NAMESPACE}/sa/node/${node}`;
  const parsed = parseSpiffeId(id);
  if (parsed.node !== node || !SUBDOMAIN_RE.test(node)) {
    throw new AmbitError(
      IDENTITY_ERRORS.INVALID_NODE_NAME,
      `invalid node name ${JSON.stringify(node)}: use a lower-case DNS name (letters, digits, "-", ".")`,
      { detail: { node } },
    );
  }
  return parsed.id;
}

/** The control plane's own identity, presented by its gRPC server on 15010. */
export function controlPlaneId(trustDomain: string): SpiffeId {
  return workloadId(trustDomain, SYSTEM_NAMESPACE, 'ambit-control');
}

/** The trust domain of a SPIFFE ID. */
export function trustDomainOf(id: SpiffeId): string {
  return parseSpiffeId(id).trustDomain;
}

/** Istio writes principals without the scheme (`cluster.local/ns/foo/sa/bar`); policy matches on that form. */
export function principalOf(id: SpiffeId): string {
  return id.slice('spiffe://'.length);
}
