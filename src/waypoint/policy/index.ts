// Request-level policy at the waypoint: which policies bind a request (targetRefs), the external
// authorizer CUSTOM policies ask, and the gate that applies them in Envoy's order before forwarding.

export { bindsTarget, type PolicyTarget, targetRefsOf } from './bind.ts';
export { type AuthorizerAddress, checkExternal, EXT_AUTHZ_DENIED } from './ext-authz.ts';
export { attributesOf, PolicyGate, type PolicyGateOptions, RBAC_DENIED_BODY } from './gate.ts';
