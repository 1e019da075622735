// Small DOM helpers: element builders, badges, dialogs and toasts. Everything is built with
// createElement and textContent (never innerHTML), so object data can never become markup, and
// no inline style attributes are used (the Content-Security-Policy forbids them).

import { statusTone } from './format.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' && 'value' in el) el.value = v;
    else if (k === 'checked' || k === 'selected' || k === 'disabled') el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** `h('div', {class: 'x', onClick}, child, ...)`. */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Replaces an element's children. */
export function mount(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

/** A link the console's router handles (no page load). */
export function link(href, text, attrs = {}) {
  return h('a', { href, ...attrs }, text);
}

/** A coloured status word. */
export function badge(word, tone = statusTone(word)) {
  return h('span', { class: `badge tone-${tone}` }, word);
}

/** A horizontal bar for a fraction 0..1 (width set through CSSOM, which the CSP allows). */
export function meter(fraction, tone = 'accent', label) {
  const fill = h('span', { class: `meter-fill tone-${tone}` });
  fill.style.width = `${Math.max(0, Math.min(1, fraction || 0)) * 100}%`;
  return h('span', { class: 'meter', role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round((fraction || 0) * 100), 'aria-label': label }, fill);
}

/** An empty or error state in place of a table. */
export function emptyState(title, detail, tone = 'neutral') {
  return h('div', { class: `empty tone-${tone}`, role: tone === 'bad' ? 'alert' : 'status' }, h('strong', {}, title), detail ? h('p', {}, detail) : null);
}

let toastHost;
/** A short message at the corner of the screen. */
export function toast(message, tone = 'ok') {
  if (!toastHost) {
    toastHost = h('div', { class: 'toasts', 'aria-live': 'polite', role: 'status' });
    document.body.append(toastHost);
  }
  const t = h('div', { class: `toast tone-${tone}` }, message);
  toastHost.append(t);
  setTimeout(() => t.remove(), tone === 'bad' ? 8000 : 4000);
}

/**
 * A modal dialog (<dialog>, so Esc closes it and focus stays inside). `actions` are
 * `{ label, tone, value, primary }`; resolves with the chosen action's value, or null on cancel.
 * `onSubmit(value)` may throw to keep the dialog open with the error shown.
 */
export function dialog({ title, body, actions, onSubmit, initialFocus }) {
  return new Promise((resolve) => {
    const error = h('p', { class: 'dialog-error', role: 'alert', hidden: true });
    const form = h('form', { method: 'dialog', class: 'dialog-body' });
    const dlg = h('dialog', { class: 'dialog', 'aria-label': title },
      h('header', {}, h('h2', {}, title)),
      form);
    const buttons = (actions || []).map((a) => h('button', {
      type: a.primary ? 'submit' : 'button',
      class: ['btn', a.tone ? `btn-${a.tone}` : '', a.primary ? 'btn-primary' : ''],
      value: a.value ?? '',
      onClick: a.primary ? undefined : () => finish(a.value ?? null),
    }, a.label));
    append(form, [body, error, h('footer', {}, h('button', { type: 'button', class: 'btn', onClick: () => finish(null) }, 'Cancel'), buttons)]);
    let done = false;
    async function finish(value) {
      if (done) return;
      if (value !== null && onSubmit) {
        try {
          error.hidden = true;
          await onSubmit(value);
        } catch (e) {
          error.textContent = e.message || String(e);
          error.hidden = false;
          return;
        }
      }
      done = true;
      dlg.close();
      dlg.remove();
      resolve(value);
    }
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const primary = (actions || []).find((a) => a.primary);
      finish(primary ? primary.value ?? true : true);
    });
    dlg.addEventListener('cancel', (ev) => {
      ev.preventDefault();
      finish(null);
    });
    document.body.append(dlg);
    dlg.showModal();
    const focus = initialFocus ? dlg.querySelector(initialFocus) : dlg.querySelector('input, textarea, select, button[type=submit]');
    if (focus) focus.focus();
  });
}

/** Calls `fn` at most once per animation frame (coalescing bursts of watch events). */
export function coalesce(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      fn();
    });
  };
}

/**
 * Runs `fn` (which re-renders part of `container`) and puts the keyboard focus back on the row
 * that had it, so live updates do not throw a keyboard user out of a table.
 */
export function keepFocus(container, fn) {
  const active = document.activeElement;
  const row = active && active.closest && container.contains(active) ? active.closest('tr[data-name]') : null;
  const key = row ? [row.dataset.namespace, row.dataset.name] : null;
  fn();
  if (!key) return;
  for (const tr of container.querySelectorAll('tr[data-name]')) {
    if (tr.dataset.namespace === key[0] && tr.dataset.name === key[1]) {
      tr.focus();
      return;
    }
  }
}
