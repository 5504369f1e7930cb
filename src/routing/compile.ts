// HTTPRoutes and GRPCRoutes compiled into a RouteTable: every match of every rule of every route
// attached to a service port, in precedence order, so `decide` only walks a list and acts on the
// first match. Nothing here runs per request except `decide`.
//
// Producer and consumer routes. GAMMA lets a route in the Service's own namespace (producer) and a
// route in a client's namespace (consumer) both attach to a Service (or, as in Istio's ambient mode, a
// ServiceEntry: a route in the entry's namespace is its producer); a consumer route applies only to
// requests from its own namespace (the request's `sourceNamespace`, from the client's identity), and
// for those it replaces the producer routes of its kind (`PortRoutes`).
//
// HTTPRoutes and GRPCRoutes on one service port are never merged (the GRPCRoute spec: "Merging MUST
// not be done between GRPCRoutes and HTTPRoutes"): a gRPC request (content-type application/grpc...)
// is routed by the GRPCRoutes when there are any, every other request by the HTTPRoutes when there
// are any, and by the GRPCRoutes otherwise. `hostnames` is not used to match in the mesh.

import type { GRPCRouteResource, HTTPRouteResource } from '../config/index.ts';
import { attachedPorts, meshParents } from './attach.ts';
import { act } from './decide.ts';
import {
  compileGrpcMatch,
  compileHttpMatch,
  type GrpcMatch,
  type GrpcRank,
  grpcMatches,
  type HttpMatch,
  type HttpRank,
  headerValue,
  httpMatches,
  viewRequest,
} from './match.ts';
import { compareGrpc, compareHttp, createdAt, type Position, type Ranked } from './precedence.ts';
import { noRoute } from './responses.ts';
import { type CompiledRule, compileRule } from './rules.ts';
import {
  type AnyRoute,
  type EntryHostsLookup,
  type MeshLookup,
  meshLookup,
  routeKey,
  routeNamespace,
  type ServiceLookup,
} from './shapes.ts';
import { NO_HEADER_EDITS, type RouteDecision, type RouteRequest, type RouteTable } from './types.ts';

export interface RouteInput {
  httpRoutes: HTTPRouteResource[];
  grpcRoutes: GRPCRouteResource[];
  services: ServiceLookup;
  /** A ServiceEntry's host keys, for ServiceEntry parents and backends; without it none is known. */
  entryHosts?: EntryHostsLookup;
}

interface HttpEntry extends Ranked<HttpRank> {
  match: HttpMatch;
  rule: CompiledRule;
}

interface GrpcEntry extends Ranked<GrpcRank> {
  match: GrpcMatch;
  rule: CompiledRule;
}

/** The matches of one kind of route attached to one service port, in precedence order. */
interface RouteLists {
  http: HttpEntry[];
  grpc: GrpcEntry[];
}

/**
 * What attaches to one service port. GAMMA's producer and consumer routes: a consumer route (in another
 * namespace than its Service) applies only to requests from its own namespace, and for those it
 * replaces the producer routes of its kind; everyone else gets the producer routes. So no namespace
 * can steer another's requests, nor those of the Service's other clients.
 */
interface PortRoutes {
  producer: RouteLists;
  /** By the consumer routes' namespace. */
  consumers: Map<string, RouteLists>;
}

const portKey = (service: string, port: number): string => `${service}|${port}`;

/**
 * The `service|port` keys `route` attaches to (each once, even if two parentRefs name the same port),
 * each with the namespace of the parent it came from (the Service's or the ServiceEntry's).
 */
function attachmentKeys(route: AnyRoute, mesh: MeshLookup): Map<string, string> {
  const keys = new Map<string, string>();
  for (const parent of meshParents(route)) {
    const attached = attachedPorts(parent, mesh);
    if (!attached.ok) continue;
    for (const { service, ports } of attached.services)
      for (const port of ports) keys.set(portKey(service, port), parent.namespace);
  }
  return keys;
}

function position(route: AnyRoute, ruleIndex: number, matchIndex: number): Position {
  return {
    created: createdAt(route.metadata.creationTimestamp),
    route: routeKey(route),
    ruleIndex,
    matchIndex,
  };
}

