// Request-level policy at the waypoint: the external authorizer CUSTOM policies ask, and the gate that
// applies the policies binding a request (config's bindsTarget) in Envoy's order before forwarding.

export { type AuthorizerAddress, checkExternal, EXT_AUTHZ_DENIED } from './ext-authz.ts';
export { attributesOf, PolicyGate, type PolicyGateOptions, RBAC_DENIED_BODY } from './gate.ts';
