// The config stream between the control plane and every proxy: delta-xDS semantics (typed,
// versioned resources, ACK/NACK by nonce, incremental pushes, resync on reconnect) over gRPC.

export { type Delta, XdsClient, type XdsClientOptions } from './client.ts';
export {
  CONFIG_STREAM_SERVICE,
  ConfigStreamClient,
  configStreamDefinition,
  NodeRegistrationClient,
  nodeRegistrationDefinition,
} from './proto.ts';
export { type ProxySyncState, StreamSession, type TypeStatus } from './session.ts';
export {
  diff,
  type Snapshot,
  TYPE,
  type TypeDelta,
  type TypeSnapshot,
  type TypeUrl,
  typeSnapshot,
  type VersionedResource,
} from './snapshot.ts';
export type {
  DeltaRequest,
  DeltaResponse,
  RegisteredWorkload,
  RegisterResponse,
  WireResource,
  XdsNode,
} from './types.ts';
