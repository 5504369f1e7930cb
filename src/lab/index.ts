// The lab: turns one Linux host into several "nodes" carrying "pods", each a real network
// namespace, so the mesh captures and secures real kernel traffic as it would between machines.

export { LAB_ERRORS } from './errors.ts';
export { forwardUnixToTcp } from './forward.ts';
export {
  CONTROL_TARGET,
  clusterDns,
  DEFAULT_LAB,
  defaultLabName,
  Lab,
  type LabOptions,
  type LabStatus,
  type LabUpOptions,
  type PodSpec,
  type ProcessStatus,
} from './lab.ts';
export {
  CLUSTER_DNS_ADDRESS,
  CONTROL_ADDRESS,
  formatLabels,
  hostAddress,
  isHostName,
  labNames,
  MAX_CONTROL_REPLICAS,
  MAX_ETCD_MEMBERS,
  NETNS_PREFIX,
  nodeAddress,
  nodeGateway,
  nodeName,
  parseLabels,
  podSubnet,
} from './plan.ts';
export { ambitHome, labPods, type PodRecord, type ProcessRecord } from './state.ts';
export { type CommandResult, checkPrerequisites, LAB_TOOLS, waitUntil } from './system.ts';
