// The waypoint's L7 core: serves HTTP/1.1, h2c and gRPC on each accepted tunnel stream, routes every
// request through the route table and forwards it to a backend endpoint over the upstream connector.

export { BackendState, Backends, type Picker, RetryBudget, roundRobin } from './balance.ts';
export {
  applyEdits,
  downstreamResponseHeaders,
  type Headers,
  shadowAuthority,
  upstreamRequestHeaders,
  withoutHopByHop,
} from './headers.ts';
export { closeProxy, HttpProxy, MAX_HEADER_BYTES, serveConnection } from './proxy.ts';
export { FLAGS } from './replies.ts';
export { type Sniffed, sniff } from './sniff.ts';
export {
  type ConnectionMeta,
  type ConnectOptions,
  type Endpoint,
  type ProxyDeps,
  type SourceMeta,
  type WorkloadLabels,
  workloadTarget,
  workloadTargetAddress,
} from './types.ts';
