// A daemon's life once started: say it is ready, give memory back to the system when a burst of work is
// over, and stop on SIGTERM or SIGINT.

import { logger } from '../log/index.ts';
import { trimMemoryWhenQuiet } from '../proxy/index.ts';

export async function serveUntilSignal(
  ready: string,
  stop: () => Promise<void>,
  opts: { trimMemory?: boolean } = {},
): Promise<void> {
  const log = logger('memory');
  // AMBIT_MEMORY_TRIM=off leaves the process's memory to V8 and the C allocator alone.
  const stopTrim =
    opts.trimMemory === false || process.env.AMBIT_MEMORY_TRIM === 'off'
      ? () => {}
      : trimMemoryWhenQuiet({
          onTrim: (before, after) =>
            log.debug({ rssBefore: before, rssAfter: after }, 'gave memory back to the system after a burst'),
        });
  console.log(ready);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  stopTrim();
  await stop();
}
