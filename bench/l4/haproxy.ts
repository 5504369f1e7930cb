// The HAProxy mTLS pair the L4 benchmark compares the ztunnels with: one haproxy per node, a plain
// frontend for the client side that opens TLS 1.3 with a client certificate to the peer haproxy, and a
// TLS frontend (`verify required`) on the server side that forwards plain to the server pod.

/** One proxied path: a plain port on the client's node → TLS port on the server's node → the pod. */
export interface HaproxyRoute {
  name: string;
  /** Plain listening port on the client's node (clients dial the node's gateway address). */
  plainPort: number;
  /** The server-side haproxy: its node's underlay address and TLS port. */
  tlsAddress: string;
  tlsPort: number;
  /** Where the server-side haproxy forwards, `ip:port` of the server pod. */
  target: string;
}

export interface HaproxyTls {
  /** PEM with certificate and key (haproxy's `crt`) the client side presents. */
  clientCrt: string;
  /** PEM with certificate and key the server side presents. */
  serverCrt: string;
  /** The root certificate both sides verify the peer with (haproxy's `ca-file`). */
  caFile: string;
}

const GLOBAL = [
  'global',
  '  maxconn 9000',
  '  ssl-default-bind-options ssl-min-ver TLSv1.3',
  '  ssl-default-server-options ssl-min-ver TLSv1.3',
  'defaults',
  '  mode tcp',
  '  timeout connect 5s',
  '  timeout client 1h',
  '  timeout server 1h',
];

/**
 * The configuration for one node's haproxy: client-side frontends for `outbound` routes (those whose
 * clients live on this node) and server-side TLS frontends for `inbound` routes (whose server does).
 */
export function haproxyConfig(tls: HaproxyTls, outbound: HaproxyRoute[], inbound: HaproxyRoute[]): string {
  const lines = [...GLOBAL];
  for (const r of outbound) {
    lines.push(
      `frontend out_${r.name}`,
      `  bind :${r.plainPort}`,
      `  default_backend tls_${r.name}`,
      `backend tls_${r.name}`,
      `  server peer ${r.tlsAddress}:${r.tlsPort} ssl verify required ca-file ${tls.caFile} crt ${tls.clientCrt}`,
    );
  }
  for (const r of inbound) {
    lines.push(
      `frontend in_${r.name}`,
      `  bind ${r.tlsAddress}:${r.tlsPort} ssl crt ${tls.serverCrt} ca-file ${tls.caFile} verify required`,
      `  default_backend plain_${r.name}`,
      `backend plain_${r.name}`,
      `  server pod ${r.target}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
