// A live list of one resource kind: namespace, label selector and search filters.

import { h, mount, emptyState, coalesce, dialog, toast, keepFocus } from '../dom.js';
import { RESOURCES } from '../resources.js';
import { columnsFor, defaultSort, matchesSearch } from '../columns.js';
import { objectTable, liveBadge } from './table.js';
import { createNamespace } from '../actions.js';

export function render({ app, el, plural, query }) {
  const r = RESOURCES[plural];
  const namespace = r.namespaced ? app.namespace : undefined;
  const state = { sortBy: null, desc: false };
  let labelSelector = query.get('labelSelector') || '';
  let lw = null;

  const count = h('span', { class: 'count' });
  const live = h('span', {});
  const selectorInput = h('input', { type: 'text', id: 'label-selector', class: 'input input-mono', placeholder: 'app=web,tier!=cache', value: labelSelector, 'aria-label': 'Label selector', spellcheck: 'false' });
  const actions = h('div', { class: 'toolbar-actions' });
  if (plural === 'namespaces') {
    actions.append(h('button', { class: 'btn btn-primary', type: 'button', id: 'create-namespace', onClick: () => newNamespace(app) }, 'Create namespace'));
  }
  const body = h('div', { class: 'list-body' });
  mount(el,
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, r.title, ' ', count), h('p', { class: 'subtitle' }, r.namespaced ? (namespace ? `in namespace ${namespace}` : 'in all namespaces') : 'cluster-wide')),
      live),
    h('form', { class: 'toolbar', onSubmit: (ev) => { ev.preventDefault(); setSelector(selectorInput.value.trim()); } },
      h('label', { for: 'label-selector', class: 'toolbar-label' }, 'Labels'), selectorInput,
      h('button', { class: 'btn', type: 'submit' }, 'Filter'),
      actions),
    body);

  const paint = coalesce(() => {
    mount(live, liveBadge(lw));
    if (!lw) return;
    if (lw.error && !lw.synced) {
      const e = lw.error;
      mount(body, emptyState(e.status === 403 ? 'Not allowed' : 'Could not load the list', `${e.message}${e.status ? ` (HTTP ${e.status})` : ''}`, 'bad'));
      count.textContent = '';
      return;
    }
    if (!lw.synced) {
      mount(body, h('div', { class: 'loading', role: 'status' }, 'Loading…'));
      return;
    }
    const all = lw.items;
    const items = all.filter((o) => matchesSearch(o, app.search)).sort(defaultSort(plural));
    count.textContent = app.search ? `${items.length} of ${all.length}` : String(all.length);
    if (!items.length) {
      const where = r.namespaced ? (namespace ? ` in namespace ${namespace}` : '') : '';
      const filters = [labelSelector && `labels ${labelSelector}`, app.search && `“${app.search}”`].filter(Boolean).join(' and ');
      mount(body, emptyState(`No ${r.title.toLowerCase()}${where}${filters ? ` matching ${filters}` : ''}`,
        all.length || filters ? 'Clear the filters to see everything.' : plural === 'events' ? 'Events appear here as the cluster works.' : h('span', {}, 'Create one with ', h('a', { href: '/ui/apply' }, 'Apply YAML'), '.')));
      return;
    }
    const columns = columnsFor(plural, app).filter((c) => !(c.allNamespacesOnly && namespace));
    keepFocus(body, () => mount(body, objectTable({
      items, columns, plural, state, navigate: app.navigate, caption: r.title,
      onSort: (title) => { state.desc = state.sortBy === title ? !state.desc : false; state.sortBy = title; paint(); },
    })));
  });

  function startWatch() {
    if (lw) lw.stop();
    lw = app.api.listWatch(plural, { namespace, labelSelector: labelSelector || undefined }, paint, paint);
    paint();
  }
  function setSelector(sel) {
    labelSelector = sel;
    const url = new URL(location.href);
    if (sel) url.searchParams.set('labelSelector', sel);
    else url.searchParams.delete('labelSelector');
    history.replaceState(null, '', url);
    startWatch();
  }
  startWatch();
  app.onFilter(paint);
  const unsub = app.metrics.subscribe(() => { if (plural === 'pods' || plural === 'nodes') paint(); });
  // Ages advance without events.
  const tick = setInterval(paint, 15000);
  return () => {
    lw.stop();
    unsub();
    clearInterval(tick);
  };
}

export async function newNamespace(app) {
  const input = h('input', { id: 'new-namespace', class: 'input', required: true, pattern: '[a-z0-9]([a-z0-9\\-]*[a-z0-9])?', maxlength: 63, placeholder: 'team-a', spellcheck: 'false' });
  const created = await dialog({
    title: 'Create namespace',
    body: h('div', { class: 'field' }, h('label', { for: 'new-namespace' }, 'Name'), input, h('p', { class: 'help' }, 'Lower-case letters, digits and “-”, at most 63 characters.')),
    actions: [{ label: 'Create', primary: true, value: 'create' }],
    onSubmit: async () => {
      await createNamespace(app.api, input.value.trim());
    },
  });
  if (created) toast(`namespace/${input.value.trim()} created`);
}
