// Stopping a server the L4 benchmark started in a pod: a signal, a grace period, then SIGKILL. The lab
// kills whatever is left in its namespaces when it goes down; this is for servers that must be gone
// sooner (their temp dir is removed next) or that want a particular signal.

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Sends `signal` to pid, waits up to graceMs for it to exit, then kills it. */
export async function stopProcess(pid: number, signal: NodeJS.Signals, graceMs = 10_000): Promise<void> {
  try {
    process.kill(pid, signal);
  } catch {
    return; // already gone
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // exited within the grace period
  }
}
