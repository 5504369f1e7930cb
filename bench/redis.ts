// A Redis server in a lab pod for the benchmarks (L4's real-client row, L7's global rate limits): bound
// to the pod's address, no persistence (they measure the path, not the disk).

import type { Lab } from '../src/lab/index.ts';

export const REDIS_PORT = 6379;

/** Starts redis-server in pod on address:REDIS_PORT; returns its pid. `dir` is its working directory. */
export async function startRedis(lab: Lab, pod: string, address: string, dir: string): Promise<number> {
  const redis = await lab.run(pod, [
    'redis-server',
    '--bind',
    address,
    '--port',
    String(REDIS_PORT),
    '--protected-mode',
    'no',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ]);
  return redis.pid;
}

/** Whether redis at host:port answers PING from client's pod (so through whatever path lies between). */
export async function redisAnswers(lab: Lab, client: string, host: string, port: number): Promise<boolean> {
  const r = await lab.exec(client, ['redis-cli', '-h', host, '-p', String(port), 'PING'], {
    timeoutMs: 5_000,
  });
  return r.stdout.includes('PONG');
}
