// How the service graph is drawn. Shape says the kind (the legend says which), the line's style says its
// security, colour says health; each is also written in the labels, so none depends on colour alone.

import type cytoscape from 'cytoscape';
import type { Theme } from './theme.ts';

export function graphStyle(t: Theme): cytoscape.StylesheetJson {
  return [
    {
      selector: 'node',
      style: {
        label: 'data(label)',
        'text-wrap': 'wrap',
        'text-max-width': '140px',
        'font-size': 11,
        'font-family': 'system-ui, sans-serif',
        color: t.fg,
        'text-valign': 'bottom',
        'text-halign': 'center',
        'text-margin-y': 4,
        'text-background-color': t.bg,
        'text-background-opacity': 0.8,
        'text-background-padding': '1px',
        'background-color': t.surface,
        'border-width': 3,
        'border-color': t.idle,
        width: 34,
        height: 34,
      },
    },
    { selector: 'node[kind="service"]', style: { shape: 'round-triangle', width: 38, height: 34 } },
    { selector: 'node[kind="workload"]', style: { shape: 'ellipse' } },
    { selector: 'node[kind="waypoint"]', style: { shape: 'hexagon', width: 40, height: 34 } },
    { selector: 'node[kind="unknown"]', style: { shape: 'diamond' } },
    { selector: 'node[health="healthy"]', style: { 'border-color': t.ok } },
    { selector: 'node[health="degraded"]', style: { 'border-color': t.warn } },
    { selector: 'node[health="failing"]', style: { 'border-color': t.bad, 'border-width': 4 } },
    { selector: 'node[health="idle"]', style: { 'border-color': t.idle, 'border-style': 'dashed' } },
    { selector: 'node[?idle]', style: { opacity: 0.45 } },
    {
      // Boxes, after the health rules so that a box's border is its own.
      selector: 'node[kind="namespace"], node[kind="app"]',
      style: {
        shape: 'round-rectangle',
        'text-valign': 'top',
        'text-halign': 'center',
        'text-margin-y': -4,
        'font-weight': 'bold',
        'border-width': 1,
        'border-style': 'dashed',
        'border-color': t.muted,
        'background-color': t.boxNamespace,
        'background-opacity': 1,
        padding: '18px',
        opacity: 1,
      },
    },
    {
      selector: 'node[kind="app"]',
      style: {
        'border-style': 'solid',
        'background-color': t.boxApp,
        padding: '10px',
        'font-weight': 'normal',
      },
    },
    {
      selector: 'edge',
      style: {
        label: 'data(label)',
        'text-wrap': 'wrap',
        'font-size': 11,
        'font-family': 'system-ui, sans-serif',
        color: t.fg,
        'text-background-color': t.bg,
        'text-background-opacity': 0.9,
        'text-background-padding': '2px',
        'text-background-shape': 'roundrectangle',
        width: 2,
        'curve-style': 'bezier',
        'line-color': t.ok,
        'target-arrow-shape': 'triangle',
        'target-arrow-color': t.ok,
        'arrow-scale': 1.1,
      },
    },
    { selector: 'edge[health="degraded"]', style: { 'line-color': t.warn, 'target-arrow-color': t.warn } },
    { selector: 'edge[health="failing"]', style: { 'line-color': t.bad, 'target-arrow-color': t.bad } },
    {
      selector: 'edge[security="plaintext"]',
      style: { 'line-style': 'dashed', 'line-dash-pattern': [8, 5] },
    },
    { selector: 'edge[security="mixed"]', style: { 'line-style': 'dashed', 'line-dash-pattern': [2, 4] } },
    { selector: 'edge[?denied]', style: { color: t.bad, 'font-weight': 'bold' } },
    { selector: 'edge[?idle]', style: { opacity: 0.5 } },
    {
      selector: 'edge:selected',
      style: { width: 5, 'overlay-color': t.accent, 'overlay-opacity': 0.2, 'overlay-padding': 4 },
    },
    { selector: 'node:selected', style: { 'overlay-color': t.accent, 'overlay-opacity': 0.15 } },
  ];
}
