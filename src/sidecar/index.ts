// Sidecar mode: a proxy in one workload's own pod, as Istio's sidecar is. The ztunnel's data path scoped
// to that workload (L4: identity, mTLS, L4 policy, TCP metrics), with the waypoint's HTTP core for the
// ports it serves as HTTP (L7: routes, traffic policy, authorization per request, request metrics).

export { SIDECAR_L7_TYPES, SidecarL7 } from './l7.ts';
export { type SidecarProcessOptions, sidecarAdminSocket, startSidecar } from './main.ts';
