// The HTTP endpoints every proxy serves besides its traffic: Prometheus metrics, readiness and the
// admin views. The handlers decide; `HttpEndpoints` owns the servers, so stop closes each one.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { describeError } from '../errors/index.ts';
import { canonicalIp } from '../hbone/index.ts';
import type { Logger } from '../log/index.ts';
import { http } from '../os/index.ts';

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** The servers a proxy listens with for its HTTP endpoints; `close` ends them and their connections. */
export class HttpEndpoints {
  private readonly servers: Server[] = [];

  /** Serves `handler` on `host:port` (0 for any); resolves with the port it bound. */
  async listen(host: string, port: number, handler: HttpHandler): Promise<number> {
    const server = this.server(handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  /** Serves `handler` where `listen` puts it (a private Unix socket). */
  async listenWith(handler: HttpHandler, listen: (server: Server) => Promise<void>): Promise<void> {
    await listen(this.server(handler));
  }

  close(): void {
    for (const h of this.servers) {
      h.closeAllConnections();
      h.close();
    }
  }

  private server(handler: HttpHandler): Server {
    const server = http.createServer((req, res) => {
      try {
        handler(req, res);
      } catch (err) {
        res.writeHead(500).end(describeError(err));
      }
    });
    this.servers.push(server);
    return server;
  }
}

/**
 * `/metrics` and `/stats/prometheus` from `registry`, for the sources `mayScrape` lets in; the others get
 * 403 with `refusal(source)` as the body.
 */
export function metricsHandler(opts: {
  /** A registry, or anything that renders one (a ztunnel with worker threads merges theirs). */
  registry: Pick<Registry, 'metrics' | 'contentType'>;
  mayScrape: (source: string) => boolean;
  refusal: (source: string) => string;
  log: Logger;
}): HttpHandler {
  return (req, res) => {
    const source = (req.socket.remoteAddress && canonicalIp(req.socket.remoteAddress)) || '';
    if (!opts.mayScrape(source)) {
      opts.log.debug({ source }, 'metrics scrape refused');
      res.writeHead(403, { 'content-type': 'text/plain', connection: 'close' }).end(opts.refusal(source));
      return;
    }
    if (req.url !== '/metrics' && req.url !== '/stats/prometheus') {
      res.writeHead(404).end();
      return;
    }
    opts.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(text),
      (err) => res.writeHead(500).end(String(err)),
    );
  };
}

/** `/healthz/ready`: 200 while `ready()`, 503 otherwise. */
export function readinessHandler(ready: () => boolean): HttpHandler {
  return (req, res) => {
    if (req.url !== '/healthz/ready') {
      res.writeHead(404).end();
      return;
    }
    const ok = ready();
    res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ready\n' : 'not ready\n');
  };
}

/** The admin: each path a JSON view (query ignored); anything else 404 with `hint`. */
export function adminHandler(views: Record<string, () => unknown>, hint: string): HttpHandler {
  return (req, res) => {
    const view = views[req.url?.split('?')[0] ?? ''];
    if (!view) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(hint);
      return;
    }
    // A view may answer later (a ztunnel asks its worker threads).
    Promise.resolve()
      .then(view)
      .then((body) => `${JSON.stringify(body, null, 2)}\n`)
      .then(
        (text) => res.writeHead(200, { 'content-type': 'application/json' }).end(text),
        (err) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${describeError(err)}\n`),
      );
  };
}
