// The HTTP side of every HTTP sample: HTTP/1.1 and h2c on one port, a handler that may be async
// (a throw becomes a 500, never a crash), optional HTTP/1.1 upgrades, and a close that drains them all.

import type { IncomingMessage } from 'node:http';
import type { Http2Session } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log/index.ts';
import { SAMPLE_ERRORS } from './errors.ts';
import { createDualServer } from './h2c.ts';
import { type AnyRequest, type AnyResponse, errorBody, Http1Activity, sendJson } from './http.ts';
import {
  ConnectionTracker,
  DEFAULT_DRAIN_MS,
  DEFAULT_HOST,
  type ListenOptions,
  listen,
  once,
  type SampleServer,
} from './lifecycle.ts';

export type HttpHandler = (req: AnyRequest, res: AnyResponse) => Promise<void> | void;

/** Takes HTTP/1.1 `Upgrade` requests (the socket is its own from then on); `drain` asks them to end. */
export interface UpgradeHandler {
  handle(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  drain(): void;
}

/** Listens with `handler`; logs `startMessage` once with the bound address and `startFields`. */
export async function startHttpSample(
  options: ListenOptions,
  log: Logger,
  handler: HttpHandler,
  startMessage: string,
  startFields: Record<string, unknown>,
  upgrades?: UpgradeHandler,
): Promise<SampleServer> {
  const activity = new Http1Activity();
  const sessions = new Set<Http2Session>();
  const { listener, http1, http2 } = createDualServer((req, res) => {
    activity.begin(req, res);
    Promise.resolve()
      .then(() => handler(req, res))
      .catch((err: unknown) => {
        log.error({ err, path: req.url }, 'request failed');
        sendJson(req, res, 500, errorBody(SAMPLE_ERRORS.INTERNAL, 'the sample failed; see its log'));
      });
  }, options.tls);
  if (options.keepAliveMs !== undefined) http1.keepAliveTimeout = options.keepAliveMs;
  const tracker = new ConnectionTracker(listener);
  if (upgrades)
    http1.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      upgrades.handle(req, socket, head),
    );
  http2.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  http2.on('sessionError', (err: Error) => log.debug({ err }, 'h2 session error'));

  const address = await listen(listener, options.host ?? DEFAULT_HOST, options.port);
  log.info({ address, ...startFields }, startMessage);
  const close = once(() =>
    tracker.close(listener, options.drainMs ?? DEFAULT_DRAIN_MS, {
      beginDrain: () => {
        activity.drain();
        upgrades?.drain();
        for (const session of sessions) session.close();
      },
      isIdle: (socket) => activity.isIdle(socket),
    }),
  );
  return { address, close };
}
