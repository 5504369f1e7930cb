// Draining: what a proxy does on stop between "stop accepting" and "cut what is left". Open work may
// finish until a deadline; whatever is still open then is forced closed.

const POLL_MS = 50;

/**
 * Waits until `open()` is 0 or `deadlineMs` has passed, then calls `force` if anything is still open.
 * Resolves once done; never rejects.
 */
export async function drain(open: () => number, deadlineMs: number, force: () => void): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (open() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, POLL_MS));
  if (open() > 0) force();
}
