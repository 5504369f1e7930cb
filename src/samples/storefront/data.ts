// The storefront's fixed data: what the catalog sells and what the ratings service knows. Kept
// small and deterministic so tests and demos can assert on exact values.

export interface ProductRecord {
  readonly id: string;
  readonly name: string;
  readonly priceCents: number;
  readonly description: string;
}

export interface RatingRecord {
  /** 1–5 stars. */
  readonly stars: number;
  readonly reviews: number;
}

export const PRODUCTS: readonly ProductRecord[] = [
  { id: 'p1', name: 'Mesh hammock', priceCents: 4900, description: 'Hangs between any two nodes.' },
  { id: 'p2', name: 'Tunnel torch', priceCents: 1900, description: 'Lights up every HBONE stream.' },
  { id: 'p3', name: 'Waypoint compass', priceCents: 2900, description: 'Points each request the right way.' },
  {
    id: 'p4',
    name: 'Certificate clip',
    priceCents: 900,
    description: 'Keeps your identity close, renews at half life.',
  },
];

export const RATINGS: Readonly<Record<string, RatingRecord>> = {
  p1: { stars: 5, reviews: 12 },
  p2: { stars: 4, reviews: 31 },
  p3: { stars: 3, reviews: 7 },
  p4: { stars: 4, reviews: 2 },
};

/** Product and rating ids: short slugs, so a path segment can be checked before any lookup. */
export function isValidId(id: string): boolean {
  return /^[a-z0-9-]{1,64}$/.test(id);
}