function httpEntries(route: HTTPRouteResource, mesh: MeshLookup): HttpEntry[] {
  // An HTTPRoute without rules has the CRD's default: one rule matching `PathPrefix /`, no backend.
  const rules = route.spec.rules ?? [{}];
  return rules.flatMap((spec, ruleIndex) => {
    const rule = compileRule(spec, routeKey(route), routeNamespace(route), mesh);
    const matches = spec.matches?.length ? spec.matches : [undefined];
    return matches.map((m, matchIndex) => {
      const match = compileHttpMatch(m);
      return { match, rule, rank: match.rank, position: position(route, ruleIndex, matchIndex) };
    });
  });
}

function grpcEntries(route: GRPCRouteResource, mesh: MeshLookup): GrpcEntry[] {
  return (route.spec.rules ?? []).flatMap((spec, ruleIndex) => {
    const rule = compileRule(spec, routeKey(route), routeNamespace(route), mesh);
    const matches = spec.matches?.length ? spec.matches : [undefined];
    return matches.map((m, matchIndex) => {
      const match = compileGrpcMatch(m);
      return { match, rule, rank: match.rank, position: position(route, ruleIndex, matchIndex) };
    });
  });
}

function isGrpcRequest(req: RouteRequest): boolean {
  return headerValue(req.headers, 'content-type')?.toLowerCase().startsWith('application/grpc') ?? false;
}

/** No route is attached to the service port: the request goes to the service itself, unchanged. */
function toService(service: string, port: number, req: RouteRequest): RouteDecision {
  return {
    kind: 'forward',
    backend: { service, port },
    path: req.path,
    requestHeaders: NO_HEADER_EDITS,
    responseHeaders: NO_HEADER_EDITS,
    mirrors: [],
    extensionRefs: [],
  };
}

export function compileRoutes(input: RouteInput): RouteTable {
  const mesh = meshLookup(input);
  const table = new Map<string, PortRoutes>();
  // The lists a route's entries join at `key`, whose parent is in `parentNamespace`: the producer's,
  // or its own namespace's as a consumer.
  const listsAt = (route: AnyRoute, key: string, parentNamespace: string): RouteLists => {
    let routes = table.get(key);
    if (routes === undefined) {
      routes = { producer: { http: [], grpc: [] }, consumers: new Map() };
      table.set(key, routes);
    }
    const ns = routeNamespace(route);
    if (ns === parentNamespace) return routes.producer;
    let lists = routes.consumers.get(ns);
    if (lists === undefined) {
      lists = { http: [], grpc: [] };
      routes.consumers.set(ns, lists);
    }
    return lists;
  };
  for (const route of input.httpRoutes) {
    const keys = attachmentKeys(route, mesh);
    if (keys.size === 0) continue;
    const entries = httpEntries(route, mesh);
    for (const [key, ns] of keys) listsAt(route, key, ns).http.push(...entries);
  }
  for (const route of input.grpcRoutes) {
    const keys = attachmentKeys(route, mesh);
    if (keys.size === 0) continue;
    const entries = grpcEntries(route, mesh);
    for (const [key, ns] of keys) listsAt(route, key, ns).grpc.push(...entries);
  }
  for (const routes of table.values()) {
    for (const lists of [routes.producer, ...routes.consumers.values()]) {
      lists.http.sort(compareHttp);
      lists.grpc.sort(compareGrpc);
    }
  }

  return {
    decide(service, port, req, random = Math.random) {
      const attached = table.get(portKey(service, port));
      if (attached === undefined) return toService(service, port, req);
      const mine =
        req.sourceNamespace === undefined ? undefined : attached.consumers.get(req.sourceNamespace);
      const routes = {
        http: mine?.http.length ? mine.http : attached.producer.http,
        grpc: mine?.grpc.length ? mine.grpc : attached.producer.grpc,
      };
      // Only other namespaces' consumer routes attach here: none applies to this client.
      if (routes.http.length === 0 && routes.grpc.length === 0) return toService(service, port, req);
      const view = viewRequest(req);
      const grpcRequest = isGrpcRequest(req);
      const byGrpcRoutes = routes.grpc.length > 0 && (grpcRequest || routes.http.length === 0);
      const arrival = { req, view, servicePort: port, grpc: byGrpcRoutes && grpcRequest, random };
      if (byGrpcRoutes) {
        for (const e of routes.grpc) if (grpcMatches(e.match, view)) return act(e.rule, undefined, arrival);
        return noRoute(arrival.grpc);
      }
      for (const e of routes.http)
        if (httpMatches(e.match, view)) return act(e.rule, e.match.prefix, arrival);
      return noRoute(false);
    },
  };
}
