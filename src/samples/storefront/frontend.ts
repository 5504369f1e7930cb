// The storefront's frontend: `GET /` (an HTML page) and `GET /api/products` (JSON), both built
// from one call to the catalog, taking the catalog URLs in turn (round robin) when given several.

import { AmbitError } from '../../errors/index.ts';
import { logger } from '../../log/index.ts';
import { SAMPLE_BAD_ARG } from '../args.ts';
import { type AnyRequest, type AnyResponse, send, sendJson } from '../http.ts';
import { startHttpSample } from '../http-server.ts';
import type { SampleServer } from '../lifecycle.ts';
import { resolvePod } from '../pod.ts';
import type { Product } from './catalog.ts';
import {
  answerUpstreamError,
  DEFAULT_TIMEOUT_MS,
  notFound,
  onlyGet,
  pathOf,
  type ServedBy,
  type StorefrontOptions,
  servedBy,
  servedByIn,
} from './service.ts';
import { getJson, joinUrl, propagatedHeaders, SAMPLE_UPSTREAM_FAILED } from './upstream.ts';

export interface FrontendOptions extends StorefrontOptions {
  /** Catalog base URLs, used in turn; at least one. With the mesh: one service VIP. */
  catalog: readonly URL[];
}

/** The JSON of `GET /api/products`. */
export interface ProductPage {
  products: Product[];
  servedBy: ServedBy;
}

const log = logger('sample-frontend');

export async function startFrontend(options: FrontendOptions): Promise<SampleServer> {
  if (options.catalog.length === 0) {
    throw new AmbitError(
      SAMPLE_BAD_ARG,
      'frontend needs at least one catalog URL; pass --catalog http://host:port',
      {
        detail: { field: 'catalog' },
      },
    );
  }
  const pod = resolvePod(options.pod);
  const me = servedBy('frontend', pod);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let turn = 0;
  const nextCatalog = (): URL => {
    const url = options.catalog[turn % options.catalog.length] as URL;
    turn += 1;
    return url;
  };

  /** One catalog call; the page as the frontend answers it. */
  const productPage = async (req: AnyRequest): Promise<ProductPage> => {
    const { body } = await getJson('catalog', joinUrl(nextCatalog(), '/products'), {
      timeoutMs,
      headers: propagatedHeaders(req),
    });
    const products = (body as { products?: unknown }).products;
    if (!Array.isArray(products)) {
      throw new AmbitError(SAMPLE_UPSTREAM_FAILED, 'catalog answered without a products list', {
        detail: { upstream: 'catalog', reason: 'body' },
      });
    }
    const catalogBy = servedByIn(body);
    return {
      products: products as Product[],
      servedBy: servedBy('frontend', pod, catalogBy ? [catalogBy] : []),
    };
  };

  const serve = async (req: AnyRequest, res: AnyResponse) => {
    req.resume();
    if (!onlyGet(req, res, me)) return;
    const path = pathOf(req);
    if (path === '/healthz') return sendJson(req, res, 200, { status: 'ok', servedBy: me });
    if (path !== '/' && path !== '/api/products') return notFound(req, res, me, `page '${path}'`);
    let page: ProductPage;
    try {
      page = await productPage(req);
    } catch (err) {
      if (path === '/api/products') return answerUpstreamError(req, res, me, err, log);
      if (!(err instanceof AmbitError) || err.code !== SAMPLE_UPSTREAM_FAILED) throw err;
      log.warn({ err: err.message, ...err.detail }, 'upstream call failed');
      return send(req, res, 502, 'text/html; charset=utf-8', renderError(err.message, me));
    }
    if (path === '/api/products') return sendJson(req, res, 200, page);
    send(req, res, 200, 'text/html; charset=utf-8', renderPage(page));
  };

  return startHttpSample(options, log, serve, 'storefront frontend listening', {
    pod: pod.pod,
    version: me.version,
    catalog: options.catalog.map((u) => u.href),
  });
}

const escapes: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => escapes[c] ?? c);
}

/** "frontend frontend-1 (v1) → catalog catalog-v2 (v2) → ratings ratings-1 (v1)" */
export function describeChain(by: ServedBy): string {
  const me = `${by.service} ${by.pod} (${by.version})`;
  const calls = by.calls ?? [];
  if (calls.length === 0) return me;
  const below = calls.map(describeChain);
  return `${me} → ${below.length === 1 ? below[0] : `[${below.join(', ')}]`}`;
}

function stars(rating: Product['rating']): string {
  if (rating === undefined) return '<span class="none">ratings not shown by this catalog version</span>';
  if (rating === null) return '<span class="none">no rating</span>';
  return `${'★'.repeat(rating.stars)}${'☆'.repeat(Math.max(0, 5 - rating.stars))} (${esc(rating.reviews)})`;
}

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em 1em;text-align:left}.none{color:#888}
.served{font-family:monospace;background:#f4f4f4;padding:.5em}</style></head>
<body>${body}</body></html>
`;
}

function renderPage(page: ProductPage): string {
  const rows = page.products
    .map(
      (p) =>
        `<tr><td>${esc(p.name)}</td><td>$${esc(p.price)}</td><td>${esc(p.description)}</td><td>${stars(p.rating)}</td></tr>`,
    )
    .join('\n');
  return layout(
    'Ambit storefront',
    `<h1>Ambit storefront</h1>
<table><tr><th>product</th><th>price</th><th>description</th><th>rating</th></tr>
${rows}
</table>
<p class="served">served by: ${esc(describeChain(page.servedBy))}</p>`,
  );
}

function renderError(message: string, me: ServedBy): string {
  return layout(
    'Ambit storefront: upstream failed',
    `<h1>Ambit storefront</h1><p>${esc(message)}</p><p class="served">served by: ${esc(describeChain(me))}</p>`,
  );
}
