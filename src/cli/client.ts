// The CLI's client for the control plane's admin API, over TCP (`http://host:port`) or the Unix
// socket in the data directory (`unix:/var/lib/ambit/control/admin.sock`).

import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { AmbitError } from '../errors/index.ts';
import { ambitHome } from '../lab/index.ts';

export interface ApiError {
  message: string;
  details?: {
    ambitCode?: string;
    causes?: Array<{ field: string; message: string; kind: string; name: string }>;
  };
}

/** `--server`, else `$AMBIT_SERVER`, else the local control plane's socket if present, else 127.0.0.1:15014. */
export function resolveServer(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return flag;
  if (env.AMBIT_SERVER) return env.AMBIT_SERVER;
  const socket = join(ambitHome(env), 'control', 'admin.sock');
  return existsSync(socket) ? `unix:${socket}` : 'http://127.0.0.1:15014';
}

export class AdminClient {
  readonly server: string;

  constructor(server: string) {
    // The admin API speaks plain HTTP on loopback or a local socket; an https URL would be sent in clear.
    if (!/^(http:\/\/|unix:)/.test(server)) {
      throw new AmbitError(
        'AMBIT_ERR_CLI_BAD_SERVER',
        `--server "${server}" must be http://host:port or unix:/path/to/admin.sock`,
      );
    }
    this.server = server;
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
      const req = request(
        {
          ...target,
          method,
          headers: payload ? { 'content-type': 'application/json' } : {},
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
      req.on('error', (cause) =>
        reject(
          new AmbitError(
            'AMBIT_ERR_CLI_UNREACHABLE',
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
      throw new AmbitError(e.details?.ambitCode ?? 'AMBIT_ERR_CLI_REQUEST', e.message ?? `HTTP ${status}`, {
        detail: { status, causes: e.details?.causes ?? [] },
      });
    }
    return parsed as T;
  }
}
