// The storefront's catalog service: `GET /products` and `GET /products/:id`. Version 1 lists
// products only; version 2 and later add each product's stars from the ratings service.

import { AmbitError } from '../../errors/index.ts';
import { logger } from '../../log/index.ts';
import { SAMPLE_BAD_ARG } from '../args.ts';
import { type AnyRequest, type AnyResponse, sendJson } from '../http.ts';
import { startHttpSample } from '../http-server.ts';
import type { SampleServer } from '../lifecycle.ts';
import { resolvePod } from '../pod.ts';
import { isValidId, PRODUCTS, type ProductRecord } from './data.ts';
import {
  answerUpstreamError,
  DEFAULT_TIMEOUT_MS,
  distinct,
  idAfter,
  notFound,
  onlyGet,
  pathOf,
  type ServedBy,
  type StorefrontOptions,
  servedBy,
  servedByIn,
  versionOf,
} from './service.ts';
import { getJson, joinUrl, propagatedHeaders } from './upstream.ts';

export interface CatalogOptions extends StorefrontOptions {
  /** Base URL of the ratings service; required when the version shows ratings. */
  ratings?: URL;
}

/** A product as the catalog answers it. `rating` is present only from versions that show ratings. */
export interface Product {
  id: string;
  name: string;
  price: string;
  description: string;
  rating?: { stars: number; reviews: number } | null;
}

/** True for the versions that show star ratings: v2 and later (`v2`, `v3-canary`, ...). */
export function showsRatings(version: string): boolean {
  const major = /^v(\d+)/.exec(version)?.[1];
  return major !== undefined && Number(major) >= 2;
}

const log = logger('sample-catalog');

export async function startCatalog(options: CatalogOptions): Promise<SampleServer> {
  const pod = resolvePod(options.pod);
  const version = versionOf(pod);
  const ratings = showsRatings(version) ? options.ratings : undefined;
  if (showsRatings(version) && ratings === undefined) {
    throw new AmbitError(
      SAMPLE_BAD_ARG,
      `catalog ${version} shows ratings and needs the ratings service's URL; pass --ratings http://host:port`,
      { detail: { field: 'ratings' } },
    );
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const me = servedBy('catalog', pod);
  const serve = async (req: AnyRequest, res: AnyResponse) => {
    req.resume();
    if (!onlyGet(req, res, me)) return;
    const path = pathOf(req);
    if (path === '/healthz') return sendJson(req, res, 200, { status: 'ok', servedBy: me });
    let wanted: readonly ProductRecord[];
    if (path === '/products') {
      wanted = PRODUCTS;
    } else {
      const id = idAfter(path, '/products');
      const one = id !== undefined && isValidId(id) ? PRODUCTS.find((p) => p.id === id) : undefined;
      if (one === undefined) return notFound(req, res, me, `product '${path}'`);
      wanted = [one];
    }
    try {
      const { products, calls } = await listProducts(wanted, ratings, req, timeoutMs);
      const by = servedBy('catalog', pod, calls);
      if (path === '/products') sendJson(req, res, 200, { products, servedBy: by });
      else sendJson(req, res, 200, { product: products[0], servedBy: by });
    } catch (err) {
      answerUpstreamError(req, res, me, err, log);
    }
  };
  return startHttpSample(options, log, serve, 'storefront catalog listening', {
    pod: pod.pod,
    version,
    ratings: ratings?.href ?? null,
  });
}

async function listProducts(
  wanted: readonly ProductRecord[],
  ratings: URL | undefined,
  req: AnyRequest,
  timeoutMs: number,
): Promise<{ products: Product[]; calls: ServedBy[] }> {
  const base = wanted.map((p) => ({
    id: p.id,
    name: p.name,
    price: (p.priceCents / 100).toFixed(2),
    description: p.description,
  }));
  if (ratings === undefined) return { products: base, calls: [] };
  const headers = propagatedHeaders(req);
  const answers = await Promise.all(
    base.map((p) =>
      getJson('ratings', joinUrl(ratings, `/ratings/${encodeURIComponent(p.id)}`), {
        timeoutMs,
        headers,
        accept: [200, 404],
      }),
    ),
  );
  const calls: ServedBy[] = [];
  const products = base.map((p, i): Product => {
    const answer = answers[i];
    const body = answer?.body as { stars?: unknown; reviews?: unknown } | undefined;
    const by = servedByIn(body);
    if (by) calls.push(by);
    const ok = answer?.status === 200 && typeof body?.stars === 'number';
    return { ...p, rating: ok ? { stars: body.stars as number, reviews: Number(body.reviews ?? 0) } : null };
  });
  return { products, calls: distinct(calls) };
}
