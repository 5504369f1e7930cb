// Logging: one pino logger per component, JSON to stderr by default so stdout stays free for a
// command's own output. AMBIT_LOG_LEVEL sets the level (default info; "silent" in tests).

import { type Logger, pino } from 'pino';

const root = pino(
  {
    level: process.env.AMBIT_LOG_LEVEL ?? 'info',
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  },
  pino.destination(2),
);

export type { Logger };

/** The logger for a component, named as operators see it in log lines (`ztunnel`, `lab`, ...). */
export function logger(component: string): Logger {
  return root.child({ component });
}
