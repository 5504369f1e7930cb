// What the app asks of a page: what to fetch, how to show the answer, and how to go away.

import type { Envelope } from '../model.ts';
import type { ApiRequest } from './api.ts';
import type { Route } from './router.ts';

export interface Page {
  /** The document's title while the page is shown. */
  readonly title: string;
  /** The page's content, put in <main> once (before its first render, so that it has a size). */
  readonly element: HTMLElement;
  /** What to ask the server for, or undefined when the page needs nothing (say, "not found"). */
  request(): ApiRequest | undefined;
  /** Shows the server's answer to request(). Called on every refresh; resolves once it is shown. */
  render(data: Envelope): void | Promise<void>;
  /** The same page with other settings (the same routeKey: another window, another namespace). */
  setRoute(route: Route): void;
  destroy(): void;
}
