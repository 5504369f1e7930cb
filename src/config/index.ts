// Configuration: the resource kinds Ambit accepts (Istio and Gateway API shapes), their validation
// with errors that name the field, manifest parsing, resource keys and status conditions.

export { CONFIG_ERRORS } from './errors.ts';
export type { ParentRef, PolicyTargetRef, WorkloadSelector } from './fields.ts';
export {
  cidr,
  cidrMatcher,
  isCidr,
  isDns1123Label,
  isDns1123Subdomain,
  isIpAddress,
  isLabelKey,
  isLabelValue,
  isWorkloadAddress,
  MAX_ANNOTATIONS_BYTES,
  parseDuration,
} from './fields.ts';
export { type ConfigIssue, formatIssue, formatPath } from './issues.ts';
export {
  NAMESPACE_INJECTION,
  type NamespaceResource,
  type ServiceResource,
  SIDECAR_INJECT,
} from './kinds/core.ts';
export { GRPC_STATUS_CODES, type HTTPFaultResource, httpFaultSchema } from './kinds/fault.ts';
export {
  GATEWAY_NAME_LABEL,
  type GatewayResource,
  MAX_WAYPOINT_REPLICAS,
  WAYPOINT_CLASSES,
  WAYPOINT_FOR,
  WAYPOINT_REPLICAS_ANNOTATION,
  WAYPOINT_SERVICE_ACCOUNT_ANNOTATION,
  type WaypointFor,
  waypointReplicas,
  waypointServiceAccount,
} from './kinds/gateway.ts';
export {
  type ExtAuthzHttpProvider,
  type ExtensionProvider,
  type MeshConfigResource,
  meshConfigSchema,
  type OpenTelemetryProvider,
  OUTBOUND_TRAFFIC_MODES,
  type OutboundTrafficMode,
  type RateLimitBackend,
} from './kinds/mesh-config.ts';
export {
  type RateLimitClientSelector,
  type RateLimitPolicyResource,
  type RateLimitRule,
  type RateLimitUnit,
  rateLimitPolicySchema,
  rateLimitRuleName,
} from './kinds/ratelimit.ts';
export {
  type JwtRule,
  jwksProblem,
  type RequestAuthenticationResource,
  requestAuthenticationSchema,
} from './kinds/request-authentication.ts';
export {
  type GRPCRouteResource,
  grpcRouteSchema,
  type HTTPRouteResource,
  httpRouteSchema,
} from './kinds/routes.ts';
export {
  type AuthorizationCondition,
  type AuthorizationOperation,
  type AuthorizationPolicyResource,
  type AuthorizationRule,
  type AuthorizationSource,
  authorizationPolicySchema,
  type PeerAuthenticationResource,
} from './kinds/security.ts';
export {
  isWildcardHost,
  SERVICE_ENTRY_PROTOCOLS,
  type ServiceEntryLocation,
  type ServiceEntryProtocol,
  type ServiceEntryResolution,
  type ServiceEntryResource,
  serviceEntrySchema,
} from './kinds/service-entry.ts';
export { type TelemetryResource, telemetrySchema } from './kinds/telemetry.ts';
export { type DestinationRuleResource, destinationRuleSchema } from './kinds/traffic.ts';
export type { WorkloadEntryResource } from './kinds/workload-entry.ts';
export { KINDS, type KindInfo, kindByCliName, kindByPlural, kindInfo } from './kinds.ts';
export type { Condition } from './meta.ts';
export { namespaceMismatch, type ParsedManifests, type ParseOptions, parseManifests } from './parse.ts';
export { PORTS } from './ports.ts';
export { fullMatchRegExp } from './regexp.ts';
export {
  ofKind,
  type Resource,
  type ResourceKind,
  type ResourceOf,
  resourceKey,
  resourceName,
  resourceNamespace,
} from './resource.ts';
export {
  crossNamespaceTargetRefs,
  isWaypointPolicy,
  L4_WHEN_KEYS,
  l7FieldsOfRule,
  statusConditions,
} from './status.ts';
export {
  bindsTarget,
  GATEWAY_API_GROUP,
  type PolicyTarget,
  TARGET_GROUPS,
  targetGroupMatches,
  targetRefsOf,
} from './targets.ts';
export {
  assertValid,
  CONFIG_INVALID,
  countValues,
  DEFAULT_NAMESPACE,
  invalidConfigError,
  MAX_DEPTH,
  MAX_REPORTED_ISSUES,
  MAX_VALUES,
  type ValidationResult,
  validateResource,
} from './validate.ts';
