// The admin API (a Unix socket, and a TCP listener when asked): Kubernetes-shaped resource paths
// (`/api/v1/…`, `/apis/{group}/{version}/…`) for create, replace, get, list (by namespace and label
// selector), delete and watch; Ambit's own `/ambit/v1/…` endpoints for transactional apply, tokens
// and the derived views; health and metrics.
// Errors are Kubernetes `Status` objects carrying the Ambit error code.
//
// Who is asking: on the Unix socket, the peer's uid (SO_PEERCRED) must be root or the control plane's
// own, and it acts as cluster-admin; on a TCP listener, every request but `GET /healthz/ready` carries
// `Authorization: Bearer <token>`, whose role `access.ts` checks.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { type AddressInfo, isIP, type Socket } from 'node:net';
import type { Registry } from 'prom-client';
import {
  CONFIG_INVALID,
  type ConfigIssue,
  type KindInfo,
  kindByPlural,
  type Resource,
  resourceNamespace,
} from '../../config/index.ts';
import { AmbitError } from '../../errors/index.ts';
import { logger } from '../../log/index.ts';
import { http, listenPrivateSocket } from '../../os/index.ts';
import { CONTROL_ERRORS } from '../errors.ts';
import type { Change, StoredObject } from '../store/index.ts';
import {
  authorize,
  canRead,
  type Principal,
  type ResourceAttributes,
  requireClusterAdmin,
  type Verb,
} from './access.ts';
import type { AdminTokens } from './admin-tokens.ts';
import { invalid, parseJsonBody } from './json-body.ts';
import { kindOf, type ResourceApi, type ResourceRef } from './resources.ts';
import { parseLabelSelector } from './selector.ts';

const log = logger('admin');
/** Request bodies above this are refused with 413 (by Content-Length before reading, else while reading). */
export const MAX_BODY = 16 * 1024 * 1024;
const MAX_WATCH_BACKLOG = 16 * 1024 * 1024;
/** Default cap on open watches; each may hold up to 16 MiB for a slow reader. */
export const DEFAULT_MAX_WATCHES = 100;

/**
 * A read-only view served at `/ambit/v1/<name>` (workloads, services, proxies …). `access` says who
 * may read it: anyone authenticated (`public`), namespaced roles filtered to their namespaces
 * (`namespaced`: `read` gets `visible`), or cluster-admin only (`cluster`, the default for mesh-wide views).
 */
export interface View {
  access?: 'public' | 'namespaced' | 'cluster';
  read(query: URLSearchParams, scope: Scope): unknown;
}

/** What the reader may see: everything (`all`), or the namespaces `visible` says yes to. */
export interface Scope {
  all: boolean;
  visible(namespace: string): boolean;
}
/** An operation served at `POST /ambit/v1/<name>` with a JSON body (join tokens …); cluster-admin only. */
export type Action = (body: unknown) => Promise<unknown>;

export interface AdminOptions {
  api: ResourceApi;
  views?: Record<string, View>;
  actions?: Record<string, Action>;
  /** The bearer tokens a TCP listener accepts; without it a TCP listener accepts none. */
  tokens?: AdminTokens;
  /** Open watches at most (default 100); more are answered 429. */
  maxWatches?: number;
  /** Uids allowed on the Unix socket; default root and this process's own. */
  socketUids?: readonly number[];
  metrics?: Registry;
  /** Whether the control plane is ready to serve (for /healthz/ready). */
  ready?: () => boolean;
}

/** How a listener learns who is asking. */
type Authn = { kind: 'socket' } | { kind: 'token' };

interface Target {
  info: KindInfo;
  namespace?: string;
  name?: string;
}

const STATUS_BY_CODE: Record<string, [number, string]> = {
  [CONFIG_INVALID]: [422, 'Invalid'],
  [CONTROL_ERRORS.API_NOT_FOUND]: [404, 'NotFound'],
  [CONTROL_ERRORS.API_UNKNOWN_KIND]: [404, 'NotFound'],
  [CONTROL_ERRORS.API_ALREADY_EXISTS]: [409, 'AlreadyExists'],
  [CONTROL_ERRORS.API_BAD_SELECTOR]: [400, 'BadRequest'],
  [CONTROL_ERRORS.API_BAD_REQUEST]: [400, 'BadRequest'],
  [CONTROL_ERRORS.API_METHOD]: [405, 'MethodNotAllowed'],
  [CONTROL_ERRORS.API_TOO_LARGE]: [413, 'RequestEntityTooLarge'],
  [CONTROL_ERRORS.API_FORBIDDEN]: [403, 'Forbidden'],
  [CONTROL_ERRORS.API_UNSUPPORTED_MEDIA]: [415, 'UnsupportedMediaType'],
  [CONTROL_ERRORS.API_UNAUTHORIZED]: [401, 'Unauthorized'],
  [CONTROL_ERRORS.API_TOO_MANY_WATCHES]: [429, 'TooManyRequests'],
  [CONTROL_ERRORS.API_INVALID]: [422, 'Invalid'],
  [CONTROL_ERRORS.IMPORT_NOT_EMPTY]: [409, 'Conflict'],
  // etcd without a quorum, or commits that kept losing to other replicas: try again later.
  [CONTROL_ERRORS.STORE_UNAVAILABLE]: [503, 'ServiceUnavailable'],
  [CONTROL_ERRORS.STORE_CONFLICT]: [409, 'Conflict'],
  [CONTROL_ERRORS.STORE_TOO_LARGE]: [413, 'RequestEntityTooLarge'],
};

