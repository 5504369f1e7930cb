// What a verified token changes in the request sent upstream: the payload and claims copied into
// headers, the token itself removed unless the rule forwards it, and the output headers a client
// sent itself always removed, so that no client can pass off a claim header of its own.

import type { JwtRule } from '../../config/index.ts';
import { type FoundToken, withoutParam } from './locations.ts';
import type { ParsedJwt } from './token.ts';

export interface HeaderEdits {
  /** Headers to set (after `remove` is applied), lower-case names. */
  set: Array<[string, string]>;
  /** Headers to drop, lower-case names. */
  remove: string[];
}

/** Every header any rule writes: removed from every request before anything is set. */
export function outputHeaderNames(rules: readonly JwtRule[]): string[] {
  const names = new Set<string>();
  for (const rule of rules) {
    if (rule.outputPayloadToHeader) names.add(rule.outputPayloadToHeader.toLowerCase());
    for (const { header } of rule.outputClaimToHeaders ?? []) names.add(header.toLowerCase());
  }
  return [...names];
}

/** A claim at a dotted path (`nested.key.group`), read through nested objects. */
function claimAt(payload: Record<string, unknown>, path: string): unknown {
  let value: unknown = payload;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/**
 * A claim as Envoy writes it into a header: strings as they are, whole non-negative numbers as
 * integers, other numbers with six decimals (C++ `std::to_string`), booleans as true/false; any
 * other type, or an empty string, writes nothing.
 */
export function claimHeaderValue(payload: Record<string, unknown>, path: string): string | undefined {
  const value = claimAt(payload, path);
  let out: string | undefined;
  if (typeof value === 'string') out = value;
  else if (typeof value === 'boolean') out = value ? 'true' : 'false';
  else if (typeof value === 'number' && Number.isFinite(value)) {
    out =
      value >= 0 && value < 2 ** 64 && Number.isInteger(value) ? BigInt(value).toString() : value.toFixed(6);
  }
  return out === '' ? undefined : out;
}

/** The edits for a request whose `tokens` the rule verified; `path` is set when a query token was removed. */
export function editsFor(
  rule: JwtRule,
  jwt: ParsedJwt,
  tokens: readonly FoundToken[],
  path: string,
  sanitized: readonly string[],
): { headers: HeaderEdits; path?: string } {
  const remove = new Set(sanitized);
  let newPath = path;
  if (!rule.forwardOriginalToken) {
    for (const { location } of tokens) {
      if (location.kind === 'header') remove.add(location.name);
      else if (location.kind === 'param') newPath = withoutParam(newPath, location.name);
      // Envoy leaves a cookie token in place (it never rewrites the Cookie header); so does Ambit.
    }
  }
  const set: Array<[string, string]> = [];
  if (rule.outputPayloadToHeader) set.push([rule.outputPayloadToHeader.toLowerCase(), jwt.payloadBase64url]);
  for (const { header, claim } of rule.outputClaimToHeaders ?? []) {
    const value = claimHeaderValue(jwt.payload, claim);
    if (value !== undefined) set.push([header.toLowerCase(), value]);
  }
  return { headers: { set, remove: [...remove] }, ...(newPath === path ? {} : { path: newPath }) };
}
