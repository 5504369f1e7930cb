// One access-log line per proxied connection, with the fields Istio's ztunnel logs.

import type { Logger } from '../log/index.ts';

export interface ConnectionRecord {
  direction: 'inbound' | 'outbound';
  src: { addr: string; workload?: string; namespace?: string; identity?: string };
  dst: {
    addr: string;
    hbone_addr?: string;
    service?: string;
    workload?: string;
    namespace?: string;
    identity?: string;
  };
  bytes_sent: number;
  bytes_recv: number;
  duration_ms: number;
  /** Istio-style response flag: `-`, DENY, CONNECT, … */
  flags: string;
  error?: string;
}

export function logConnection(log: Logger, record: ConnectionRecord): void {
  if (record.error) log.warn(record, 'access');
  else log.info(record, 'access');
}
