// The proxies' link to the control plane: the config stream (delta-xDS semantics: typed, versioned
// resources, ACK/NACK by nonce, incremental pushes, resync on reconnect) and the CSR client, over gRPC.

export {
  CaClient,
  type CaClientOptions,
  CONTROL_CHANNEL_OPTIONS,
  controlPlaneCredentials,
  type NodeCredential,
} from './ca-client.ts';
export {
  CERTIFICATE_SERVICE_NAME,
  type CreateCertificateRequest,
  type CreateCertificateResponse,
  certificateServiceClass,
  type JoinRequest,
  type JoinResponse,
} from './ca-proto.ts';
export { type Delta, XdsClient, type XdsClientOptions } from './client.ts';
export { XDS_ERRORS } from './errors.ts';
export {
  bundleOf,
  indexMesh,
  type MeshIndex,
  outboundTrafficMode,
  PARSE,
  type ServicePortEntry,
  StreamedState,
  sourceIpOf,
  sourceOf,
} from './mesh-index.ts';
export {
  CONFIG_STREAM_SERVICE,
  ConfigStreamClient,
  configStreamDefinition,
} from './proto.ts';
export {
  type AuthorizationResource,
  authorizationResource,
  destinationRuleResource,
  grpcRouteResource,
  httpFaultResource,
  httpRouteResource,
  type MeshSettingsResource,
  mergeDelta,
  meshMode,
  type PolicyRef,
  parseResource,
  policyRef,
  revokedCertificateEntry,
  SERVICE_ENTRY_KEY_PREFIX,
  type ServiceEndpoint,
  type ServicePort,
  type ServiceResource,
  serviceEndpoint,
  serviceKeyParts,
  servicePort,
  serviceResource,
  type TrustBundleResource,
  trustBundleResource,
  type WaypointRef,
  type WorkloadResource,
  waypointRef,
  workloadResource,
} from './resources.ts';
export { type ProxySyncState, StreamSession, type TypeStatus } from './session.ts';
export {
  changesBetween,
  diff,
  type Snapshot,
  TYPE,
  type TypeDelta,
  type TypeSnapshot,
  type TypeUrl,
  typeSnapshot,
  type VersionedResource,
} from './snapshot.ts';
export { ERROR_CODE_KEY, fromServiceError, toServiceError } from './status.ts';
export { controlAddresses, controlTarget } from './target.ts';
export type {
  DeltaRequest,
  DeltaResponse,
  WireResource,
  XdsNode,
} from './types.ts';