const SOCKET_PRINCIPAL = (uid: number): Principal => ({
  user: `unix-socket:uid=${uid}`,
  role: 'cluster-admin',
  namespaces: [],
});

export class AdminServer {
  private readonly opts: AdminOptions;
  private readonly servers: Server[] = [];
  private readonly watches = new Set<ServerResponse>();
  /** The uid of each accepted Unix socket connection's peer. */
  private readonly peers = new WeakMap<Socket, number>();

  constructor(opts: AdminOptions) {
    this.opts = opts;
  }

  /**
   * Listens on a TCP address (bearer tokens) or a Unix socket path (peer uid, mode 0600 whatever the
   * umask). Returns the bound address.
   */
  async listen(where: { host: string; port: number } | { path: string }): Promise<string> {
    const authn: Authn = 'path' in where ? { kind: 'socket' } : { kind: 'token' };
    const server = http.createServer((req, res) => {
      this.handle(req, res, authn).catch((err) => this.fail(res, err));
    });
    server.keepAliveTimeout = 5_000;
    this.servers.push(server);
    if ('path' in where) {
      // Only root and the control plane's own user get in; they act as cluster-admin.
      await listenPrivateSocket(server, where.path, {
        log,
        uids: this.opts.socketUids,
        onPeer: (socket, uid) => this.peers.set(socket, uid),
      });
      return where.path;
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(where.port, where.host, resolve);
    });
    const addr = server.address() as AddressInfo;
    return `${addr.address}:${addr.port}`;
  }

  /** Who is asking, or 401. `GET /healthz/ready` needs no one. */
  private principal(req: IncomingMessage, authn: Authn): Principal {
    if (authn.kind === 'socket') {
      const uid = this.peers.get(req.socket);
      if (uid === undefined)
        throw new AmbitError(CONTROL_ERRORS.API_UNAUTHORIZED, 'the socket peer was not checked');
      return SOCKET_PRINCIPAL(uid);
    }
    const header = req.headers.authorization ?? '';
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    const found = m ? this.opts.tokens?.authenticate(m[1]!) : undefined;
    if (found) return found;
    throw new AmbitError(
      CONTROL_ERRORS.API_UNAUTHORIZED,
      m
        ? 'the bearer token is unknown, revoked or expired'
        : 'this listener needs Authorization: Bearer <token> (create one with `ambit control admin-token create`)',
    );
  }

  async close(): Promise<void> {
    for (const res of this.watches) res.end();
    this.watches.clear();
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
  }

  private async handle(req: IncomingMessage, res: ServerResponse, authn: Authn): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    checkBrowserSafety(req, method);

    if (path === '/healthz/ready' && method === 'GET') {
      const ready = this.opts.ready?.() ?? true;
      res
        .writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' })
        .end(ready ? 'ready\n' : 'not ready\n');
      return;
    }
    const who = this.principal(req, authn);
    // Process metrics say nothing about any namespace: every role may scrape them.
    if (path === '/metrics' && this.opts.metrics) {
      res
        .writeHead(200, { 'content-type': this.opts.metrics.contentType })
        .end(await this.opts.metrics.metrics());
      return;
    }
    if (path.startsWith('/ambit/v1/'))
      return this.handleAmbit(who, method, path.slice('/ambit/v1/'.length), url, req, res);

    const target = parseResourcePath(path);
    if (!target) throw badRequest(`no such path ${path}`, CONTROL_ERRORS.API_NOT_FOUND);
    const api = this.opts.api;
    const check = (verb: Verb) =>
      authorize(who, attributes(target.info, verb, target.namespace, target.name));
    if (target.name === undefined) {
      if (method === 'GET') {
        const query = {
          kind: target.info.kind,
          namespace: target.namespace,
          labelSelector: url.searchParams.get('labelSelector') ?? undefined,
        };
        if (isTrue(url.searchParams.get('watch'))) {
          check('watch');
          return this.watch(query, url, res);
        }
        check('list');
        return json(res, 200, {
          apiVersion: 'v1',
          kind: 'List',
          items: api.list(query),
          metadata: { resourceVersion: String(api.store.revision) },
        });
      }
      if (method === 'POST') {
        check('create');
        const body = withNamespace(await readJson(req), target);
        return json(res, 201, await api.create(body));
      }
      throw methodNotAllowed(method, path);
    }
    const ref: ResourceRef = { kind: target.info.kind, namespace: target.namespace, name: target.name };
    if (method === 'GET') {
      check('get');
      return json(res, 200, api.get(ref));
    }
    if (method === 'PUT') {
      check('update');
      const body = withNamespace(await readJson(req), target) as { metadata?: { name?: unknown } };
      if (body.metadata?.name !== target.name) {
        throw badRequest(
          `metadata.name "${String(body.metadata?.name)}" does not match the path's name "${target.name}"`,
        );
      }
      const dryRun = isDryRun(url);
      const [result] = await api.apply([body], { dryRun });
      // A dry run stores nothing: answer with what would have been applied.
      return json(
        res,
        result?.action === 'created' ? 201 : 200,
        dryRun ? { results: [result] } : api.get(ref),
      );
    }
    if (method === 'DELETE') {
      check('delete');
      const current = api.get(ref);
      await api.delete([ref], { dryRun: isDryRun(url) });
      return json(res, 200, current);
    }
    throw methodNotAllowed(method, path);
  }

  private async handleAmbit(
    who: Principal,
    method: string,
    name: string,
    url: URL,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const api = this.opts.api;
    if (name === 'apply' || name === 'delete') {
      if (method !== 'POST') throw methodNotAllowed(method, url.pathname);
      const body = requireObject(await readJson(req)) as {
        objects?: unknown;
        refs?: unknown;
        dryRun?: unknown;
      };
      if (body.dryRun !== undefined && typeof body.dryRun !== 'boolean')
        throw invalid('dryRun', 'must be true or false');
      const dryRun = body.dryRun === true;
      if (name === 'apply') {
        if (!Array.isArray(body.objects)) throw invalid('objects', 'must be a list of resources');
        // Checked per validated object inside the transaction: one object out of reach refuses the batch.
        const guard = who.role === 'cluster-admin' ? undefined : (r: Resource) => authorize(who, writeOf(r));
        return json(res, 200, { results: await api.apply(body.objects, { dryRun, guard }) });
      }
      if (!Array.isArray(body.refs)) throw invalid('refs', 'must be a list of { kind, namespace, name }');
      const refs = body.refs.map(toRef);
      for (const ref of refs) authorize(who, refAttributes(ref, 'delete'));
      return json(res, 200, { results: await api.delete(refs, { dryRun }) });
    }
    if (name === 'admin-tokens' || name.startsWith('admin-tokens/'))
      return this.handleTokens(who, method, name, req, res);
    const action = this.opts.actions?.[name];
    if (action && method === 'POST') {
      requireClusterAdmin(who, `POST /ambit/v1/${name}`);
      return json(res, 200, await action(await readJson(req)));
    }
    const view = this.opts.views?.[name];
    if (!view || method !== 'GET')
      throw badRequest(`no such path ${url.pathname}`, CONTROL_ERRORS.API_NOT_FOUND);
    const access = view.access ?? 'cluster';
    if (access === 'cluster') requireClusterAdmin(who, `GET /ambit/v1/${name}`);
    const asked = url.searchParams.get('namespace');
    if (access === 'namespaced' && asked)
      authorize(who, {
        verb: 'list',
        resource: name,
        group: 'ambit.dev',
        namespaced: true,
        namespace: asked,
      });
    return json(
      res,
      200,
      view.read(url.searchParams, { all: who.role === 'cluster-admin', visible: (ns) => canRead(who, ns) }),
    );
  }

  /** Admin tokens: create (the secret is in this answer only), list (no secrets), revoke by name. */
  private async handleTokens(
    who: Principal,
    method: string,
    name: string,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    requireClusterAdmin(who, 'admin tokens');
    const tokens = this.opts.tokens;
    if (!tokens) throw badRequest('this control plane keeps no admin tokens', CONTROL_ERRORS.API_NOT_FOUND);
    const tokenName = name.slice('admin-tokens/'.length);
    if (name === 'admin-tokens') {
      if (method === 'POST') return json(res, 201, await tokens.create(await readJson(req)));
      if (method === 'GET') return json(res, 200, { items: tokens.list() });
    } else if (method === 'DELETE' && tokenName !== '' && !tokenName.includes('/')) {
      return json(res, 200, await tokens.revoke(tokenName));
    }
    throw methodNotAllowed(method, `/ambit/v1/${name}`);
  }

  /** Streams `{type, object}` lines: the current items as ADDED (unless resuming), then every change. */
  private watch(
    query: { kind: string; namespace?: string; labelSelector?: string },
    url: URL,
    res: ServerResponse,
  ): void {
    const match = parseLabelSelector(query.labelSelector ?? '');
    const relevant = (o: StoredObject) =>
      o.kind === query.kind &&
      (query.namespace === undefined ||
        ('namespace' in o.metadata && o.metadata.namespace === query.namespace)) &&
      match(o.metadata.labels);
    const max = this.opts.maxWatches ?? DEFAULT_MAX_WATCHES;
    if (this.watches.size >= max) {
      throw new AmbitError(
        CONTROL_ERRORS.API_TOO_MANY_WATCHES,
        `too many open watches (the limit is ${max}); retry later, or raise adminMaxWatches`,
      );
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.flushHeaders(); // a watch on an empty collection must still answer at once
    // A watcher that stops reading is cut off once 16 MiB wait for it, rather than growing without
    // bound; like a Kubernetes watch, it lists again and resumes.
    const send = (type: string, object: StoredObject) => {
      res.write(`${JSON.stringify({ type, object })}\n`);
      if (res.writableLength > MAX_WATCH_BACKLOG) res.destroy();
    };
    if (!url.searchParams.has('resourceVersion')) for (const o of this.opts.api.list(query)) send('ADDED', o);
    const stop = this.opts.api.store.watch((_rev, changes: readonly Change[]) => {
      for (const c of changes) {
        if (c.op === 'put' && relevant(c.resource.object))
          send(c.resource.object.metadata.generation === 1 ? 'ADDED' : 'MODIFIED', c.resource.object);
        if (c.op === 'delete' && relevant(c.previous.object)) send('DELETED', c.previous.object);
      }
    });
    this.watches.add(res);
    res.on('close', () => {
      stop();
      this.watches.delete(res);
    });
  }

  private fail(res: ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const code = err instanceof AmbitError ? err.code : CONTROL_ERRORS.API_INTERNAL;
    const [status, reason] =
      STATUS_BY_CODE[code] ?? (err instanceof AmbitError ? [400, 'BadRequest'] : [500, 'InternalError']);
    if (status === 500) log.error({ err }, 'admin API request failed');
    const issues =
      (err instanceof AmbitError ? (err.detail?.errors as ConfigIssue[] | undefined) : undefined) ?? [];
    const headers: Record<string, string> =
      status === 401
        ? { 'www-authenticate': 'Bearer' }
        : status === 429
          ? { 'retry-after': '1' }
          : status === 413
            ? { connection: 'close' }
            : {};
    json(
      res,
      status,
      {
        apiVersion: 'v1',
        kind: 'Status',
        status: 'Failure',
        code: status,
        reason,
        message: err instanceof Error ? err.message : String(err),
        details: {
          ambitCode: code,
          causes: issues.map((i) => ({
            field: i.path,
            message: i.message,
            kind: i.kind,
            name: i.name,
            source: i.source,
          })),
        },
      },
      headers,
    );
  }
}

