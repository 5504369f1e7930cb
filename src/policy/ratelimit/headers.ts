// The IETF rate-limit headers (draft-ietf-httpapi-ratelimit-headers-11), sent lower-case:
//   ratelimit-policy: "<name>";q=<quota>;w=<window seconds>, ...
//   ratelimit: "<name>";r=<remaining>;t=<seconds until the quota is whole again>, ...
// Both are Structured Field lists whose items are Strings, one per rule that counted the request.

import type { CompiledRule } from './compile.ts';

export interface RuleReport {
  rule: CompiledRule;
  remaining: number;
  reset: number;
}

/** A Structured Field String (RFC 8941 §3.3.3): printable ASCII, with `"` and `\` escaped. */
function sfString(s: string): string {
  return `"${s.replace(/[^\x20-\x7e]/g, '?').replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** The two headers for the rules that counted a request; none when no rule did. */
export function rateLimitHeaders(reports: readonly RuleReport[]): Record<string, string> {
  if (reports.length === 0) return {};
  return {
    'ratelimit-policy': reports
      .map((r) => `${sfString(r.rule.headerName)};q=${r.rule.requests};w=${r.rule.windowSeconds}`)
      .join(', '),
    ratelimit: reports.map((r) => `${sfString(r.rule.headerName)};r=${r.remaining};t=${r.reset}`).join(', '),
  };
}
