// The ztunnel: the per-node L4 proxy (outbound, inbound, HBONE, SOCKS5, policy, TCP telemetry) and
// the node agent that joins the mesh, registers the node's workloads and owns their capture.

export { ZTUNNEL_ERRORS } from './errors.ts';
export type { L7Hooks, L7Parts } from './l7-hooks.ts';
export { baggageOf, canonical } from './labels.ts';
export {
  Admission,
  type ConnectionLimits,
  defaultLimits,
  fileDescriptorLimit,
  OVERFLOW_FLAG,
  resolveLimits,
} from './limits.ts';
export { mayScrape, parseAdminListen, parseMetricsAllow } from './local-access.ts';
export { NodeAgent, type NodeAgentOptions } from './node-agent.ts';
export {
  type ConfigFeed,
  DEFAULT_INPUTS,
  MAX_WORKER_THREADS,
  workerThreadsOption,
  ZTUNNEL_DEFAULT_PORTS,
  type ZtunnelInputs,
  type ZtunnelOptions,
  type ZtunnelPorts,
} from './options.ts';
export {
  type Addr,
  type InboundPlan,
  isNodeLocal,
  type OutboundPlan,
  planInbound,
  planOutbound,
  policiesFor,
  waypointReplicas,
} from './plan.ts';
export { acceptSocks5, SOCKS_REPLY } from './socks5.ts';
export { type StateSnapshot, ZtunnelState } from './state.ts';
export { Ztunnel } from './ztunnel.ts';
