// The dashboard's HTTP server: the built page (dist/dashboard/) and its JSON API, read-only. Like the
// control plane's admin API it must not be usable from another web page the operator visits: a Host that
// is a name (DNS rebinding) is refused, as is a request a browser marks cross-site or from another
// origin, and anything but GET or HEAD.

import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { extname, join } from 'node:path';
import { AmbitError, describeError } from '../errors/index.ts';
import type { Logger } from '../log/index.ts';
import type { DashboardData } from './data.ts';
import { DASHBOARD_ERRORS } from './errors.ts';
import { WINDOWS, type Window } from './model.ts';

/** The page's files: nothing else under the directory is served. */
const ASSETS: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/app.js': 'app.js',
  '/app.css': 'app.css',
};
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};
/** The HTTP status of each refusal (any other is 400). */
const STATUS: Record<string, number> = {
  [DASHBOARD_ERRORS.NOT_FOUND]: 404,
  [DASHBOARD_ERRORS.METHOD_NOT_ALLOWED]: 405,
  [DASHBOARD_ERRORS.NOT_BUILT]: 500,
  [DASHBOARD_ERRORS.CONTROL_UNAVAILABLE]: 503,
};
/** A Kubernetes name: what a namespace, service or workload name can be. */
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export interface DashboardServerOptions {
  data: DashboardData;
  /** The built page (dist/dashboard). */
  assets: string;
  log: Logger;
}

export function dashboardServer(opts: DashboardServerOptions): Server {
  return createServer((req, res) => {
    handle(opts, req, res).catch((err) => {
      opts.log.error({ err: describeError(err) }, 'dashboard request failed');
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
}

async function handle(
  opts: DashboardServerOptions,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://dashboard');
  try {
    checkRequest(req);
    const asset = ASSETS[url.pathname];
    if (asset) return await sendAsset(res, opts.assets, asset, req.method === 'HEAD');
    if (url.pathname === '/healthz') return send(res, 200, { ok: true });
    const q = url.searchParams;
    switch (url.pathname) {
      case '/api/graph':
        return send(res, 200, await opts.data.graph(windowOf(q), optionalName(q, 'namespace')));
      case '/api/service':
        return send(
          res,
          200,
          await opts.data.service(nameOf(q, 'namespace'), nameOf(q, 'name'), windowOf(q)),
        );
      case '/api/workload':
        return send(
          res,
          200,
          await opts.data.workload(nameOf(q, 'namespace'), nameOf(q, 'name'), windowOf(q)),
        );
      case '/api/health':
        return send(res, 200, await opts.data.health());
      default:
        throw new AmbitError(DASHBOARD_ERRORS.NOT_FOUND, `no such page: ${url.pathname}`);
    }
  } catch (err) {
    if (!(err instanceof AmbitError)) throw err;
    const headers: Record<string, string> =
      err.code === DASHBOARD_ERRORS.METHOD_NOT_ALLOWED ? { allow: 'GET, HEAD' } : {};
    send(res, STATUS[err.code] ?? 400, { error: err.message, code: err.code }, headers);
  }
}

/** Read-only, same-origin, and addressed by IP or localhost. */
export function checkRequest(req: IncomingMessage): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    throw new AmbitError(
      DASHBOARD_ERRORS.METHOD_NOT_ALLOWED,
      'the dashboard is read-only: GET and HEAD only',
    );
  }
  const hostHeader = req.headers.host ?? '';
  const host = hostHeader.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  if (host !== 'localhost' && isIP(host) === 0) {
    throw new AmbitError(
      DASHBOARD_ERRORS.BAD_REQUEST,
      `the dashboard answers requests for IP addresses or localhost only, not "${host}"`,
    );
  }
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new AmbitError(
      DASHBOARD_ERRORS.BAD_REQUEST,
      `cross-site requests are refused (Sec-Fetch-Site: ${site})`,
    );
  }
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://${hostHeader}`) {
    throw new AmbitError(
      DASHBOARD_ERRORS.BAD_REQUEST,
      `requests from another origin are refused (Origin: ${origin})`,
    );
  }
}

function windowOf(q: URLSearchParams): Window {
  const w = q.get('window') ?? '5m';
  if (!(WINDOWS as readonly string[]).includes(w))
    throw new AmbitError(DASHBOARD_ERRORS.BAD_REQUEST, `window "${w}" is not one of ${WINDOWS.join(', ')}`);
  return w as Window;
}

function nameOf(q: URLSearchParams, param: string): string {
  const v = optionalName(q, param);
  if (v === undefined)
    throw new AmbitError(DASHBOARD_ERRORS.BAD_REQUEST, `the ${param} parameter is required`);
  return v;
}

function optionalName(q: URLSearchParams, param: string): string | undefined {
  const v = q.get(param);
  if (v === null || v === '') return undefined;
  if (!NAME.test(v))
    throw new AmbitError(DASHBOARD_ERRORS.BAD_REQUEST, `${param} "${v}" is not a Kubernetes name`);
  return v;
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
};

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

async function sendAsset(res: ServerResponse, dir: string, file: string, headOnly: boolean): Promise<void> {
  let body: Buffer;
  try {
    body = await readFile(join(dir, file));
  } catch {
    throw new AmbitError(
      DASHBOARD_ERRORS.NOT_BUILT,
      `the dashboard's page is not built (${join(dir, file)} is missing): run \`npm run build\``,
    );
  }
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'cache-control': 'no-cache',
    'content-length': body.length,
  });
  res.end(headOnly ? undefined : body);
}
