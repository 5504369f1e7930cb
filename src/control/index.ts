// The control plane: the store, the admin API, the registry that derives who runs where, the CA and
// the config stream to every proxy. `startControlPlane` runs them as one process.

export type { View } from './api/admin.ts';
export {
  type ApplyAction,
  type ApplyResult,
  type ApplyResultLike,
  kindOf,
  type ResourceRef,
} from './api/resources.ts';
export { parseLabelSelector } from './api/selector.ts';
export {
  type CaMaterial,
  CertificateAuthority,
  createIntermediateCa,
  createRootCa,
  readCaDir,
  writeCaDir,
  writePemFiles,
} from './ca/index.ts';
export { type ControlConfigFile, loadControlConfig } from './config-file.ts';
export { CONTROL_ERRORS } from './errors.ts';
export { PROMETHEUS_SD_FILES, type TargetGroup, type TargetKind } from './prometheus-sd.ts';
export {
  deriveRegistry,
  type Endpoint,
  issueNamespace,
  type LabPod,
  type Registry,
  type RegistryService,
  type Workload,
} from './registry/index.ts';
export { type ControlOptions, type ControlPlane, parseListen, startControlPlane } from './server.ts';
export {
  REPLICA_NAME,
  REPLICA_NAME_RULE,
  type StoreChoice,
  type StoredObject,
  type StoreSettings,
  storeChoice,
} from './store/index.ts';
export type { ProxyStatus } from './stream.ts';
