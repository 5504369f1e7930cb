// What the L4 benchmark reads about a proxy process from /proc: CPU time (user + system, all threads)
// and resident memory.

import { readFile } from 'node:fs/promises';

/** Clock ticks per second for /proc/<pid>/stat times (USER_HZ; 100 on every Linux ABI Node runs on). */
const USER_HZ = 100;

/**
 * utime + stime of the whole process in seconds. /proc/<pid>/stat is the thread group's total (every
 * thread, live or exited), so it already covers /proc/<pid>/task/*.
 */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of the whole line are the 12th and 13th after the name.
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}

/** VmRSS of the process in KiB. */
export async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`/proc/${pid}/status has no VmRSS line (is ${pid} a kernel thread or gone?)`);
  return Number(m[1]);
}
