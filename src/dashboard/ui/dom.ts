// Small DOM helpers. Text always goes in as text nodes or attribute values, never as HTML, so nothing a
// server answers can become markup.

export type Child = Node | string | number | null | undefined | false;
/** Attributes: a string or number is set as is, `true` as an empty attribute; false/null/undefined are left out. */
export type Attrs = Record<string, string | number | boolean | null | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(parent: ParentNode, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : String(child));
  }
}

export function link(text: string, href: string, attrs: Attrs = {}): HTMLAnchorElement {
  return h('a', { ...attrs, href }, text);
}

/** Children joined by `separator` (a list of links, say). */
export function joined(children: Child[], separator = ', '): DocumentFragment {
  const fragment = document.createDocumentFragment();
  children.forEach((child, i) => {
    if (i > 0) fragment.append(separator);
    append(fragment, [child]);
  });
  return fragment;
}

export interface Row {
  attrs?: Attrs;
  /** The first cell is the row's header (`<th scope="row">`). */
  cells: Child[];
}

/**
 * A table with column headers, the first cell of each row as the row's header, and one row saying
 * `empty` when there are no rows.
 */
export function table(caption: string, headers: string[], rows: Row[], attrs: Attrs = {}, empty = 'none') {
  const thead = h('thead', {}, h('tr', {}, ...headers.map((text) => h('th', { scope: 'col' }, text))));
  const tbody = h('tbody');
  if (rows.length === 0) {
    tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: headers.length }, empty)));
  }
  for (const row of rows) {
    const tr = h('tr', row.attrs);
    row.cells.forEach((cell, i) => {
      tr.append(i === 0 ? h('th', { scope: 'row' }, cell) : h('td', {}, cell));
    });
    tbody.append(tr);
  }
  return h('div', { class: 'table-wrap' }, h('table', attrs, h('caption', {}, caption), thead, tbody));
}

/** A definition list of facts; a fact whose value is null or undefined is left out. */
export function facts(items: Array<[string, Child]>): HTMLDListElement {
  const dl = h('dl', { class: 'facts' });
  for (const [term, value] of items) {
    if (value === null || value === undefined) continue;
    dl.append(h('dt', {}, term), h('dd', {}, value));
  }
  return dl;
}

export function option(value: string, text: string, selected: boolean): HTMLOptionElement {
  const el = h('option', { value }, text);
  el.selected = selected;
  return el;
}

/** A labelled select whose label is visible. */
export function labelledSelect(id: string, label: string, select: HTMLSelectElement): HTMLElement {
  select.id = id;
  return h('span', { class: 'control' }, h('label', { for: id }, label), select);
}

/**
 * Replaces `container`'s children, and gives the focus back to the same control if it was inside (a link
 * to the same place, an element with the same id): a refresh must not throw a keyboard user back to the
 * top of the page.
 */
export function replaceKeepingFocus(container: Element, ...children: Child[]): void {
  const active = document.activeElement;
  const key = active instanceof HTMLElement && container.contains(active) ? focusKey(active) : undefined;
  container.replaceChildren();
  append(container, children);
  if (key) container.querySelector<HTMLElement>(key)?.focus({ preventScroll: true });
}

function focusKey(el: HTMLElement): string | undefined {
  if (el.id) return `#${CSS.escape(el.id)}`;
  const href = el.getAttribute('href');
  if (href) return `${el.localName}[href="${CSS.escape(href)}"]`;
  return undefined;
}

/** A titled section of a page. */
export function section(title: string, ...children: Child[]): HTMLElement {
  return h('section', { class: 'page-section' }, h('h2', {}, title), ...children);
}
