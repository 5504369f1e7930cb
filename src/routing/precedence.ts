// The order in which matches are tried, so that the first one that matches is the one the spec
// gives precedence to. Computed once per table; `decide` walks the sorted list.
//
// HTTPRoute (Gateway API, HTTPRouteRule.matches): "MUST prioritize matches based on the following
// criteria, continuing on ties": an "Exact" path match; a "Prefix" path match with the largest number
// of characters; a method match; the largest number of header matches; the largest number of query
// param matches. "The precedence of RegularExpression path matches are implementation-specific":
// here a regex path ranks after every Exact and PathPrefix match (as Istio ranks it), so `PathPrefix /`
// still wins over a regex. The prefix length counts the prefix as it matches, trailing `/` ignored
// (`/foo/` and `/foo` match the same paths, so they tie and the route order decides).
//
// GRPCRoute (GRPCRouteRule.matches): the largest number of characters in a matching service, then in
// a matching method, then header matches. The spec does not rank Exact against RegularExpression
// (gateway-api#2216 asked and was closed unanswered); here an Exact method match ranks before a
// regex one, and a match with no method (every method) last.
//
// Then, for both, across routes: "The oldest Route based on creation timestamp", then "The Route
// appearing first in alphabetical order by {namespace}/{name}"; within a route, the first rule in list
// order, and within a rule the first match in list order.

import type { GrpcRank, HttpRank } from './match.ts';

/** Where a match sits: its route's age and name, its rule's and its own index. */
export interface Position {
  /** The route's creationTimestamp in ms; +Infinity when unknown (ranks as the newest). */
  created: number;
  /** `namespace/name` of the route. */
  route: string;
  ruleIndex: number;
  matchIndex: number;
}

export interface Ranked<R> {
  rank: R;
  position: Position;
}

/** The route's creationTimestamp as a number for ordering; unknown or unparsable ranks last. */
export function createdAt(timestamp: string | undefined): number {
  const ms = timestamp === undefined ? Number.NaN : Date.parse(timestamp);
  return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms;
}

function comparePosition(a: Position, b: Position): number {
  if (a.created !== b.created) return a.created < b.created ? -1 : 1;
  if (a.route !== b.route) return a.route < b.route ? -1 : 1;
  if (a.ruleIndex !== b.ruleIndex) return a.ruleIndex - b.ruleIndex;
  return a.matchIndex - b.matchIndex;
}

/** Negative when `a` takes precedence over `b`. */
export function compareHttp(a: Ranked<HttpRank>, b: Ranked<HttpRank>): number {
  const x = a.rank;
  const y = b.rank;
  if (x.pathType !== y.pathType) return x.pathType - y.pathType;
  if (x.prefixLength !== y.prefixLength) return y.prefixLength - x.prefixLength;
  if (x.hasMethod !== y.hasMethod) return x.hasMethod ? -1 : 1;
  if (x.headers !== y.headers) return y.headers - x.headers;
  if (x.query !== y.query) return y.query - x.query;
  return comparePosition(a.position, b.position);
}

/** Negative when `a` takes precedence over `b`. */
export function compareGrpc(a: Ranked<GrpcRank>, b: Ranked<GrpcRank>): number {
  const x = a.rank;
  const y = b.rank;
  if (x.methodType !== y.methodType) return x.methodType - y.methodType;
  if (x.serviceLength !== y.serviceLength) return y.serviceLength - x.serviceLength;
  if (x.methodLength !== y.methodLength) return y.methodLength - x.methodLength;
  if (x.headers !== y.headers) return y.headers - x.headers;
  return comparePosition(a.position, b.position);
}
