// The console's entry point: sign-in, the shell (top bar, navigation), routing and shortcuts.
//
// Routes (History API under /ui/; the server answers any of them with index.html):
//   /ui/                         cluster overview
//   /ui/apply                    YAML editor
//   /ui/PLURAL                   a list (pods, deployments, ...)
//   /ui/PLURAL/NAMESPACE/NAME    an object (cluster-scoped: /ui/PLURAL/NAME)

import { Api } from './api.js';
import { h, mount, dialog, toast } from './dom.js';
import { RESOURCES } from './resources.js';
import { MetricsPoller } from './metrics.js';
import * as overview from './views/overview.js';
import * as list from './views/list.js';
import * as detail from './views/detail.js';
import * as apply from './views/apply.js';

const TOKEN_KEY = 'wasmkube.token';
const NS_KEY = 'wasmkube.namespace';
const THEME_KEY = 'wasmkube.theme';

const root = document.getElementById('app');

// ---- theme ----
function applyTheme(theme) {
  if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}
function currentTheme() {
  const t = document.documentElement.dataset.theme;
  if (t) return t;
  return window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}
function toggleTheme() {
  const next = currentTheme() === 'dark' ? 'light' : 'dark';
  localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
}
applyTheme(localStorage.getItem(THEME_KEY));

// ---- sign-in ----
function signInPage(message) {
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, placeholder: 'Bearer token', 'aria-describedby': 'token-help' });
  const error = h('p', { class: 'signin-error', role: 'alert', id: 'signin-error', hidden: !message }, message || '');
  const button = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Sign in');
  const form = h('form', { class: 'signin-card', 'aria-labelledby': 'signin-title' },
    h('div', { class: 'brand brand-large' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'wasmkube'),
    h('h1', { id: 'signin-title' }, 'Sign in to the cluster'),
    h('label', { for: 'token' }, 'Token'),
    input,
    h('p', { class: 'help', id: 'token-help' }, 'The admin token (', h('code', {}, 'DATA_DIR/token'), ') or a ServiceAccount token. It is kept in this tab only (session storage).'),
    error,
    button);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    button.disabled = true;
    button.textContent = 'Signing in…';
    error.hidden = true;
    try {
      await new Api(token).get('/api/v1/namespaces', { limit: 1 });
      sessionStorage.setItem(TOKEN_KEY, token);
      start(token);
    } catch (e) {
      error.textContent = e.status === 401
        ? 'That token was not accepted (401 Unauthorized). Check it and try again.'
        : e.status === 403
          ? `The token is valid but may not list namespaces (403 Forbidden): ${e.message}`
          : `Could not reach the API server: ${e.message}`;
      error.hidden = false;
      button.disabled = false;
      button.textContent = 'Sign in';
      input.select();
    }
  });
  mount(root, h('main', { class: 'signin' }, form));
  input.focus();
}

// ---- the signed-in console ----
let app = null;

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (app) {
    if (app.cleanup) app.cleanup();
    app.metrics.stop();
    if (app.nsWatch) app.nsWatch.stop();
    app = null;
  }
  history.replaceState(null, '', '/ui/');
  signInPage(message);
}

function navItem(href, label, key) {
  return h('a', { href, class: 'nav-item', dataset: { nav: key } }, label);
}

function sidebar() {
  const sections = {};
  for (const [plural, r] of Object.entries(RESOURCES)) (sections[r.section] ||= []).push(navItem(`/ui/${plural}`, r.title, plural));
  return h('nav', { class: 'sidebar', id: 'sidebar', 'aria-label': 'Resources' },
    h('div', { class: 'nav-section' }, navItem('/ui/', 'Overview', 'overview'), navItem('/ui/apply', 'Apply YAML', 'apply')),
    Object.entries(sections).map(([title, items]) => h('div', { class: 'nav-section' }, h('h2', {}, title), items)));
}

function start(token) {
  const api = new Api(token, () => {
    if (app) signOut('Your token is no longer accepted (401 Unauthorized). Sign in again.');
  });
  const search = h('input', { type: 'search', id: 'search', class: 'search-input', placeholder: 'Search', 'aria-label': 'Search by name or label (shortcut /)', autocomplete: 'off' });
  const nsSelect = h('select', { id: 'namespace', 'aria-label': 'Namespace' }, h('option', { value: '' }, 'All namespaces'));
  const main = h('main', { id: 'main', class: 'content', tabindex: '-1' });
  const side = sidebar();
  const menu = h('button', { class: 'btn btn-icon menu-toggle', type: 'button', 'aria-label': 'Show navigation', 'aria-controls': 'sidebar', 'aria-expanded': 'false' }, '☰');
  menu.addEventListener('click', () => {
    const open = !document.body.classList.contains('nav-open');
    document.body.classList.toggle('nav-open', open);
    menu.setAttribute('aria-expanded', String(open));
  });
  const shell = h('div', { class: 'shell' },
    h('a', { class: 'skip', href: '#main' }, 'Skip to content'),
    h('header', { class: 'topbar' },
      menu,
      h('a', { class: 'brand', href: '/ui/' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'wasmkube'),
      h('div', { class: 'ns-picker' }, h('label', { for: 'namespace' }, 'Namespace'), nsSelect),
      h('div', { class: 'search' }, search, h('kbd', { class: 'search-key', 'aria-hidden': 'true' }, '/')),
      h('div', { class: 'topbar-actions' },
        h('a', { class: 'btn btn-primary', href: '/ui/apply', id: 'apply-button' }, '+ Apply'),
        h('button', { class: 'btn btn-icon', type: 'button', id: 'theme-toggle', 'aria-label': 'Toggle light or dark theme (t)', onClick: toggleTheme }, '◐'),
        h('button', { class: 'btn', type: 'button', id: 'sign-out', onClick: () => signOut('Signed out.') }, 'Sign out'))),
    side,
    main);
  mount(root, shell);

  app = {
    api,
    main,
    metrics: new MetricsPoller(api).start(),
    namespace: sessionStorage.getItem(NS_KEY) ?? 'default',
    search: '',
    listeners: new Set(),
    cleanup: null,
    onFilter(fn) {
      this.listeners.add(fn);
      return () => this.listeners.delete(fn);
    },
    emit() {
      for (const fn of this.listeners) fn();
    },
    navigate,
  };

  search.addEventListener('input', () => {
    app.search = search.value.trim().toLowerCase();
    app.emit();
  });
  search.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      search.value = '';
      app.search = '';
      app.emit();
      search.blur();
    }
  });
  nsSelect.addEventListener('change', () => {
    app.namespace = nsSelect.value;
    sessionStorage.setItem(NS_KEY, app.namespace);
    route();
  });
  // The namespace picker stays current through its own watch.
  const fillNamespaces = (lw) => {
    const names = lw.items.map((n) => n.metadata.name).sort();
    if (app.namespace && !names.includes(app.namespace) && lw.synced) names.push(app.namespace);
    mount(nsSelect, h('option', { value: '' }, 'All namespaces'), names.map((n) => h('option', { value: n, selected: n === app.namespace }, n)));
    nsSelect.value = app.namespace;
  };
  app.nsWatch = api.listWatch('namespaces', {}, fillNamespaces);
  route();
}

