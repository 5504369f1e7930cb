// The PostgreSQL server of the L4 benchmark's pgbench row: Debian's binaries, a cluster made by initdb
// in a temp dir owned by the `postgres` user (postgres refuses to run as root), served on a server
// pod's address, with pgbench's tables made once over its Unix socket so that setting up sends nothing
// through the paths under test.

import { execFile } from 'node:child_process';
import { access, chown, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Lab, waitUntil } from '../../src/lab/index.ts';
import { stopProcess } from './stop.ts';

const execFileP = promisify(execFile);

export const POSTGRES_PORT = 5432;
/** Debian installs each major version's server and client programs in PG_ROOT/<major>/bin. */
const PG_ROOT = '/usr/lib/postgresql';
/** pgbench scale 1: 100,000 accounts, ~15 MB, all in shared buffers, so a select-only run never waits on disk. */
const SCALE = 1;
/** setpriv execs (no fork), so the pid the lab records is the program's own. */
const AS_POSTGRES = ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', '--'];

export interface PostgresServer {
  /** Its bin directory (postgres, initdb, pgbench, pg_isready). */
  bin: string;
  pid: number;
  /** Temp dir holding the cluster and the socket; stopPostgres removes it. */
  dir: string;
}

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

/** The newest installed major version's bin directory that has both the server and pgbench. */
export async function postgresBin(): Promise<string> {
  const majors = (await readdir(PG_ROOT).catch(() => [] as string[]))
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const major of majors) {
    const bin = join(PG_ROOT, major, 'bin');
    if ((await exists(join(bin, 'postgres'))) && (await exists(join(bin, 'pgbench')))) return bin;
  }
  throw new Error(
    `no PostgreSQL server and pgbench under ${PG_ROOT}/<version>/bin: install Debian's postgresql (scripts/install-system-packages.sh)`,
  );
}

async function postgresUser(): Promise<{ uid: number; gid: number }> {
  try {
    const [u, g] = await Promise.all([
      execFileP('id', ['-u', 'postgres']),
      execFileP('id', ['-g', 'postgres']),
    ]);
    return { uid: Number(u.stdout), gid: Number(g.stdout) };
  } catch (cause) {
    throw new Error("no `postgres` user on this host: install Debian's postgresql", { cause });
  }
}

/**
 * A fresh cluster in its own temp dir, served by postgres in `pod` on address:POSTGRES_PORT, with
 * pgbench's tables made. On any failure what was started is stopped and the dir removed.
 */
export async function startPostgres(
  lab: Lab,
  pod: string,
  address: string,
  bin: string,
): Promise<PostgresServer> {
  const { uid, gid } = await postgresUser();
  const dir = await mkdtemp(join(tmpdir(), 'ambit-bench-pg-'));
  const data = join(dir, 'data');
  const socket = join(dir, 'socket');
  const port = String(POSTGRES_PORT);
  let pid = 0;
  try {
    await mkdir(socket);
    await chown(dir, uid, gid);
    await chown(socket, uid, gid);
    const initdb = [join(bin, 'initdb'), '-D', data, '-U', 'postgres', '--auth=trust', '--no-sync'];
    await execFileP(AS_POSTGRES[0]!, [...AS_POSTGRES.slice(1), ...initdb, '-E', 'UTF8'], { cwd: dir });
    // Trust any peer: only the lab's namespaces reach the pod, and through the HAProxy pair the peer
    // is a node's haproxy, not the client.
    await writeFile(join(data, 'pg_hba.conf'), 'local all all trust\nhost all all 0.0.0.0/0 trust\n');
    const server = [join(bin, 'postgres'), '-D', data, '-k', socket, '-p', port];
    server.push('-c', `listen_addresses=${address}`, '-c', 'fsync=off');
    pid = (await lab.run(pod, [...AS_POSTGRES, ...server])).pid;
    await waitUntil(
      `postgres in ${pod} to accept connections`,
      30_000,
      async () => {
        const r = await lab.exec(pod, [join(bin, 'pg_isready'), '-q', '-h', socket, '-p', port]);
        return r.code === 0 ? true : undefined;
      },
      200,
    );
    const init = [join(bin, 'pgbench'), '-i', '-q', '-s', String(SCALE), '-h', socket, '-p', port];
    const r = await lab.exec(pod, [...AS_POSTGRES, ...init, '-U', 'postgres', 'postgres'], {
      timeoutMs: 120_000,
    });
    if (r.code !== 0) throw new Error(`pgbench -i in ${pod} exited ${r.code}: ${r.stderr.trim()}`);
    return { bin, pid, dir };
  } catch (err) {
    await stopPostgres({ bin, pid, dir });
    throw err;
  }
}

/** Fast shutdown (SIGINT: clients cut off, no wait for them), then the temp dir removed. */
export async function stopPostgres(server: PostgresServer): Promise<void> {
  if (server.pid > 0) await stopProcess(server.pid, 'SIGINT');
  await rm(server.dir, { recursive: true, force: true });
}
