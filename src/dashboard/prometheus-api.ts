// A small client for Prometheus's HTTP query API (`/api/v1/query`, `/api/v1/query_range`): over TCP, or
// over a Unix socket (the lab's Prometheus runs in the lab's bridge namespace, which the host has no route
// into; a forwarder there listens on a socket in $AMBIT_HOME). Every call has a deadline, and the answer
// is checked against the API's documented shape before anything reads it.

import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { z } from 'zod';
import { AmbitError } from '../errors/index.ts';
import { DASHBOARD_ERRORS } from './errors.ts';

/** One series of an instant vector: its labels and value. */
export interface Sample {
  metric: Record<string, string>;
  value: number;
}

/** One series of a range query: its labels and [unix seconds, value] points. */
export interface Series {
  metric: Record<string, string>;
  points: Array<[number, number]>;
}

const value = z.tuple([z.number(), z.string()]);
const answer = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('success'),
    data: z.discriminatedUnion('resultType', [
      z.object({
        resultType: z.literal('vector'),
        result: z.array(z.object({ metric: z.record(z.string(), z.string()), value })),
      }),
      z.object({
        resultType: z.literal('matrix'),
        result: z.array(z.object({ metric: z.record(z.string(), z.string()), values: z.array(value) })),
      }),
      z.object({ resultType: z.literal('scalar'), result: value }),
      z.object({ resultType: z.literal('string'), result: value }),
    ]),
    warnings: z.array(z.string()).optional(),
  }),
  z.object({ status: z.literal('error'), errorType: z.string(), error: z.string() }),
]);

/** Most bytes of one answer read (a mesh of thousands of series is well under this). */
const MAX_ANSWER_BYTES = 32 * 1024 * 1024;

export interface PrometheusApiOptions {
  /** The server's base URL, e.g. http://127.0.0.1:9090 (a path prefix is kept). */
  url: string;
  /** Reach the server through this Unix socket instead of the URL's host and port. */
  socketPath?: string;
  timeoutMs?: number;
}

export class PrometheusApi {
  readonly url: string;
  private readonly base: URL;
  private readonly socketPath: string | undefined;
  private readonly timeoutMs: number;

  constructor(opts: PrometheusApiOptions) {
    this.base = parsePrometheusUrl(opts.url);
    this.url = opts.socketPath ? `${this.base.origin} (through ${opts.socketPath})` : this.base.origin;
    this.socketPath = opts.socketPath;
    this.timeoutMs = opts.timeoutMs ?? 5000;
  }

  /** An instant query; the value of each series (NaN and ±Inf kept as numbers). */
  async query(promql: string, time?: number): Promise<Sample[]> {
    const data = await this.get('/api/v1/query', { query: promql, ...(time ? { time: String(time) } : {}) });
    if (data.resultType !== 'vector') return [];
    return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /** A range query from `start` to `end` (unix seconds) every `step` seconds. */
  async queryRange(promql: string, start: number, end: number, step: number): Promise<Series[]> {
    const data = await this.get('/api/v1/query_range', {
      query: promql,
      start: String(start),
      end: String(end),
      step: String(step),
    });
    if (data.resultType !== 'matrix') return [];
    return data.result.map((r) => ({
      metric: r.metric,
      points: r.values.map(([t, v]) => [t, Number(v)] as [number, number]),
    }));
  }

  /** Whether the server says it is ready to serve queries. */
  async ready(): Promise<boolean> {
    try {
      const { status } = await this.fetch('/-/ready', {});
      return status === 200;
    } catch {
      return false;
    }
  }

  private async get(path: string, params: Record<string, string>) {
    const { status, body } = await this.fetch(path, params);
    let parsed: z.infer<typeof answer>;
    try {
      parsed = answer.parse(JSON.parse(body));
    } catch {
      throw new AmbitError(
        DASHBOARD_ERRORS.PROMETHEUS_UNAVAILABLE,
        `${this.url} answered ${path} with HTTP ${status} and a body that is not Prometheus's API: ${body.slice(0, 200)}`,
      );
    }
    if (parsed.status === 'error') {
      throw new AmbitError(
        DASHBOARD_ERRORS.PROMETHEUS_QUERY,
        `${this.url} refused the query (${parsed.errorType}): ${parsed.error}; query: ${params.query}`,
      );
    }
    return parsed.data;
  }

  private fetch(path: string, params: Record<string, string>): Promise<{ status: number; body: string }> {
    const url = new URL(this.base.pathname.replace(/\/$/, '') + path, this.base);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const fail = (why: string, cause?: unknown) =>
        reject(
          new AmbitError(DASHBOARD_ERRORS.PROMETHEUS_UNAVAILABLE, `cannot read ${this.url}${path}: ${why}`, {
            cause,
          }),
        );
      const req = request(
        url,
        {
          method: 'GET',
          agent: false,
          timeout: this.timeoutMs,
          headers: { accept: 'application/json' },
          ...(this.socketPath ? { socketPath: this.socketPath } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_ANSWER_BYTES) {
              req.destroy();
              fail(`the answer is larger than ${MAX_ANSWER_BYTES} bytes`);
            } else chunks.push(c);
          });
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
          );
          res.on('error', (err) => fail(err.message, err));
        },
      );
      // A deadline for the whole exchange, not only for idle sockets.
      const deadline = setTimeout(() => {
        req.destroy();
        fail(`no answer within ${this.timeoutMs} ms`);
      }, this.timeoutMs);
      req.on('close', () => clearTimeout(deadline));
      req.on('timeout', () => {
        req.destroy();
        fail(`no answer within ${this.timeoutMs} ms`);
      });
      req.on('error', (err) => fail(err.message, err));
      req.end();
    });
  }
}

/** An http(s) URL without credentials, query or fragment: what --prometheus takes. */
export function parsePrometheusUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new AmbitError(
      DASHBOARD_ERRORS.BAD_FLAG,
      `--prometheus "${text}" is not a URL (e.g. http://127.0.0.1:9090)`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new AmbitError(
      DASHBOARD_ERRORS.BAD_FLAG,
      `--prometheus "${text}" must be an http:// or https:// URL`,
    );
  if (url.username || url.password || url.search || url.hash)
    throw new AmbitError(
      DASHBOARD_ERRORS.BAD_FLAG,
      `--prometheus "${text}" must be a base URL without credentials, query or fragment`,
    );
  return url;
}
