// PeerAuthentication as a workload sees it once precedence is resolved: a mode, plus per-port
// overrides from the selecting policy's portLevelMtls. Its schema is the workload resource's field.

import { z } from 'zod';
import { type MtlsMode, mtlsMode } from './l4-types.ts';

export const peerAuthSettings = z.object({
  mode: mtlsMode,
  /** Port number (as a string key) → mode, from `portLevelMtls`. */
  portModes: z.record(z.string(), mtlsMode).default({}),
});
export type PeerAuthSettings = z.infer<typeof peerAuthSettings>;

/** The mode that applies to a connection to `port` on the workload. */
export function mtlsModeForPort(settings: PeerAuthSettings, port: number): MtlsMode {
  return settings.portModes[String(port)] ?? settings.mode;
}
