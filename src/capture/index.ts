// Traffic capture: the kernel rules that send enrolled pods' TCP and DNS to the ztunnel (nftables, one
// table per node), every pod's Service VIPs (a second table, kube-proxy's job), a sidecar's own pod's
// TCP to that sidecar (sidecar mode: one table inside the pod's namespace), and the original
// destination of each redirected connection (SO_ORIGINAL_DST addon).

export { CAPTURE_ERRORS } from './errors.ts';
export {
  type CaptureDriver,
  NftablesCapture,
  type NftablesCaptureOptions,
  PORTS as CAPTURE_PORTS,
  type RulesetOptions,
  ruleset,
  TABLE as CAPTURE_TABLE,
} from './nftables.ts';
export { type OrigDst, originalDst } from './origdst.ts';
export {
  HAIRPIN_MARK,
  SERVICES_TABLE,
  type ServicePortRule,
  type ServiceVipInput,
  ServiceVips,
  type ServiceVipsOptions,
  servicePlan,
  serviceRuleset,
} from './services.ts';
export {
  SIDECAR_GID,
  SIDECAR_TABLE,
  SidecarCapture,
  type SidecarCaptureOptions,
  type SidecarPorts,
  type SidecarRulesetOptions,
  sidecarRuleset,
} from './sidecar.ts';