/**
 * The admin API has no authentication, so it must not be usable from a web page the operator visits:
 * a Host that is a name (DNS rebinding) is refused, and writes must be JSON (a cross-site form or
 * `text/plain` fetch cannot send that without a CORS preflight, which is never granted).
 */
function checkBrowserSafety(req: IncomingMessage, method: string): void {
  const host = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  if (host !== '' && host !== 'localhost' && isIP(host) === 0) {
    throw new AmbitError(
      CONTROL_ERRORS.API_FORBIDDEN,
      `the admin API answers requests for IP addresses or localhost only, not "${host}"`,
    );
  }
  if (
    (method === 'POST' || method === 'PUT') &&
    !/^application\/json\b/i.test(req.headers['content-type'] ?? '')
  ) {
    throw new AmbitError(
      CONTROL_ERRORS.API_UNSUPPORTED_MEDIA,
      'writes must be sent with content-type: application/json',
    );
  }
}

/** `/api/v1/…` and `/apis/{group}/{version}/…` into kind, namespace and name; undefined when not such a path. */
export function parseResourcePath(path: string): Target | undefined {
  const parts = path.split('/').filter(Boolean);
  let group: string;
  let rest: string[];
  if (parts[0] === 'api' && parts[1] === 'v1') {
    group = '';
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    group = parts[1]!;
    rest = parts.slice(3);
  } else {
    return undefined;
  }
  const version = group === '' ? 'v1' : parts[2];
  const lookup = (plural: string) => {
    const info = kindByPlural(group, plural);
    return info &&
      (group === '' || info.version === version || info.acceptedApiVersions.includes(`${group}/${version}`))
      ? info
      : undefined;
  };
  if (rest.length === 3 || rest.length === 4) {
    // namespaces/{ns}/{plural}[/{name}]
    const info = rest[0] === 'namespaces' ? lookup(rest[2]!) : undefined;
    return info?.namespaced ? { info, namespace: rest[1]!, name: rest[3] } : undefined;
  }
  if (rest.length === 1 || rest.length === 2) {
    // {plural} lists across namespaces; {plural}/{name} names a cluster-scoped resource
    const info = lookup(rest[0]!);
    if (!info || (rest.length === 2 && info.namespaced)) return undefined;
    return { info, name: rest[1] };
  }
  return undefined;
}

