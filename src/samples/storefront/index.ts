// The storefront sample app: frontend → catalog (v1 without, v2 with ratings) → ratings, each a
// pod speaking HTTP/JSON, every answer saying which pod and version served it.

export { type CatalogOptions, type Product, showsRatings, startCatalog } from './catalog.ts';
export { PRODUCTS, RATINGS } from './data.ts';
export { describeChain, type FrontendOptions, type ProductPage, startFrontend } from './frontend.ts';
export { startRatings } from './ratings.ts';
export { DEFAULT_TIMEOUT_MS, type ServedBy, type StorefrontOptions } from './service.ts';
export { SAMPLE_UPSTREAM_FAILED, type StorefrontRole } from './upstream.ts';
