// The status bar (is the control plane answering, is Prometheus) and the banner above the page (stale
// data, the answer's warnings, a request that failed). The banner is a polite live region, so it is
// rewritten only when what it says changes: a refresh that says the same thing again is not re-announced.

import type { Envelope, SourceState } from '../model.ts';
import { h } from './dom.ts';
import { formatTime } from './format.ts';

interface Message {
  level: 'error' | 'stale' | 'warning';
  text: string;
}

const LEVEL_WORDS: Record<Message['level'], string> = {
  error: '✖ Error:',
  stale: '⚠ Stale:',
  warning: 'ℹ Note:',
};

export class StatusView {
  #envelope: Envelope | undefined;
  #fetchError: string | undefined;
  #bannerKey = '';
  readonly #bar: HTMLElement;
  readonly #banner: HTMLElement;

  constructor(bar: HTMLElement, banner: HTMLElement) {
    this.#bar = bar;
    this.#banner = banner;
    this.#renderBar();
  }

  /** A fresh answer: show its sources and warnings (a failure before it no longer applies). */
  answered(envelope: Envelope): void {
    this.#envelope = envelope;
    this.#fetchError = undefined;
    this.#render();
  }

  /** A request failed: say so, and keep what the last answer said. */
  failed(message: string): void {
    this.#fetchError = message;
    this.#render();
  }

  /** Another page: what the last one's answer said no longer applies. */
  reset(): void {
    this.#envelope = undefined;
    this.#fetchError = undefined;
    this.#render();
  }

  #render(): void {
    this.#renderBar();
    this.#renderBanner();
  }

  #renderBar(): void {
    const env = this.#envelope;
    if (!env) {
      this.#bar.replaceChildren(h('span', {}, 'Sources: waiting for the first answer…'));
      return;
    }
    const prometheus = env.sources.prometheus;
    this.#bar.replaceChildren(
      sourceItem('Control plane', env.sources.control),
      sourceItem(`Prometheus${prometheus.url ? ` (${prometheus.url})` : ''}`, prometheus),
      h('span', { class: 'status-item' }, `Answer generated ${formatTime(env.generatedAt)}`),
    );
  }

  #renderBanner(): void {
    const messages = this.#messages();
    const key = JSON.stringify(messages);
    if (key === this.#bannerKey) return;
    this.#bannerKey = key;
    this.#banner.replaceChildren(
      ...messages.map((m) =>
        h('p', { class: `banner-${m.level}` }, h('strong', {}, LEVEL_WORDS[m.level]), ' ', m.text),
      ),
    );
  }

  #messages(): Message[] {
    const messages: Message[] = [];
    if (this.#fetchError) {
      messages.push({
        level: 'error',
        text: `${this.#fetchError}. ${this.#envelope ? 'Still showing the last answer.' : 'Nothing to show yet.'}`,
      });
    }
    const env = this.#envelope;
    if (env?.stale) {
      const down = (
        [
          ['the control plane', env.sources.control],
          ['Prometheus', env.sources.prometheus],
        ] as const
      ).filter(([, state]) => !state.ok);
      if (down.length === 0) messages.push({ level: 'stale', text: 'some of this data is not fresh' });
      for (const [name, state] of down) {
        const from = state.lastOk ? formatTime(state.lastOk) : 'before it last failed';
        messages.push({
          level: 'stale',
          text: `showing data from ${from}; ${name} is not answering: ${state.error ?? 'no reason given'}`,
        });
      }
    }
    for (const warning of env?.warnings ?? []) messages.push({ level: 'warning', text: warning });
    return messages;
  }
}

function sourceItem(name: string, state: SourceState): HTMLElement {
  return h(
    'span',
    { class: `status-item ${state.ok ? 'is-ok' : 'is-bad'}` },
    `${name}: `,
    state.ok ? '✓ ok' : `✖ ${state.error ?? 'not answering'}`,
  );
}
