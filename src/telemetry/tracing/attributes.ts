// What each span says: OpenTelemetry's HTTP semantic conventions (span names, `http.*`, `url.*`,
// `server.*`, `network.*`), the tags Envoy puts on a proxy's spans (`component`, `node_id`,
// `upstream_cluster`, `response_flags`, `guid:x-request-id`), the `istio.*` tags Istio adds, and the
// Telemetry's custom tags. Pure functions from the request and its outcome to attributes.

import type { Attributes } from '@opentelemetry/api';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_PROTOCOL_NAME,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_PATH,
  ATTR_URL_QUERY,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions';
import type { CustomTag } from './resolve.ts';
import type {
  AttemptResult,
  IncomingRequest,
  Peer,
  ProxyIdentity,
  RequestHeaders,
  RequestResult,
  UpstreamTarget,
} from './types.ts';

/** Envoy's default `max_path_tag_length`: the longest path (and query) a span carries. */
export const DEFAULT_MAX_TAG_LENGTH = 256;

const KNOWN_METHODS: ReadonlySet<string> = new Set([
  'CONNECT',
  'DELETE',
  'GET',
  'HEAD',
  'OPTIONS',
  'PATCH',
  'POST',
  'PUT',
  'TRACE',
]);

/** The method as the conventions name it: a known method, or `_OTHER` (an unbounded set is not a name). */
export function normalMethod(method: string): string {
  const upper = method.toUpperCase();
  return KNOWN_METHODS.has(upper) ? upper : '_OTHER';
}

/** `{method} {route}` for the server span, `{method}` without a route, `HTTP` for an unknown method. */
export function serverSpanName(method: string, route?: string): string {
  const m = normalMethod(method);
  const base = m === '_OTHER' ? 'HTTP' : m;
  return route && m !== '_OTHER' ? `${base} ${route}` : base;
}

export function clientSpanName(method: string): string {
  const m = normalMethod(method);
  return m === '_OTHER' ? 'HTTP' : m;
}

function firstHeader(headers: RequestHeaders, name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' ? v : v?.[0];
}

/** `host[:port]` or `[v6][:port]` split as `server.address` and `server.port`. */
export function splitHost(host: string): { address: string; port?: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(host) ?? /^([^:]*)(?::(\d+))?$/.exec(host);
  if (!m) return { address: host };
  const port = m[2] === undefined ? undefined : Number(m[2]);
  return port === undefined || port > 65_535 ? { address: m[1]! } : { address: m[1]!, port };
}

