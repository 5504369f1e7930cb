// The page's address lives in the URL's fragment (#/graph?window=5m…), so that a URL can be shared and Back
// works without the server knowing the pages.

import { type Window as TimeWindow, WINDOWS } from '../model.ts';

export const DEFAULT_WINDOW: TimeWindow = '5m';

export type Route =
  | { page: 'graph'; window: TimeWindow; namespace?: string }
  | { page: 'service' | 'workload'; namespace: string; name: string; window: TimeWindow }
  | { page: 'health' }
  | { page: 'not-found'; hash: string };

function parseWindow(value: string | null): TimeWindow {
  return WINDOWS.find((w) => w === value) ?? DEFAULT_WINDOW;
}

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#/, '');
  const [path = '', query = ''] = raw.split('?', 2);
  const params = new URLSearchParams(query);
  let segments: string[];
  try {
    segments = path.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    return { page: 'not-found', hash };
  }
  const [page, namespace, name] = segments;
  if (segments.length === 0 || (page === 'graph' && segments.length === 1)) {
    return {
      page: 'graph',
      window: parseWindow(params.get('window')),
      namespace: params.get('namespace') || undefined,
    };
  }
  if ((page === 'service' || page === 'workload') && namespace && name && segments.length === 3) {
    return { page, namespace, name, window: parseWindow(params.get('window')) };
  }
  if (page === 'health' && segments.length === 1) return { page: 'health' };
  return { page: 'not-found', hash };
}

export function href(route: Route): string {
  switch (route.page) {
    case 'graph': {
      const params = new URLSearchParams({ window: route.window });
      if (route.namespace) params.set('namespace', route.namespace);
      return `#/graph?${params}`;
    }
    case 'service':
    case 'workload':
      return `#/${route.page}/${encodeURIComponent(route.namespace)}/${encodeURIComponent(route.name)}?window=${route.window}`;
    case 'health':
      return '#/health';
    case 'not-found':
      return route.hash;
  }
}

/** Routes with the same key are one page shown with other settings (a window, a namespace). */
export function routeKey(route: Route): string {
  switch (route.page) {
    case 'service':
    case 'workload':
      return `${route.page}:${route.namespace}/${route.name}`;
    case 'not-found':
      return `not-found:${route.hash}`;
    default:
      return route.page;
  }
}

export function navigate(route: Route): void {
  location.hash = href(route);
}
