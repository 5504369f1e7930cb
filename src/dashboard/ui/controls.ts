// Controls that several pages share.

import { type Window as TimeWindow, WINDOWS } from '../model.ts';
import { h, labelledSelect, option } from './dom.ts';

/** A select of the time windows, calling `onChange` with the one picked. */
export function windowSelect(current: TimeWindow, onChange: (window: TimeWindow) => void): HTMLElement {
  const select = h('select');
  for (const w of WINDOWS) select.append(option(w, `last ${w}`, w === current));
  select.addEventListener('change', () => {
    const picked = WINDOWS.find((w) => w === select.value);
    if (picked) onChange(picked);
  });
  return labelledSelect('window-select', 'Window', select);
}

/** Sets a select made by windowSelect to `current` (the route changed under it). */
export function setWindowSelect(container: HTMLElement, current: TimeWindow): void {
  const select = container.querySelector('select');
  if (select) select.value = current;
}
