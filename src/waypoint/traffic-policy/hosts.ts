// Istio's host names for DestinationRules: a short `spec.host` is relative to the rule's namespace
// (ResolveShortnameToFQDN), `*` and `*.suffix` are wildcards, and the most specific match wins
// (host.MostSpecificHostMatch: an exact host before any wildcard, then the longest wildcard).

/** `reviews` in namespace `shop` → `reviews.shop.svc.<domain>`; anything with a dot, `*` or an IP is kept. */
export function resolveHost(host: string, namespace: string, domain: string): string {
  if (host === '*' || host.includes('.') || host.includes(':')) return host;
  return `${host}.${namespace}.svc.${domain}`;
}

/** The cluster domain of a Service hostname (`a.b.svc.cluster.local` → `cluster.local`). */
export function domainOf(serviceHostname: string): string {
  const at = serviceHostname.indexOf('.svc.');
  return at < 0 ? 'cluster.local' : serviceHostname.slice(at + 5);
}

/** Whether the rule host `pattern` covers `hostname`. */
export function hostMatches(pattern: string, hostname: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) return hostname.endsWith(pattern.slice(1));
  return pattern === hostname;
}

/** The most specific of `patterns` covering `hostname`: itself, else the longest wildcard; undefined: none. */
export function mostSpecificHost(hostname: string, patterns: Iterable<string>): string | undefined {
  let best: string | undefined;
  for (const p of patterns) {
    if (p === hostname) return p;
    if (!p.startsWith('*') || !hostMatches(p, hostname)) continue;
    if (best === undefined || p.length > best.length) best = p;
  }
  return best;
}
