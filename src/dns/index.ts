// DNS: name tables (exact names, wildcards, authoritative zones) and a UDP+TCP server that answers from
// a table and forwards the rest upstream, with its metrics; the cluster DNS and the ztunnel's proxy use it.

export { DNS_ERRORS } from './errors.ts';
export { type Forwarding, parseUpstreams, resolvConfNameservers, type Upstream } from './forward.ts';
export { resolveOne } from './lookup.ts';
export { type AnswerSource, type DnsLabels, DnsMetrics, type DropReason } from './metrics.ts';
export { type DnsRecordSet, type Lookup, NameTable, type NameTableOptions, normalizeName } from './names.ts';
export { DNS_DEFAULTS, DnsServer, type DnsServerOptions } from './server.ts';
export { type NamedService, serviceRecords } from './service-names.ts';