function withNamespace(body: unknown, target: Target): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badRequest('the body must be a resource object');
  const obj = body as { kind?: unknown; metadata?: Record<string, unknown> };
  if (obj.kind !== undefined && obj.kind !== target.info.kind) {
    throw badRequest(`the body's kind "${String(obj.kind)}" does not match the path's ${target.info.kind}`);
  }
  if (!target.namespace) return body;
  const ns = obj.metadata?.namespace;
  if (ns !== undefined && ns !== target.namespace) {
    throw badRequest(
      `metadata.namespace "${String(ns)}" does not match the path's namespace "${target.namespace}"`,
    );
  }
  return { ...obj, metadata: { ...(obj.metadata ?? {}), namespace: target.namespace } };
}

function requireObject(body: unknown): object {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw invalid('', 'the request body must be a JSON object');
  return body;
}

/** What RBAC is asked: `verb` on the kind `info`, in `namespace`, on `name`. */
function attributes(
  info: KindInfo,
  verb: Verb,
  namespace: string | undefined,
  name: string | undefined,
): ResourceAttributes {
  return {
    verb,
    resource: info.plural,
    group: info.group,
    namespaced: info.namespaced,
    namespace,
    name,
  };
}

/** What writing `r` means to RBAC: create-or-update of its kind in its namespace. */
function writeOf(r: Resource): ResourceAttributes {
  const info = kindOf(r.kind);
  return attributes(info, 'update', info.namespaced ? resourceNamespace(r) : undefined, r.metadata.name);
}

