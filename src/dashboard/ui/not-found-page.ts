// Any other address: say so, and offer the graph.

import { h, link } from './dom.ts';
import type { Page } from './page.ts';

export class NotFoundPage implements Page {
  readonly title = 'Not found';
  readonly element = h(
    'div',
    {},
    h('h1', {}, 'No such page'),
    h(
      'p',
      {},
      'This address does not name a page of the dashboard. ',
      link('Go to the graph', '#/graph'),
      '.',
    ),
  );

  request(): undefined {
    return undefined;
  }

  render(): void {}
  setRoute(): void {}
  destroy(): void {}
}
