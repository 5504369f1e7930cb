// Traffic capture: the kernel rules that send enrolled pods' TCP to the ztunnel (nftables, one table
// per node) and the original destination of each redirected connection (SO_ORIGINAL_DST addon).

export { CAPTURE_ERRORS } from './errors.ts';
export {
  type CaptureDriver,
  NftablesCapture,
  type NftablesCaptureOptions,
  PORTS as CAPTURE_PORTS,
  ruleset,
  TABLE as CAPTURE_TABLE,
} from './nftables.ts';
export { type OrigDst, originalDst } from './origdst.ts';
