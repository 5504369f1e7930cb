// PeerAuthentication as a workload sees it once precedence is resolved: a mode, plus per-port
// overrides from the selecting policy's portLevelMtls.

import type { MtlsMode } from './l4-types.ts';

export interface PeerAuthSettings {
  mode: MtlsMode;
  /** Port number (as a string key) → mode, from `portLevelMtls`. */
  portModes: Record<string, MtlsMode>;
}

/** The mode that applies to a connection to `port` on the workload. */
export function mtlsModeForPort(settings: PeerAuthSettings, port: number): MtlsMode {
  return settings.portModes[String(port)] ?? settings.mode;
}
