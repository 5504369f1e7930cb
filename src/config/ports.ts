// Every port Ambit's parts listen on or dial, in one table (Istio's ambient ports, so tooling and
// firewall rules written for Istio fit). Each part takes its own from here.

export const PORTS = {
  /** A proxy's admin (config dump, certificates, connections): loopback or a private socket only. */
  admin: 15000,
  /** The ztunnel's outbound capture (nftables redirects pods' outgoing connections here). */
  outbound: 15001,
  /** The ztunnel's inbound plaintext capture (connections to a pod from outside the mesh). */
  inboundPlaintext: 15006,
  /** HBONE: mTLS HTTP/2 CONNECT between ztunnels and waypoints. */
  hbone: 15008,
  /** The control plane's gRPC: the CA and the config stream (TLS, authenticated). */
  controlGrpc: 15010,
  /** The control plane's admin API when served on TCP (`--admin-listen`). */
  controlAdmin: 15014,
  /** A proxy's Prometheus metrics. */
  metrics: 15020,
  /** A proxy's readiness (`/healthz/ready`). */
  readiness: 15021,
  /** The ztunnel's DNS proxy, UDP and TCP (enrolled pods' DNS is captured to it). */
  dns: 15053,
  /** The ztunnel's opt-in SOCKS5 listener (explicit capture without root). */
  socks5: 15080,
} as const;
