// The CLI's client for the control plane's admin API, over the Unix socket in the data directory
// (`unix:/var/lib/ambit/control/admin.sock`, the default: root or the control plane's user) or a TCP
// listener (`http://host:port`), where it sends the bearer token it finds by itself.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Option } from 'commander';
import { AmbitError } from '../errors/index.ts';
import { ambitHome } from '../lab/index.ts';
import { http } from '../os/index.ts';
import { CLI_ERRORS } from './errors.ts';

export interface ApiError {
  message: string;
  details?: {
    ambitCode?: string;
    causes?: Array<{ field: string; message: string; kind: string; name: string }>;
  };
}

/**
 * `--server`, else `$AMBIT_SERVER`, else the local control plane's socket: `$AMBIT_HOME/control/admin.sock`,
 * and each replica's `$AMBIT_HOME/control-N/admin.sock` that exists (`ambit up --ha`), tried in turn.
 */
export function resolveServer(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return flag;
  if (env.AMBIT_SERVER) return env.AMBIT_SERVER;
  return localAdminServer(ambitHome(env));
}

/**
 * The data directories of the local control plane under `home`: `control`, then each replica's
 * `control-N` of `ambit up --ha`, in order (only those that exist, besides `control`).
 */
export function controlDataDirs(home: string): string[] {
  let replicas: string[] = [];
  try {
    replicas = readdirSync(home)
      .filter((d) => /^control-[0-9]+$/.test(d))
      .sort((a, b) => Number(a.slice(8)) - Number(b.slice(8)));
  } catch {
    // no home yet
  }
  return [join(home, 'control'), ...replicas.map((d) => join(home, d))];
}

/** The admin sockets of the control plane (and its replicas) whose data lives under `home`. */
export function localAdminServer(home: string): string {
  const sockets = controlDataDirs(home).map((d) => join(d, 'admin.sock'));
  // None yet: the single socket's path, which says what is missing when it is not there.
  const present = sockets.filter((p) => existsSync(p));
  return (present.length > 0 ? present : [sockets[0]!]).map((p) => `unix:${p}`).join(',');
}

/** A connection that never reached the server: another replica may be tried without risk of a double write. */
const NOT_CONNECTED = new Set(['ENOENT', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

/** Where the CLI keeps its admin token: `$AMBIT_HOME/admin-token`, readable by its owner only. */
export function tokenFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(ambitHome(env), 'admin-token');
}

/**
 * The bearer token for a TCP admin listener: `--token`, else `$AMBIT_TOKEN`, else the first line of
 * `$AMBIT_HOME/admin-token` (refused when others may read it, as ssh refuses an open key), else none.
 */
export function resolveToken(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (flag) return flag;
  if (env.AMBIT_TOKEN) return env.AMBIT_TOKEN;
  const file = tokenFile(env);
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch {
    return undefined;
  }
  if ((mode & 0o077) !== 0) {
    throw new AmbitError(
      CLI_ERRORS.TOKEN_FILE_OPEN,
      `${file} may be read by other users (mode ${(mode & 0o777).toString(8)}); run \`chmod 600 ${file}\``,
    );
  }
  return readFileSync(file, 'utf8').split('\n')[0]!.trim() || undefined;
}

/** The client for `--server`/`--token` flags (or what the environment says). */
export function adminClient(
  flags: { server?: string; token?: string },
  env: NodeJS.ProcessEnv = process.env,
  opts: { timeoutMs?: number } = {},
): AdminClient {
  const server = resolveServer(flags.server, env);
  return new AdminClient(server, server.includes('http:') ? resolveToken(flags.token, env) : undefined, opts);
}

export class AdminClient {
  /** The server (or, comma-separated, the replicas) as given. */
  readonly server: string;
  private readonly servers: string[];
  /** The replica that answered last: tried first next time. */
  private current = 0;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;

  /**
   * `server` is one admin API or several replicas' (`unix:/a.sock,unix:/b.sock`): a request goes to the
   * one that answered last, and to the next when a connection cannot be made. `token` is sent as
   * `Authorization: Bearer` to a TCP listener, never over the socket.
   */
  constructor(server: string, token?: string, opts: { timeoutMs?: number } = {}) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.servers = server.split(',').map((s) => s.trim());
    for (const s of this.servers) {
      // The admin API speaks plain HTTP on loopback or a local socket; an https URL would be sent in clear.
      if (!/^(http:\/\/|unix:)/.test(s)) {
        throw new AmbitError(
          CLI_ERRORS.BAD_SERVER,
          `--server "${s}" must be http://host:port or unix:/path/to/admin.sock (several: comma-separated)`,
        );
      }
    }
    this.server = server;
    this.token = this.servers.some((s) => s.startsWith('http:')) ? token : undefined;
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    for (let tried = 1; ; tried++) {
      try {
        return await this.callOne<T>(this.servers[this.current]!, method, path, body);
      } catch (err) {
        const code = ((err as AmbitError).cause as NodeJS.ErrnoException | undefined)?.code;
        if (tried >= this.servers.length || !code || !NOT_CONNECTED.has(code)) throw err;
        this.current = (this.current + 1) % this.servers.length;
      }
    }
  }

  private async callOne<T>(server: string, method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const token = server.startsWith('http:') ? this.token : undefined;
    const target = server.startsWith('unix:')
      ? { socketPath: server.slice('unix:'.length), path }
      : (() => {
          const u = new URL(path, server);
          return { host: u.hostname, port: Number(u.port || 80), path: `${u.pathname}${u.search}` };
        })();
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(
        {
          ...target,
          method,
          // A connection per request: a kept-alive one to a replica that died would fail on reuse, and
          // a request that may have been sent is never tried on another replica.
          agent: false,
          headers: {
            ...(payload ? { 'content-type': 'application/json' } : {}),
            ...(token ? { authorization: `Bearer ${token}` } : {}),
          },
          timeout: this.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`timed out after ${this.timeoutMs / 1000} s`)));
      req.on('error', (cause: NodeJS.ErrnoException) =>
        reject(
          cause.code === 'EACCES'
            ? new AmbitError(
                CLI_ERRORS.NOT_ALLOWED,
                `the admin socket ${server} is for root and the control plane's user only; run as one of them, or use a TCP listener with a token (--server, --token)`,
                { cause },
              )
            : new AmbitError(
                CLI_ERRORS.UNREACHABLE,
                `cannot reach the control plane at ${this.server} (${cause.message}); is \`ambit control\` running? Set --server or $AMBIT_SERVER`,
                { cause },
              ),
        ),
      );
      req.end(payload);
    });
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { message: text.trim() };
    }
    if (status >= 400) {
      const e = parsed as ApiError;
      const hint =
        status === 401 && !this.token
          ? ` (no token found: pass --token, set $AMBIT_TOKEN or write it to ${tokenFile()})`
          : '';
      throw new AmbitError(
        e.details?.ambitCode ?? CLI_ERRORS.REQUEST,
        `${e.message ?? `HTTP ${status}`}${hint}`,
        {
          detail: { status, causes: e.details?.causes ?? [] },
        },
      );
    }
    return parsed as T;
  }
}

/** The flags every command that talks to the admin API takes. */
export const serverOption = () =>
  new Option(
    '--server <url>',
    'control plane admin API (unix:/path or http://host:port); default $AMBIT_SERVER',
  );
export const tokenOption = () =>
  new Option(
    '--token <token>',
    'bearer token for an http:// server; default $AMBIT_TOKEN, then $AMBIT_HOME/admin-token',
  );
