// Request-level policy at the waypoint: the external authorizer CUSTOM policies ask, and the gate that
// applies the policies binding a request (config's bindsTarget) in Envoy's order before forwarding.

export type { AuthorizerAddress } from './ext-authz.ts';
export { PolicyGate, type PolicyGateOptions } from './gate.ts';
