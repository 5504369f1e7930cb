// HBONE, the tunnel between proxies: mutual TLS 1.3 to port 15008, one HTTP/2 CONNECT stream per proxied
// TCP connection; the client pool, the server that serves accepted sockets, and the byte splice both use.

export {
  authorityMatchesDestination,
  canonicalIp,
  checkSocketAddr,
  formatAuthority,
  forwardedAddress,
  forwardedFor,
  parseAuthority,
  type SocketAddr,
} from './authority.ts';
export { buffersOnly } from './buffers-only.ts';
export { HBONE_ERRORS } from './errors.ts';
export { isTraceparent, newTraceparent, requestHeaders } from './headers.ts';
export { materialOf, TLS_MIN_VERSION, type TlsMaterial } from './material.ts';
export {
  type ConnectRequest,
  HbonePool,
  type HbonePoolOptions,
  type HboneTunnel,
  type PoolStats,
  poolKey,
} from './pool.ts';
export {
  type ConnectContext,
  type ConnectDecision,
  HboneServer,
  type HboneServerOptions,
  type StreamRecord,
} from './server.ts';
export {
  DEFAULT_FLOW_CONTROL,
  DEFAULT_MAX_STREAMS,
  type FlowControl,
  HBONE_PORT,
  PROCESS_WINDOW_BUDGET,
  TCP_KEEPALIVE_MS,
  WindowBudget,
  type WindowBudgetOptions,
} from './settings.ts';
export {
  resetStream,
  SPLICE_BUFFER_BYTES,
  SPLICE_PROCESS_BUFFER_BYTES,
  type Splice,
  type SpliceResult,
  splice,
  spliceStats,
} from './splice.ts';
