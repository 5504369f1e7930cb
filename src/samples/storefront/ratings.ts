// The storefront's ratings service: `GET /ratings/:id` answers the stars for one product.

import { logger } from '../../log/index.ts';
import { sendJson } from '../http.ts';
import { startHttpSample } from '../http-server.ts';
import type { SampleServer } from '../lifecycle.ts';
import { resolvePod } from '../pod.ts';
import { isValidId, RATINGS } from './data.ts';
import { idAfter, notFound, onlyGet, pathOf, type StorefrontOptions, servedBy } from './service.ts';

const log = logger('sample-ratings');

export async function startRatings(options: StorefrontOptions): Promise<SampleServer> {
  const pod = resolvePod(options.pod);
  const me = servedBy('ratings', pod);
  return startHttpSample(
    options,
    log,
    (req, res) => {
      req.resume();
      if (!onlyGet(req, res, me)) return;
      const path = pathOf(req);
      if (path === '/healthz') return sendJson(req, res, 200, { status: 'ok', servedBy: me });
      const id = idAfter(path, '/ratings');
      const rating = id !== undefined && isValidId(id) ? RATINGS[id] : undefined;
      if (id === undefined || rating === undefined) return notFound(req, res, me, `rating for '${path}'`);
      sendJson(req, res, 200, { id, stars: rating.stars, reviews: rating.reviews, servedBy: me });
    },
    'storefront ratings listening',
    { pod: me.pod, version: me.version },
  );
}
