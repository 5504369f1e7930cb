// The CLI's client for the control plane's admin API, over the Unix socket in the data directory
// (`unix:/var/lib/ambit/control/admin.sock`, the default: root or the control plane's user) or a TCP
// listener (`http://host:port`), where it sends the bearer token it finds by itself.

import { readFileSync, statSync } from 'node:fs';
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

/** `--server`, else `$AMBIT_SERVER`, else the local control plane's socket (`$AMBIT_HOME/control/admin.sock`). */
export function resolveServer(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return flag;
  if (env.AMBIT_SERVER) return env.AMBIT_SERVER;
  return `unix:${join(ambitHome(env), 'control', 'admin.sock')}`;
}

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
): AdminClient {
  const server = resolveServer(flags.server, env);
  return new AdminClient(server, server.startsWith('http:') ? resolveToken(flags.token, env) : undefined);
}

export class AdminClient {
  readonly server: string;
  private readonly token: string | undefined;

  /** `token` is sent as `Authorization: Bearer` to a TCP listener, never over the socket. */
  constructor(server: string, token?: string) {
    // The admin API speaks plain HTTP on loopback or a local socket; an https URL would be sent in clear.
    if (!/^(http:\/\/|unix:)/.test(server)) {
      throw new AmbitError(
        CLI_ERRORS.BAD_SERVER,
        `--server "${server}" must be http://host:port or unix:/path/to/admin.sock`,
      );
    }
    this.server = server;
    this.token = server.startsWith('http:') ? token : undefined;
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const target = this.server.startsWith('unix:')
      ? { socketPath: this.server.slice('unix:'.length), path }
      : (() => {
          const u = new URL(path, this.server);
          return { host: u.hostname, port: Number(u.port || 80), path: `${u.pathname}${u.search}` };
        })();
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(
        {
          ...target,
          method,
          headers: {
            ...(payload ? { 'content-type': 'application/json' } : {}),
            ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          },
          timeout: 30_000,
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
      req.on('timeout', () => req.destroy(new Error('timed out after 30 s')));
      req.on('error', (cause: NodeJS.ErrnoException) =>
        reject(
          cause.code === 'EACCES'
            ? new AmbitError(
                CLI_ERRORS.NOT_ALLOWED,
                `the admin socket ${this.server} is for root and the control plane's user only; run as one of them, or use a TCP listener with a token (--server, --token)`,
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
