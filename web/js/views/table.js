// A sortable, keyboard-navigable table of objects.

import { h } from '../dom.js';
import { objectRoute } from '../resources.js';

/**
 * Builds a table. `state` ({ sortBy, desc }) persists across re-renders of the same list.
 * Rows are focusable; Enter (or a click outside a link) opens the object.
 */
export function objectTable({ items, columns, plural, state = {}, navigate, onSort, caption, rowClass }) {
  let rows = items.slice();
  const col = columns.find((c) => c.title === state.sortBy && c.sort);
  if (col) {
    rows.sort((a, b) => {
      const x = col.sort(a);
      const y = col.sort(b);
      const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
      return state.desc ? -c : c;
    });
  }
  const head = h('tr', {}, columns.map((c) => {
    const sorted = state.sortBy === c.title;
    const th = h('th', { scope: 'col', class: c.class, 'aria-sort': sorted ? (state.desc ? 'descending' : 'ascending') : undefined }, c.sort && onSort
      ? h('button', { type: 'button', class: 'th-sort', onClick: () => onSort(c.title) }, c.title, sorted ? (state.desc ? ' ▾' : ' ▴') : '')
      : c.title);
    return th;
  }));
  const body = h('tbody', {}, rows.map((o) => {
    const md = o.metadata || {};
    const href = plural ? objectRoute(plural, md.namespace, md.name) : null;
    const tr = h('tr', { tabindex: href ? '0' : undefined, dataset: { name: md.name || '', namespace: md.namespace || '' }, class: rowClass ? rowClass(o) : undefined },
      columns.map((c) => h('td', { class: c.class, dataset: { col: c.title.toLowerCase() } }, c.value(o, plural))));
    if (href && navigate) {
      tr.addEventListener('click', (ev) => {
        if (ev.target.closest('a, button, input, select')) return;
        navigate(href);
      });
      tr.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter' && ev.target === tr) navigate(href);
        else if (ev.key === 'ArrowDown' && tr.nextElementSibling) { ev.preventDefault(); tr.nextElementSibling.focus(); }
        else if (ev.key === 'ArrowUp' && tr.previousElementSibling) { ev.preventDefault(); tr.previousElementSibling.focus(); }
      });
    }
    return tr;
  }));
  return h('div', { class: 'table-wrap' }, h('table', { class: 'table' }, caption ? h('caption', { class: 'sr-only' }, caption) : null, h('thead', {}, head), body));
}

/** A small "live" indicator showing the watch's state. */
export function liveBadge(lw) {
  const state = lw ? lw.state : 'idle';
  const text = state === 'watching' ? 'Live' : state === 'listing' ? 'Loading' : state === 'backoff' ? 'Reconnecting…' : '';
  const tone = state === 'watching' ? 'ok' : state === 'backoff' ? 'bad' : 'warn';
  return h('span', { class: `live tone-${tone}`, title: lw && lw.error ? lw.error.message : text, dataset: { state } }, h('span', { class: 'live-dot', 'aria-hidden': 'true' }), text);
}