// ---- routing ----
function navigate(href, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  route();
}

function route() {
  if (!app) return;
  if (app.cleanup) app.cleanup();
  app.cleanup = null;
  app.listeners.clear();
  document.body.classList.remove('nav-open');
  const url = new URL(location.href);
  const parts = url.pathname.replace(/^\/ui\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const ctx = { app, el: app.main, query: url.searchParams };
  let view;
  let nav = 'overview';
  if (parts.length === 0) view = () => overview.render(ctx);
  else if (parts[0] === 'apply') {
    nav = 'apply';
    view = () => apply.render(ctx);
  } else if (RESOURCES[parts[0]]) {
    const plural = parts[0];
    const r = RESOURCES[plural];
    nav = plural;
    if (parts.length === 1) view = () => list.render({ ...ctx, plural });
    else if (r.namespaced && parts.length === 3) view = () => detail.render({ ...ctx, plural, namespace: parts[1], name: parts[2] });
    else if (!r.namespaced && parts.length === 2) view = () => detail.render({ ...ctx, plural, name: parts[1] });
  }
  for (const a of document.querySelectorAll('.nav-item')) {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!view) {
    mount(app.main, h('div', { class: 'empty tone-bad', role: 'alert' }, h('strong', {}, 'Page not found'), h('p', {}, `The console has no page at ${url.pathname}. `, h('a', { href: '/ui/' }, 'Go to the overview'))));
    return;
  }
  try {
    app.cleanup = view() || null;
  } catch (e) {
    mount(app.main, h('div', { class: 'empty tone-bad', role: 'alert' }, h('strong', {}, 'This page failed to render'), h('p', {}, e.message)));
  }
  window.scrollTo(0, 0);
}

// Links inside the console change the route without a page load.
document.addEventListener('click', (ev) => {
  const a = ev.target.closest && ev.target.closest('a[href]');
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const href = a.getAttribute('href');
  if (!href || !href.startsWith('/ui/') || a.target) return;
  ev.preventDefault();
  if (!app) return;
  navigate(href);
});
window.addEventListener('popstate', route);

// ---- keyboard ----
function inField(el) {
  return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
}
let gPending = 0;
const GO = { o: '/ui/', p: '/ui/pods', d: '/ui/deployments', n: '/ui/nodes', s: '/ui/services', e: '/ui/events', a: '/ui/apply' };
document.addEventListener('keydown', (ev) => {
  if (!app || ev.metaKey || ev.ctrlKey || ev.altKey || inField(ev.target) || document.querySelector('dialog[open]')) return;
  if (gPending && Date.now() - gPending < 1500 && GO[ev.key]) {
    gPending = 0;
    ev.preventDefault();
    navigate(GO[ev.key]);
    return;
  }
  gPending = 0;
  if (ev.key === '/') {
    ev.preventDefault();
    document.getElementById('search').focus();
  } else if (ev.key === 'g') {
    gPending = Date.now();
  } else if (ev.key === 't') {
    toggleTheme();
  } else if (ev.key === '?') {
    ev.preventDefault();
    dialog({
      title: 'Keyboard shortcuts',
      body: h('dl', { class: 'shortcuts' },
        [['/', 'Search'], ['g o', 'Overview'], ['g p', 'Pods'], ['g d', 'Deployments'], ['g n', 'Nodes'], ['g s', 'Services'], ['g e', 'Events'], ['g a', 'Apply YAML'], ['t', 'Toggle theme'], ['Esc', 'Close a dialog'], ['Ctrl+Enter', 'Apply or save in an editor']]
          .map(([k, v]) => [h('dt', {}, h('kbd', {}, k)), h('dd', {}, v)])),
      actions: [],
    });
  }
});

window.addEventListener('unhandledrejection', (ev) => {
  // Aborted requests (navigating away from a view) are expected; anything else is shown.
  const e = ev.reason;
  if (e && e.name === 'AbortError') {
    ev.preventDefault();
    return;
  }
  toast(e && e.message ? e.message : String(e), 'bad');
});

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) start(saved);
else signInPage();
