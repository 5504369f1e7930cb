// The page's frame: routes the URL's fragment to a page, fetches its data (GET only, one request at a
// time, refreshed on a timer), and keeps the nav, the status bar and the banner current. A failed request
// leaves the last answer on screen and says why in the banner.

import type { Envelope } from '../model.ts';
import { fetchJson, isAbort } from './api.ts';
import { formatTime } from './format.ts';
import { GraphPage } from './graph-page.ts';
import { HealthPage } from './health-page.ts';
import { NotFoundPage } from './not-found-page.ts';
import type { Page } from './page.ts';
import { DEFAULT_WINDOW, href, parseHash, type Route, routeKey } from './router.ts';
import { ServicePage } from './service-page.ts';
import { StatusView } from './status.ts';
import { WorkloadPage } from './workload-page.ts';

const REFRESH_CHOICES = [0, 5, 15, 30];
const DEFAULT_REFRESH_SECONDS = 15;
const REFRESH_STORAGE_KEY = 'ambit.dashboard.refreshSeconds';

function createPage(route: Route): Page {
  switch (route.page) {
    case 'graph':
      return new GraphPage(route);
    case 'service':
      return new ServicePage(route);
    case 'workload':
      return new WorkloadPage(route);
    case 'health':
      return new HealthPage();
    case 'not-found':
      return new NotFoundPage();
  }
}

function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`index.html has no #${id}`);
  return el;
}

export class App {
  readonly #main = byId('main', HTMLElement);
  readonly #navGraph = byId('nav-graph', HTMLAnchorElement);
  readonly #navHealth = byId('nav-health', HTMLAnchorElement);
  readonly #refreshSelect = byId('refresh-interval', HTMLSelectElement);
  readonly #refreshButton = byId('refresh-now', HTMLButtonElement);
  readonly #lastUpdated = byId('last-updated', HTMLElement);
  readonly #status = new StatusView(byId('status-bar', HTMLElement), byId('banner', HTMLElement));

  #page: Page | undefined;
  #pageKey = '';
  /** Whether the page's element is in <main> (it is put there before its first render). */
  #shown = false;
  #inFlight: AbortController | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #lastAnswerAt = 0;
  /** When the current page's data last came, for "Last updated" (undefined: not yet). */
  #lastUpdatedText: string | undefined;
  /** The graph's settings, for the nav's Graph link once the reader has gone elsewhere. */
  #graphRoute: Extract<Route, { page: 'graph' }> = { page: 'graph', window: DEFAULT_WINDOW };

  start(): void {
    window.addEventListener('hashchange', () => this.#showRoute(true));
    this.#refreshButton.addEventListener('click', () => void this.#refresh('user'));
    this.#refreshSelect.value = String(this.#storedInterval());
    this.#refreshSelect.addEventListener('change', () => {
      try {
        localStorage.setItem(REFRESH_STORAGE_KEY, this.#refreshSelect.value);
      } catch {
        // Storage off: the choice lasts until the page is reloaded.
      }
      this.#startTimer();
    });
    document.addEventListener('visibilitychange', () => {
      const seconds = Number(this.#refreshSelect.value);
      if (!document.hidden && seconds > 0 && Date.now() - this.#lastAnswerAt > seconds * 1000) {
        void this.#refresh('timer');
      }
    });
    this.#startTimer();
    this.#showRoute(false);
  }

  #storedInterval(): number {
    let stored: string | null = null;
    try {
      stored = localStorage.getItem(REFRESH_STORAGE_KEY);
    } catch {
      // Storage off: the default.
    }
    const seconds = Number(stored);
    return stored !== null && REFRESH_CHOICES.includes(seconds) ? seconds : DEFAULT_REFRESH_SECONDS;
  }

  #startTimer(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    const seconds = Number(this.#refreshSelect.value);
    if (seconds > 0) {
      this.#timer = setInterval(() => {
        if (!document.hidden) void this.#refresh('timer');
      }, seconds * 1000);
    }
  }

  #showRoute(navigated: boolean): void {
    if (!location.hash || location.hash === '#' || location.hash === '#/') {
      history.replaceState(null, '', href(this.#graphRoute));
    }
    const route = parseHash(location.hash);
    const key = routeKey(route);
    if (this.#page && key === this.#pageKey) {
      this.#page.setRoute(route);
    } else {
      this.#page?.destroy();
      this.#page = createPage(route);
      this.#pageKey = key;
      this.#shown = false;
      this.#status.reset();
      this.#lastUpdatedText = undefined;
      this.#lastUpdated.textContent = 'Loading…';
      this.#main.replaceChildren(loadingNote('Loading…'));
      if (navigated) {
        window.scrollTo(0, 0);
        this.#main.focus({ preventScroll: true });
      }
    }
    document.title = `${this.#page.title} · Ambit`;
    if (route.page === 'graph') this.#graphRoute = route;
    this.#updateNav(route);
    void this.#refresh('route');
  }

  #updateNav(route: Route): void {
    const timeWindow = 'window' in route ? route.window : this.#graphRoute.window;
    this.#navGraph.href = href({ ...this.#graphRoute, window: timeWindow });
    const current = (a: HTMLAnchorElement, on: boolean) => {
      if (on) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    };
    current(this.#navGraph, route.page === 'graph');
    current(this.#navHealth, route.page === 'health');
  }

  /**
   * Fetches and shows the current page's data. A timer's or the button's refresh is skipped while a
   * request is in flight; a new route cancels the request for the old one.
   */
  async #refresh(reason: 'route' | 'timer' | 'user'): Promise<void> {
    const page = this.#page;
    if (!page) return;
    const request = page.request();
    if (!request) {
      this.#show(page);
      return;
    }
    if (this.#inFlight) {
      if (reason !== 'route') return;
      this.#inFlight.abort();
    }
    const controller = new AbortController();
    this.#inFlight = controller;
    this.#setBusy(true);
    try {
      const data = await fetchJson<Envelope>(request, controller.signal);
      if (controller.signal.aborted || page !== this.#page) return;
      this.#show(page);
      try {
        await page.render(data);
      } catch (error) {
        throw new Error(
          `could not show the answer: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
      this.#status.answered(data);
      this.#lastAnswerAt = Date.now();
      this.#lastUpdatedText = `Last updated ${formatTime(new Date())}`;
      this.#lastUpdated.textContent = this.#lastUpdatedText;
    } catch (error) {
      if (isAbort(error) || controller.signal.aborted || page !== this.#page) return;
      const message = error instanceof Error ? error.message : String(error);
      this.#status.failed(message);
      const failed = `Refresh failed at ${formatTime(new Date())}`;
      this.#lastUpdated.textContent = this.#lastUpdatedText ? `${this.#lastUpdatedText}; ${failed}` : failed;
      if (!this.#shown)
        this.#main.replaceChildren(
          loadingNote('Could not load this page (see the message above); retrying on refresh.'),
        );
    } finally {
      if (this.#inFlight === controller) {
        this.#inFlight = undefined;
        this.#setBusy(false);
      }
    }
  }

  #show(page: Page): void {
    if (this.#shown) return;
    this.#main.replaceChildren(page.element);
    this.#shown = true;
  }

  #setBusy(busy: boolean): void {
    this.#main.setAttribute('aria-busy', String(busy));
    this.#refreshButton.classList.toggle('is-busy', busy);
  }
}

function loadingNote(text: string): HTMLElement {
  const p = document.createElement('p');
  p.className = 'loading';
  p.textContent = text;
  return p;
}