function refAttributes(ref: ResourceRef, verb: Verb): ResourceAttributes {
  return attributes(kindOf(ref.kind), verb, ref.namespace, ref.name);
}

function toRef(v: unknown, i: number): ResourceRef {
  const r = v as Partial<ResourceRef>;
  if (
    typeof r?.kind !== 'string' ||
    typeof r.name !== 'string' ||
    (r.namespace !== undefined && typeof r.namespace !== 'string')
  ) {
    throw invalid(`refs[${i}]`, 'needs string kind and name (and optional namespace)');
  }
  const info = kindOf(r.kind);
  return {
    kind: info.kind,
    name: r.name,
    namespace: info.namespaced ? (r.namespace ?? 'default') : undefined,
  };
}

/** The body as JSON: at most MAX_BODY bytes (413), no duplicate keys and not too deep (422). */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const tooLarge = () =>
    new AmbitError(
      CONTROL_ERRORS.API_TOO_LARGE,
      `the request body is larger than ${MAX_BODY} bytes, the limit`,
    );
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw tooLarge();
    chunks.push(chunk);
  }
  return parseJsonBody(Buffer.concat(chunks).toString('utf8'));
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = `${JSON.stringify(body)}\n`;
  res
    .writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      ...headers,
    })
    .end(text);
}

function isTrue(v: string | null): boolean {
  return v === 'true' || v === '1';
}

function isDryRun(url: URL): boolean {
  return url.searchParams.get('dryRun') === 'All' || isTrue(url.searchParams.get('dryRun'));
}

function badRequest(message: string, code: string = CONTROL_ERRORS.API_BAD_REQUEST): AmbitError {
  return new AmbitError(code, message);
}

function methodNotAllowed(method: string, path: string): AmbitError {
  return new AmbitError(CONTROL_ERRORS.API_METHOD, `${method} is not allowed on ${path}`);
}
