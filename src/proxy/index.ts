// The proxy runtime: what every proxy (the ztunnel, the waypoint) is built on. The connection table that
// tracks, meters, logs and cuts connections; draining; the metrics, readiness and admin endpoints; TCP
// listeners, upstream dials and the idle cut; memory given back to the system after a burst.

export {
  type ConnectionBytes,
  ConnectionTable,
  type ConnectionView,
  type TrackedConnection,
} from './connections.ts';
export { drain } from './drain.ts';
export { PROXY_ERRORS } from './errors.ts';
export { adminHandler, HttpEndpoints, type HttpHandler, metricsHandler, readinessHandler } from './http.ts';
export {
  type MemoryReport,
  type MemoryTrimOptions,
  memoryFreed,
  memoryReport,
  trimMemoryWhenQuiet,
} from './memory.ts';
export {
  NODE_CREDENTIAL_FILE,
  type NodeCredentialOptions,
  nodeCredentialCertificates,
  obtainNodeCredential,
  readNodeCredential,
  saveNodeCredential,
} from './node-credential.ts';
export { EVENT_LOOP_SAMPLE_MS, proxyRegistry } from './registry.ts';
export {
  CAPTURED_SOCKET,
  connectTcp,
  listenTcp,
  type TcpTarget,
  watchIdle,
} from './tcp.ts';
