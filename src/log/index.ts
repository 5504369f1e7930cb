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

/** How often buffered access-log lines are written out at the latest (Envoy's access log flush interval). */
const ACCESS_FLUSH_MS = 1_000;

let access: Logger | undefined;

/**
 * The access log (one line per connection or request): buffered and written at most a second late, as
 * Envoy's access log is, so that a busy proxy does not make one synchronous write per request; what is
 * buffered is written when the process exits. Same level and format as the other logs, on stderr.
 */
export function accessLogger(): Logger {
  if (!access) {
    const dest = pino.destination({ dest: 2, sync: false, minLength: 8 * 1024 });
    setInterval(() => dest.flush(), ACCESS_FLUSH_MS).unref();
    access = pino(
      { level: root.level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
      dest,
    ).child({ component: 'access' });
  }
  return access;
}
