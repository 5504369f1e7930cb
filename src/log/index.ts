// Logging: one pino logger per component, JSON to stderr by default so stdout stays free for a
// command's own output. AMBIT_LOG_LEVEL sets the level; without it, long-running components log at
// info and one-shot CLI commands at warn (the CLI sets `globalThis.AMBIT_DEFAULT_LOG_LEVEL`, which,
// unlike an environment variable, the processes it starts do not inherit).

import { type Logger, pino } from 'pino';

const root = pino(
  {
    level:
      process.env.AMBIT_LOG_LEVEL ??
      (globalThis as { AMBIT_DEFAULT_LOG_LEVEL?: string }).AMBIT_DEFAULT_LOG_LEVEL ??
      'info',
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
