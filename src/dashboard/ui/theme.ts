// The colours of style.css (its custom properties, light or dark) for what draws on a canvas: the graph
// and the charts cannot read CSS themselves, so they are handed these at render time, and again when the
// browser's colour scheme changes.

export interface Theme {
  bg: string;
  fg: string;
  muted: string;
  border: string;
  surface: string;
  ok: string;
  warn: string;
  bad: string;
  idle: string;
  accent: string;
  boxNamespace: string;
  boxApp: string;
  chart: [string, string, string];
  grid: string;
}

export function readTheme(el: Element = document.documentElement): Theme {
  const css = getComputedStyle(el);
  const v = (name: string, fallback: string) => css.getPropertyValue(name).trim() || fallback;
  return {
    bg: v('--bg', '#ffffff'),
    fg: v('--fg', '#1f2328'),
    muted: v('--muted', '#59636e'),
    border: v('--border', '#d1d9e0'),
    surface: v('--surface', '#f6f8fa'),
    ok: v('--ok', '#1a7f37'),
    warn: v('--warn', '#9a6700'),
    bad: v('--bad', '#cf222e'),
    idle: v('--idle', '#818b98'),
    accent: v('--accent', '#0969da'),
    boxNamespace: v('--box-namespace', '#f6f8fa'),
    boxApp: v('--box-app', '#ddf4ff'),
    chart: [v('--chart-1', '#0969da'), v('--chart-2', '#bc4c00'), v('--chart-3', '#8250df')],
    grid: v('--grid', '#d1d9e0'),
  };
}

/** Calls `onChange` whenever the browser switches between light and dark; returns how to stop. */
export function onSchemeChange(onChange: () => void): () => void {
  const query = window.matchMedia('(prefers-color-scheme: dark)');
  query.addEventListener('change', onChange);
  return () => query.removeEventListener('change', onChange);
}