/** `1.1` or `2` from Node's `httpVersion` (`1.1`, `2.0`) or a protocol name (`HTTP/2`). */
export function protocolVersion(protocol: string): string {
  const v = protocol.replace(/^HTTP\//i, '');
  return v === '2.0' ? '2' : v;
}

const truncate = (s: string, max: number): string => (s.length > max ? s.slice(0, max) : s);

/** Each custom tag's value for this request; a tag with no value and no default is left off, as Envoy does. */
export function customTagValues(
  tags: Readonly<Record<string, CustomTag>>,
  headers: RequestHeaders,
  env: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, tag] of Object.entries(tags)) {
    let value: string | undefined;
    if (tag.literal) value = tag.literal.value;
    else if (tag.header)
      value = firstHeader(headers, tag.header.name.toLowerCase()) ?? tag.header.defaultValue;
    else if (tag.environment) value = env[tag.environment.name] ?? tag.environment.defaultValue;
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** The Istio tags every span of this proxy carries, with Istio's defaults for what is unknown. */
export function proxyAttributes(proxy: ProxyIdentity): Attributes {
  return {
    component: 'proxy',
    node_id: proxy.nodeId,
    'istio.canonical_service': proxy.canonicalService,
    'istio.canonical_revision': proxy.canonicalRevision ?? 'latest',
    'istio.namespace': proxy.namespace,
    'istio.mesh_id': proxy.meshId ?? 'unknown',
    'istio.cluster_id': proxy.clusterId ?? 'unknown',
  };
}

/** The server span's attributes known when the request arrives. */
export function serverRequestAttributes(req: IncomingRequest, maxTagLength: number): Attributes {
  const method = normalMethod(req.method);
  const q = req.path.indexOf('?');
  const path = q < 0 ? req.path : req.path.slice(0, q);
  const out: Attributes = {
    [ATTR_HTTP_REQUEST_METHOD]: method,
    [ATTR_URL_PATH]: truncate(path, maxTagLength),
    [ATTR_URL_SCHEME]: 'http',
    [ATTR_NETWORK_PROTOCOL_NAME]: 'http',
    [ATTR_NETWORK_PROTOCOL_VERSION]: protocolVersion(req.protocol),
  };
  if (method === '_OTHER') out[ATTR_HTTP_REQUEST_METHOD_ORIGINAL] = req.method;
  if (q >= 0 && q < req.path.length - 1) out[ATTR_URL_QUERY] = truncate(req.path.slice(q + 1), maxTagLength);
  const server = splitHost(req.host);
  if (server.address !== '') out[ATTR_SERVER_ADDRESS] = server.address;
  if (server.port !== undefined) out[ATTR_SERVER_PORT] = server.port;
  const ua = firstHeader(req.headers, 'user-agent');
  if (ua !== undefined) out[ATTR_USER_AGENT_ORIGINAL] = ua;
  if (req.peerAddress !== undefined) {
    out[ATTR_CLIENT_ADDRESS] = req.peerAddress;
    out[ATTR_NETWORK_PEER_ADDRESS] = req.peerAddress;
  }
  const requestId = firstHeader(req.headers, 'x-request-id');
  if (requestId !== undefined) out['guid:x-request-id'] = requestId;
  return out;
}

function peerAttributes(side: 'source' | 'destination', peer: Peer | undefined, out: Attributes): void {
  if (!peer) return;
  const put = (field: string, value: string | undefined) => {
    if (value !== undefined && value !== '') out[`istio.${side}_${field}`] = value;
  };
  put('workload', peer.workload);
  put('namespace', peer.namespace);
  put('principal', peer.principal);
  put('canonical_service', peer.canonicalService);
  put('canonical_revision', peer.canonicalRevision);
}

/** Whether the server span is an error: a 5xx, or no response at all (semantic conventions, server side). */
export const serverFailed = (status: number): boolean => status === 0 || status >= 500;

/** The server span's attributes known when the response is done. */
export function serverResultAttributes(result: RequestResult): Attributes {
  const out: Attributes = { response_flags: result.flags === '' ? '-' : result.flags };
  if (result.status > 0) out[ATTR_HTTP_RESPONSE_STATUS_CODE] = result.status;
  if (result.route) out[ATTR_HTTP_ROUTE] = result.route;
  if (result.upstreamCluster) out.upstream_cluster = result.upstreamCluster;
  if (result.requestId) out['guid:x-request-id'] = result.requestId;
  if (serverFailed(result.status))
    out[ATTR_ERROR_TYPE] = result.status > 0 ? String(result.status) : result.flags || '_OTHER';
  peerAttributes('source', result.source, out);
  peerAttributes('destination', result.destination, out);
  return out;
}

/** The client span's attributes when the attempt starts; `resend` counts the attempts before it. */
export function attemptAttributes(method: string, upstream: UpstreamTarget, resend: number): Attributes {
  const out: Attributes = {
    [ATTR_HTTP_REQUEST_METHOD]: normalMethod(method),
    upstream_cluster: upstream.cluster,
    upstream_address: upstream.address,
  };
  const peer = splitHost(upstream.address);
  if (peer.address !== '') {
    out[ATTR_SERVER_ADDRESS] = peer.address;
    out[ATTR_NETWORK_PEER_ADDRESS] = peer.address;
  }
  if (peer.port !== undefined) {
    out[ATTR_SERVER_PORT] = peer.port;
    out[ATTR_NETWORK_PEER_PORT] = peer.port;
  }
  if (resend > 0) out[ATTR_HTTP_REQUEST_RESEND_COUNT] = resend;
  return out;
}

/** Whether the client span is an error: no response, or a 4xx/5xx (semantic conventions, client side). */
export const attemptFailed = (result: AttemptResult): boolean =>
  result.error !== undefined || result.status === undefined || result.status >= 400;

export function attemptResultAttributes(result: AttemptResult): Attributes {
  const out: Attributes = {};
  if (result.status !== undefined) out[ATTR_HTTP_RESPONSE_STATUS_CODE] = result.status;
  if (attemptFailed(result))
    out[ATTR_ERROR_TYPE] =
      result.status !== undefined && result.status >= 400
        ? String(result.status)
        : (result.error ?? '_OTHER');
  return out;
}
