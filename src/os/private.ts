// Local admin endpoints that only their owner may use: a directory made 0700 (and refused when another
// user owns it), a Unix socket made 0600 whatever the umask, and every connection's peer uid checked
// with SO_PEERCRED, so a connection from anyone else is cut before a byte of it is read.

import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { AmbitError, describeError } from '../errors/index.ts';
import type { Logger } from '../log/index.ts';
import { peerUid } from './addon.ts';

/**
 * Makes `dir` 0700: created so, tightened (with a warning) when it is open to others, refused with
 * `code` when another user owns it — whoever owns it could replace what the directory holds.
 */
export async function preparePrivateDir(
  dir: string,
  opts: { code: string; what: string; log: Logger },
): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await stat(dir);
  const uid = process.getuid?.() ?? info.uid;
  if (info.uid !== uid) {
    throw new AmbitError(
      opts.code,
      `${opts.what} ${dir} belongs to uid ${info.uid}, not to this process (uid ${uid}); use a directory of your own (--data-dir)`,
    );
  }
  if ((info.mode & 0o077) !== 0) {
    opts.log.warn(
      { dir, mode: (info.mode & 0o777).toString(8) },
      `${opts.what} was open to others; made it 0700`,
    );
    await chmod(dir, 0o700);
  }
}

export interface PrivateSocketOptions {
  log: Logger;
  /** Who may connect; default root and this process's own user. */
  uids?: readonly number[];
  /** Called for each admitted connection with its peer's uid. */
  onPeer?: (socket: Socket, uid: number) => void;
}

/**
 * Serves `server` on the Unix socket `path` (a stale socket file from a killed process is replaced):
 * mode 0600 once bound — until then the socket's 0700 directory keeps others out — and each
 * connection admitted only when its peer's uid is allowed.
 */
export async function listenPrivateSocket(
  server: Server,
  path: string,
  opts: PrivateSocketOptions,
): Promise<void> {
  const uids = opts.uids ?? [0, process.getuid?.() ?? 0];
  server.on('connection', (socket: Socket) => {
    let uid: number | undefined;
    try {
      uid = peerUid(socket);
    } catch (err) {
      opts.log.error({ err: describeError(err) }, 'cannot read the socket peer uid; closing the connection');
    }
    if (uid !== undefined && uids.includes(uid)) {
      opts.onPeer?.(socket, uid);
      return;
    }
    if (uid !== undefined)
      opts.log.warn({ uid, allowed: uids }, 'socket connection refused: peer uid not allowed');
    socket.destroy();
  });
  await rm(path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(path, 0o600);
}
