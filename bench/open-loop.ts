// The open loop the fixed-rate load generators share: request i is due at start + i × interval, sent
// on connection i mod n however late earlier answers are (a closed loop would hide the queueing a
// slow proxy causes), and its due time is kept for the latency of its answer.

/** Starts issuing `total` requests; returns the start time (performance.now()). */
export function openLoop<L extends { due: number[] }>(
  lanes: readonly L[],
  total: number,
  interval: number,
  send: (lane: L) => void,
): number {
  const start = performance.now();
  let issued = 0;
  const tick = (): void => {
    const now = performance.now();
    while (issued < total && start + issued * interval <= now) {
      const lane = lanes[issued % lanes.length]!;
      lane.due.push(start + issued * interval);
      send(lane);
      issued++;
    }
    if (issued < total) setTimeout(tick, Math.max(0, start + issued * interval - performance.now()));
  };
  tick();
  return start;
}
