// One object: summary, status and conditions, owner and owned objects, its events, live charts,
// its YAML (view and edit), a pod's containers and logs, and the actions that apply to its kind.

import { h, mount, coalesce, emptyState, badge, link, dialog, toast } from '../dom.js';
import { age, podStatus, podReady, podRestarts, formatCpu, formatBytes, parseQuantity, statusTone } from '../format.js';
import { RESOURCES, OWNED, objectRoute, pluralOfKind, kindGroup } from '../resources.js';
import { columnsFor, nodeReady, eventObject, eventTime, jobStatus, podMemoryLimit } from '../columns.js';
import { objectTable, liveBadge } from './table.js';
import { areaChart, rolloutBar } from '../charts.js';
import { progress, ownedReplicaSets, revisionOf } from '../rollout.js';
import { toYaml, editable, parseManifests, locateField, fieldErrors } from '../manifest.js';
import * as actions from '../actions.js';
import { podMap } from './overview.js';
import { logView } from './logs.js';

export function render(ctx) {
  const { app, el, plural, namespace, name, query } = ctx;
  const r = RESOURCES[plural];
  const cleanups = [];
  let obj = null;
  let tab = query.get('tab') || 'overview';

  const titleBadge = h('span', {});
  const live = h('span', {});
  const actionBar = h('div', { class: 'actions', role: 'toolbar', 'aria-label': 'Actions' });
  const tabs = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Sections' });
  const panes = {
    overview: h('div', { class: 'pane', role: 'tabpanel', id: 'pane-overview' }),
    yaml: h('div', { class: 'pane', role: 'tabpanel', id: 'pane-yaml' }),
    logs: h('div', { class: 'pane', role: 'tabpanel', id: 'pane-logs' }),
  };
  const tabNames = plural === 'pods' ? ['overview', 'yaml', 'logs'] : ['overview', 'yaml'];
  if (!tabNames.includes(tab)) tab = 'overview';

  mount(el,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      link(`/ui/${plural}`, r.title), namespace ? h('span', {}, ' / ', namespace) : null, ' / ', h('span', { 'aria-current': 'page' }, name)),
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, h('span', { class: 'kind-tag' }, r.kind), ' ', name, ' ', titleBadge)),
      h('div', { class: 'head-right' }, live, actionBar)),
    tabs,
    Object.values(panes));

  function selectTab(t, focus) {
    tab = t;
    const url = new URL(location.href);
    if (t === 'overview') url.searchParams.delete('tab');
    else url.searchParams.set('tab', t);
    history.replaceState(null, '', url);
    for (const [k, p] of Object.entries(panes)) p.hidden = k !== t;
    for (const b of tabs.children) {
      b.setAttribute('aria-selected', String(b.dataset.tab === t));
      b.tabIndex = b.dataset.tab === t ? 0 : -1;
      if (focus && b.dataset.tab === t) b.focus();
    }
    if (t === 'yaml') yaml.show();
    if (t === 'logs') logs.start();
  }
  tabNames.forEach((t, i) => {
    tabs.append(h('button', {
      type: 'button', role: 'tab', class: 'tab', id: `tab-${t}`, dataset: { tab: t }, 'aria-controls': `pane-${t}`,
      onClick: () => selectTab(t),
      onKeydown: (ev) => {
        if (ev.key === 'ArrowRight') selectTab(tabNames[(i + 1) % tabNames.length], true);
        if (ev.key === 'ArrowLeft') selectTab(tabNames[(i + tabNames.length - 1) % tabNames.length], true);
      },
    }, { overview: 'Overview', yaml: 'YAML', logs: 'Logs' }[t]));
  });

  // ---- overview pane: summary and kind-specific sections ----
  const summary = h('div', {});
  const kindBox = h('div', {});
  const ownedBox = h('div', {});
  const eventsBox = h('div', {});
  mount(panes.overview, summary, kindBox, ownedBox,
    h('section', { class: 'panel', 'aria-labelledby': 'events-title' }, h('div', { class: 'panel-head' }, h('h2', { id: 'events-title' }, 'Events')), eventsBox));

  let deleted = false;
  const watches = {};
  const paint = coalesce(() => {
    mount(live, liveBadge(watches.self));
    const self = watches.self;
    if (!self.synced) {
      if (self.error) mount(summary, emptyState(`Could not load ${r.kind.toLowerCase()} ${name}`, self.error.message, 'bad'));
      else mount(summary, h('div', { class: 'loading', role: 'status' }, 'Loading…'));
      return;
    }
    obj = self.items[0] || null;
    if (!obj) {
      mount(titleBadge, badge(deleted ? 'Deleted' : 'NotFound', 'bad'));
      mount(summary, emptyState(deleted ? `${r.kind} ${name} was deleted` : `${r.kind} ${name} does not exist${namespace ? ` in namespace ${namespace}` : ''}`, h('span', {}, 'Back to ', link(`/ui/${plural}`, r.title), '.'), deleted ? 'neutral' : 'bad'));
      mount(kindBox);
      mount(ownedBox);
      mount(actionBar);
      return;
    }
    deleted = true; // from now on, a disappearance is a deletion
    mount(titleBadge, statusBadge(plural, obj));
    if (!actionBar.firstChild) mount(actionBar, actionButtons());
    mount(summary, summaryPanel(obj));
    mount(kindBox, kindSections(obj));
    mount(ownedBox, ownedSection(obj));
    paintEvents();
    if (!watches.events && obj.metadata.uid) {
      // Kubelets report a Node's events with the node's name as its uid, so cluster-scoped
      // objects are matched by kind and name instead.
      const fieldSelector = r.namespaced ? `involvedObject.uid=${obj.metadata.uid}` : `involvedObject.kind=${r.kind},involvedObject.name=${name}`;
      watches.events = app.api.listWatch('events', { namespace: obj.metadata.namespace, fieldSelector }, paintEvents, paintEvents);
    }
    startOwnedWatches(obj);
    yaml.update(obj);
    logs.update(obj);
  });

  function paintEvents() {
    const w = watches.events;
    if (!w || !w.synced) {
      mount(eventsBox, h('div', { class: 'loading' }, 'Loading…'));
      return;
    }
    const items = w.items.sort((a, b) => Date.parse(eventTime(b) || 0) - Date.parse(eventTime(a) || 0));
    if (!items.length) {
      mount(eventsBox, emptyState('No events', `Nothing has been reported about this ${r.kind.toLowerCase()} recently.`));
      return;
    }
    mount(eventsBox, objectTable({
      items,
      caption: 'Events',
      columns: [
        { title: 'Last seen', value: (e) => age(eventTime(e)), class: 'num' },
        { title: 'Type', value: (e) => badge(e.type || 'Normal') },
        { title: 'Reason', value: (e) => e.reason || '' },
        { title: 'From', value: (e) => (e.source && e.source.component) || e.reportingComponent || '', class: 'wide-only' },
        { title: 'Message', value: (e) => e.message || '', class: 'message' },
        { title: 'Count', value: (e) => e.count || 1, class: 'num' },
      ],
    }));
  }

  // ---- owned objects: watched in the object's namespace, filtered by ownerReferences ----
  function startOwnedWatches(o) {
    const kinds = OWNED[plural] ? [...OWNED[plural]] : [];
    if (plural === 'deployments') kinds.push('pods');
    if (plural === 'nodes') kinds.push('pods');
    for (const k of kinds) {
      if (watches[k]) continue;
      const opts = plural === 'nodes' ? { fieldSelector: `spec.nodeName=${o.metadata.name}` } : { namespace: o.metadata.namespace };
      watches[k] = app.api.listWatch(k, opts, paint, paint);
    }
    if (plural === 'services' && o.spec.selector && !watches.pods) {
      const sel = Object.entries(o.spec.selector).map(([k, v]) => `${k}=${v}`).join(',');
      watches.pods = app.api.listWatch('pods', { namespace: o.metadata.namespace, labelSelector: sel }, paint, paint);
    }
  }
  const ownedBy = (items, uid) => items.filter((x) => (x.metadata.ownerReferences || []).some((ref) => ref.uid === uid));

  function ownedSection(o) {
    const out = [];
    const uid = o.metadata.uid;
    if (plural === 'nodes' && watches.pods) {
      out.push(panel('Pods on this node', watches.pods.synced ? tableOr(watches.pods.items, 'pods', 'No pods run on this node.') : loading()));
      return out;
    }
    if (plural === 'services' && watches.pods) {
      out.push(panel('Pods selected', watches.pods.synced ? tableOr(watches.pods.items, 'pods', 'No pods match this service’s selector.') : loading()));
      return out;
    }
    for (const k of OWNED[plural] || []) {
      const w = watches[k];
      if (!w) continue;
      if (!w.synced) {
        out.push(panel(`${RESOURCES[k].title}`, loading()));
        continue;
      }
      const mine = ownedBy(w.items, uid);
      if (plural === 'deployments') {
        const rss = ownedReplicaSets(o, mine);
        out.push(panel('ReplicaSets (revisions)', rss.length ? objectTable({
          items: rss, plural: 'replicasets', navigate: app.navigate, caption: 'ReplicaSets',
          columns: [columnsFor('replicasets', app)[0],
            { title: 'Revision', value: (x) => revisionOf(x), class: 'num' },
            { title: 'Desired', value: (x) => x.spec.replicas ?? 0, class: 'num' },
            { title: 'Ready', value: (x) => (x.status && x.status.readyReplicas) || 0, class: 'num' },
            { title: 'Images', value: (x) => x.spec.template.spec.containers.map((c) => c.image).join(', '), class: 'mono' },
            { title: 'Age', value: (x) => age(x.metadata.creationTimestamp), class: 'num' }],
        }) : emptyState('No ReplicaSets yet', 'The deployment controller creates one per revision.')));
        const pw = watches.pods;
        if (pw && pw.synced) {
          const rsUids = new Set(rss.map((x) => x.metadata.uid));
          const pods = pw.items.filter((p) => (p.metadata.ownerReferences || []).some((ref) => rsUids.has(ref.uid)));
          out.push(panel('Pods', pods.length ? [podMapFor(pods), table(pods, 'pods')] : emptyState('No pods', 'Scaled to zero, or not created yet.')));
        }
      } else {
        const title = k === 'pods' ? 'Pods' : RESOURCES[k].title;
        out.push(panel(title, mine.length ? (k === 'pods' ? [podMapFor(mine), table(mine, k)] : table(mine, k)) : emptyState(`No ${title.toLowerCase()}`, `This ${r.kind.toLowerCase()} owns none right now.`)));
      }
    }
    return out;
  }
  function podMapFor(pods) {
    const names = [...new Set(pods.map((p) => p.spec.nodeName).filter(Boolean))];
    const nodes = names.map((n) => ({ metadata: { name: n } }));
    return h('div', { class: 'panel-sub' }, h('h3', {}, 'Where the replicas run'), podMap(nodes, pods));
  }
  const table = (items, k) => objectTable({ items: items.slice().sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)), columns: columnsFor(k, app).filter((c) => !c.allNamespacesOnly), plural: k, navigate: app.navigate, caption: RESOURCES[k].title });
  const tableOr = (items, k, empty) => (items.length ? table(items, k) : emptyState(`No ${RESOURCES[k].title.toLowerCase()}`, empty));

  // ---- summary ----
  function summaryPanel(o) {
    const md = o.metadata;
    const owners = (md.ownerReferences || []).map((ref) => {
      const p = pluralOfKind(ref.kind);
      return p ? link(objectRoute(p, md.namespace, ref.name), `${ref.kind}/${ref.name}`, { class: 'owner-link' }) : `${ref.kind}/${ref.name}`;
    });
    const labels = Object.entries(md.labels || {});
    const annotations = Object.entries(md.annotations || {});
    return h('section', { class: 'panel' },
      h('dl', { class: 'props' },
        prop('Kind', h('span', {}, r.kind, ' ', h('span', { class: 'muted' }, r.group ? `${r.group}/${r.version}` : r.version))),
        md.namespace ? prop('Namespace', md.namespace) : null,
        prop('Created', h('span', { title: md.creationTimestamp }, `${age(md.creationTimestamp)} ago`)),
        prop('UID', h('code', {}, md.uid || '')),
        prop('Controlled by', owners.length ? owners : h('span', { class: 'muted' }, '—')),
        md.deletionTimestamp ? prop('Deleting', `since ${age(md.deletionTimestamp)}`) : null,
        prop('Labels', labels.length ? h('span', { class: 'chips' }, labels.map(([k, v]) => h('span', { class: 'chip' }, `${k}=${v}`))) : h('span', { class: 'muted' }, '—')),
        annotations.length ? prop('Annotations', h('details', {}, h('summary', {}, `${annotations.length} annotation${annotations.length === 1 ? '' : 's'}`),
          h('dl', { class: 'kv' }, annotations.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])))) : null));
  }

  // ---- per kind ----
  function kindSections(o) {
    const out = [];
    const st = o.status || {};
    if (plural === 'pods') {
      out.push(panel('Status', h('dl', { class: 'props' },
        prop('Phase', badge(st.phase || 'Unknown')),
        prop('Status', badge(podStatus(o))),
        prop('Ready', podReady(o)),
        prop('Restarts', String(podRestarts(o))),
        prop('Node', o.spec.nodeName ? link(objectRoute('nodes', null, o.spec.nodeName), o.spec.nodeName) : h('span', { class: 'muted' }, 'not scheduled')),
        prop('Pod IP', h('code', {}, st.podIP || '—')),
        prop('Host IP', h('code', {}, st.hostIP || '—')),
        prop('QoS class', st.qosClass || '—'),
        prop('Runtime class', o.spec.runtimeClassName || '—'),
        st.message ? prop('Message', st.message) : null)));
      out.push(panel('Containers', containersTable(o)));
      out.push(usagePanel(`pod/${o.metadata.namespace}/${o.metadata.name}`, undefined, podMemoryLimit(o)));
    } else if (['deployments', 'statefulsets', 'replicasets', 'daemonsets'].includes(plural)) {
      const p = progress(o);
      out.push(panel('Rollout', h('div', { class: 'rollout-wrap' },
        rolloutBar(p),
        h('dl', { class: 'props props-compact' },
          prop('Desired', String(p.desired)),
          plural === 'deployments' ? prop('Strategy', (o.spec.strategy && o.spec.strategy.type) || 'RollingUpdate') : null,
          plural === 'deployments' ? prop('Revision', (o.metadata.annotations || {})['deployment.kubernetes.io/revision'] || '—') : null,
          prop('Selector', h('code', {}, Object.entries((o.spec.selector && o.spec.selector.matchLabels) || {}).map(([k, v]) => `${k}=${v}`).join(','))),
          prop('Images', h('code', {}, o.spec.template.spec.containers.map((c) => c.image).join(', ')))))));
    } else if (plural === 'nodes') {
      const cap = st.capacity || {};
      const alloc = st.allocatable || {};
      const info = st.nodeInfo || {};
      out.push(panel('Node', h('dl', { class: 'props' },
        prop('Status', badge(nodeReady(o))),
        prop('Addresses', (st.addresses || []).map((a) => `${a.type}: ${a.address}`).join(', ')),
        prop('Pod CIDR', h('code', {}, o.spec.podCIDR || '—')),
        prop('Kubelet', info.kubeletVersion || '—'),
        prop('Runtime', info.containerRuntimeVersion || '—'),
        prop('OS / arch', `${info.operatingSystem || ''}/${info.architecture || ''}`),
        prop('Taints', (o.spec.taints || []).length ? (o.spec.taints || []).map((t) => h('span', { class: 'chip' }, `${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}`)) : h('span', { class: 'muted' }, '—')))));
      out.push(panel('Capacity', objectTable({
        items: Object.keys(cap).map((k) => ({ metadata: { name: k }, k })),
        caption: 'Capacity',
        columns: [{ title: 'Resource', value: (x) => x.k }, { title: 'Capacity', value: (x) => cap[x.k], class: 'num mono' }, { title: 'Allocatable', value: (x) => alloc[x.k] || '', class: 'num mono' }],
      })));
      out.push(usagePanel(`node/${o.metadata.name}`, parseQuantity(cap.cpu), parseQuantity(cap.memory)));
    } else if (plural === 'services') {
      out.push(panel('Service', h('dl', { class: 'props' },
        prop('Type', o.spec.type || 'ClusterIP'),
        prop('Cluster IP', h('code', {}, o.spec.clusterIP || '—')),
        prop('Selector', h('code', {}, Object.entries(o.spec.selector || {}).map(([k, v]) => `${k}=${v}`).join(',') || '—')),
        prop('Session affinity', o.spec.sessionAffinity || 'None'))));
      out.push(panel('Ports', objectTable({
        items: (o.spec.ports || []).map((p, i) => ({ metadata: { name: p.name || String(i) }, p })),
        caption: 'Ports',
        columns: [{ title: 'Name', value: (x) => x.p.name || '' }, { title: 'Port', value: (x) => x.p.port, class: 'num' }, { title: 'Target', value: (x) => String(x.p.targetPort ?? x.p.port), class: 'num' }, { title: 'Node port', value: (x) => x.p.nodePort || '', class: 'num' }, { title: 'Protocol', value: (x) => x.p.protocol || 'TCP' }],
      })));
    } else if (plural === 'configmaps') {
      const data = Object.entries(o.data || {});
      out.push(panel('Data', data.length ? h('dl', { class: 'data-list' }, data.map(([k, v]) => [h('dt', {}, k), h('dd', {}, h('pre', { class: 'code' }, v))])) : emptyState('No data', '')));
    } else if (plural === 'secrets') {
      out.push(panel('Data', secretData(o)));
    } else if (plural === 'jobs') {
      out.push(panel('Job', h('dl', { class: 'props' },
        prop('Status', badge(jobStatus(o))),
        prop('Completions', `${st.succeeded || 0}/${o.spec.completions ?? 1}`),
        prop('Parallelism', String(o.spec.parallelism ?? 1)),
        prop('Active', String(st.active || 0)),
        prop('Failed', String(st.failed || 0)),
        prop('Started', st.startTime ? `${age(st.startTime)} ago` : '—'),
        prop('Completed', st.completionTime ? `${age(st.completionTime)} ago` : '—'))));
    } else if (plural === 'cronjobs') {
      out.push(panel('CronJob', h('dl', { class: 'props' },
        prop('Schedule', h('code', {}, o.spec.schedule)),
        prop('Time zone', o.spec.timeZone || 'local'),
        prop('Suspended', o.spec.suspend ? 'yes' : 'no'),
        prop('Concurrency', o.spec.concurrencyPolicy || 'Allow'),
        prop('Last schedule', st.lastScheduleTime ? `${age(st.lastScheduleTime)} ago` : '—'),
        prop('Last success', st.lastSuccessfulTime ? `${age(st.lastSuccessfulTime)} ago` : '—'))));
    } else if (plural === 'events') {
      out.push(panel('Event', h('dl', { class: 'props' },
        prop('Type', badge(o.type || 'Normal')), prop('Reason', o.reason || ''), prop('Object', eventObject(o)),
        prop('Message', o.message || ''), prop('Count', String(o.count || 1)), prop('Last seen', `${age(eventTime(o))} ago`))));
    } else if (plural === 'namespaces') {
      out.push(panel('Namespace', h('dl', { class: 'props' }, prop('Phase', badge(st.phase || 'Active')),
        prop('Contents', h('span', {}, link(`/ui/pods`, 'Pods'), ' · ', link('/ui/deployments', 'Deployments'), ' · ', link('/ui/services', 'Services'), h('span', { class: 'muted' }, ' (pick the namespace above)'))))));
    } else if (plural === 'ingresses') {
      out.push(panel('Rules', objectTable({
        items: (o.spec.rules || []).flatMap((rule, i) => ((rule.http && rule.http.paths) || []).map((p, j) => ({ metadata: { name: `${i}-${j}` }, rule, p }))),
        caption: 'Rules',
        columns: [{ title: 'Host', value: (x) => x.rule.host || '*' }, { title: 'Path', value: (x) => x.p.path || '/', class: 'mono' }, { title: 'Backend', value: (x) => (x.p.backend.service ? link(objectRoute('services', o.metadata.namespace, x.p.backend.service.name), `${x.p.backend.service.name}:${x.p.backend.service.port.number || x.p.backend.service.port.name}`) : '') }],
      })));
    }
    if ((st.conditions || []).length) out.push(panel('Conditions', conditionsTable(st.conditions)));
    return out;
  }

  function usagePanel(key, cpuMax, memMax) {
    const series = app.metrics.get(key);
    const cpu = series ? series.cpu.values() : [];
    const mem = series ? series.mem.values() : [];
    const note = app.metrics.error ? h('p', { class: 'muted' }, `Metrics unavailable: ${app.metrics.error.message}`) : null;
    return panel('Usage (last 5 minutes, every 10 s)', h('div', { class: 'charts' },
      areaChart(cpu, { title: 'CPU', format: formatCpu, max: cpuMax }),
      areaChart(mem, { title: 'Memory', format: formatBytes, max: memMax }), note));
  }

  function containersTable(o) {
    const statuses = new Map([...(o.status.initContainerStatuses || []), ...(o.status.containerStatuses || [])].map((c) => [c.name, c]));
    const all = [...(o.spec.initContainers || []).map((c) => ({ c, init: true })), ...o.spec.containers.map((c) => ({ c, init: false }))];
    return objectTable({
      items: all.map((x) => ({ metadata: { name: x.c.name }, ...x, s: statuses.get(x.c.name) })),
      caption: 'Containers',
      columns: [
        { title: 'Name', value: (x) => h('span', {}, x.c.name, x.init ? h('span', { class: 'chip chip-small' }, 'init') : null) },
        { title: 'Image', value: (x) => x.c.image, class: 'mono' },
        { title: 'State', value: (x) => containerState(x.s) },
        { title: 'Ready', value: (x) => (x.s && x.s.ready ? badge('True', 'ok') : badge('False', x.s ? 'bad' : 'neutral')) },
        { title: 'Restarts', value: (x) => (x.s ? x.s.restartCount || 0 : 0), class: 'num' },
        { title: 'Last state', value: (x) => (x.s && x.s.lastState && x.s.lastState.terminated ? `${x.s.lastState.terminated.reason || 'Terminated'} (exit ${x.s.lastState.terminated.exitCode}) ${age(x.s.lastState.terminated.finishedAt)} ago` : '—'), class: 'wide-only' },
        { title: '', value: (x) => h('button', { type: 'button', class: 'btn btn-small', onClick: () => { logs.choose(x.c.name); selectTab('logs'); } }, 'Logs') },
      ],
    });
  }

  function secretData(o) {
    const data = Object.entries(o.data || {});
    if (!data.length) return emptyState('No data', '');
    return h('dl', { class: 'data-list' }, data.map(([k, v]) => {
      const value = h('pre', { class: 'code secret-value', hidden: true });
      const btn = h('button', { type: 'button', class: 'btn btn-small', 'aria-expanded': 'false', dataset: { key: k } }, 'Reveal');
      btn.addEventListener('click', () => {
        const show = value.hidden;
        if (show) value.textContent = decodeBase64(v);
        else value.textContent = '';
        value.hidden = !show;
        btn.textContent = show ? 'Hide' : 'Reveal';
        btn.setAttribute('aria-expanded', String(show));
      });
      return [h('dt', {}, k, ' ', h('span', { class: 'muted' }, `${atobLength(v)} bytes`), ' ', btn), h('dd', {}, h('span', { class: 'secret-mask', 'aria-hidden': 'true' }, '••••••••'), value)];
    }));
  }

  // ---- actions ----
  function actionButtons() {
    const b = [];
    const btn = (label, onClick, cls = '', id) => h('button', { type: 'button', class: `btn ${cls}`, onClick, id }, label);
    if (plural === 'pods') b.push(btn('Logs', () => selectTab('logs'), '', 'action-logs'));
    if (r.scalable) b.push(btn('Scale', doScale, '', 'action-scale'));
    if (r.restartable) b.push(btn('Restart', doRestart, '', 'action-restart'));
    if (plural === 'deployments') b.push(btn('Undo rollout', doUndo, '', 'action-undo'));
    b.push(btn('Edit YAML', () => { selectTab('yaml'); yaml.edit(); }, '', 'action-edit'));
    b.push(btn('Delete', doDelete, 'btn-danger', 'action-delete'));
    return b;
  }
  async function doScale() {
    const input = h('input', { id: 'scale-replicas', class: 'input', type: 'number', min: 0, max: 10000, required: true, value: String(obj.spec.replicas ?? 1) });
    const ok = await dialog({
      title: `Scale ${r.kind.toLowerCase()} ${name}`,
      body: h('div', { class: 'field' }, h('label', { for: 'scale-replicas' }, 'Replicas'), input),
      actions: [{ label: 'Scale', primary: true, value: 'scale' }],
      onSubmit: async () => {
        const n = Number.parseInt(input.value, 10);
        if (!Number.isInteger(n) || n < 0) throw new Error('replicas must be a whole number, 0 or more');
        await actions.scale(app.api, plural, namespace, name, n);
      },
    });
    if (ok) toast(`${kindGroup(r.kind, r.group)}/${name} scaled to ${input.value}`);
  }
  async function doRestart() {
    const ok = await dialog({
      title: `Restart ${r.kind.toLowerCase()} ${name}?`,
      body: h('p', {}, 'Replaces every pod with a new one, following the rollout strategy (like kubectl rollout restart).'),
      actions: [{ label: 'Restart', primary: true, value: 'restart' }],
      onSubmit: () => actions.restart(app.api, plural, namespace, name),
    });
    if (ok) toast(`${kindGroup(r.kind, r.group)}/${name} restarted`);
  }
  async function doUndo() {
    let revision;
    const ok = await dialog({
      title: `Undo the rollout of ${name}?`,
      body: h('p', {}, 'Rolls the pod template back to the previous revision (like kubectl rollout undo).'),
      actions: [{ label: 'Undo', primary: true, value: 'undo' }],
      onSubmit: async () => { revision = await actions.undo(app.api, namespace, name); },
    });
    if (ok) toast(`${kindGroup(r.kind, r.group)}/${name} rolled back to revision ${revision}`);
  }
  async function doDelete() {
    const ok = await dialog({
      title: `Delete ${r.kind.toLowerCase()} ${name}?`,
      body: h('p', {}, `This deletes ${kindGroup(r.kind, r.group)}/${name}${namespace ? ` from namespace ${namespace}` : ''}`, OWNED[plural] ? ' and everything it owns' : '', '. It cannot be undone.'),
      actions: [{ label: 'Delete', primary: true, tone: 'danger', value: 'delete' }],
      onSubmit: () => actions.remove(app.api, plural, namespace, name),
    });
    if (ok) {
      toast(`${kindGroup(r.kind, r.group)}/${name} deleted`);
      app.navigate(`/ui/${plural}`);
    }
  }

  // ---- YAML pane ----
  const yaml = yamlPane(panes.yaml, app, plural, () => obj);
  // ---- logs pane ----
  const logs = plural === 'pods' ? logView(panes.logs, app, namespace, name) : { start() {}, update() {}, stop() {}, choose() {} };
  cleanups.push(() => logs.stop());

  const fieldSelector = `metadata.name=${name}`;
  watches.self = app.api.listWatch(plural, { namespace, fieldSelector }, paint, paint);
  selectTab(tab);
  const unsub = app.metrics.subscribe(paint);
  const tick = setInterval(paint, 15000);
  return () => {
    for (const w of Object.values(watches)) w.stop();
    for (const c of cleanups) c();
    unsub();
    clearInterval(tick);
  };
}

function yamlPane(pane, app, plural, current) {
  let editing = false;
  let shownVersion = '';
  const pre = h('pre', { class: 'code yaml-view', tabindex: '0', 'aria-label': 'YAML' });
  const notice = h('p', { class: 'notice', hidden: true });
  const editor = h('textarea', { class: 'editor-text', id: 'yaml-editor', spellcheck: 'false', 'aria-label': 'Edit YAML', hidden: true });
  const errors = h('div', { class: 'errors', role: 'alert' });
  const editBtn = h('button', { type: 'button', class: 'btn', id: 'yaml-edit' }, 'Edit');
  const saveBtn = h('button', { type: 'button', class: 'btn btn-primary', id: 'yaml-save', hidden: true }, 'Save');
  const cancelBtn = h('button', { type: 'button', class: 'btn', hidden: true }, 'Cancel');
  mount(pane, h('div', { class: 'toolbar' }, editBtn, saveBtn, cancelBtn, h('span', { class: 'muted' }, 'Ctrl+Enter saves; the object’s resourceVersion guards against overwriting a newer change.')), notice, errors, pre, editor);

  function show() {
    const o = current();
    if (o && !editing) {
      pre.textContent = toYaml(editable(o));
      shownVersion = o.metadata.resourceVersion;
    }
  }
  function update(o) {
    if (!editing) show();
    else if (o.metadata.resourceVersion !== shownVersion) {
      notice.textContent = 'The object has changed since you started editing; saving will fail with a conflict unless you reload.';
      notice.hidden = false;
    }
  }
  function edit() {
    const o = current();
    if (!o) return;
    editing = true;
    editor.value = toYaml(editable(o));
    shownVersion = o.metadata.resourceVersion;
    editor.hidden = false;
    pre.hidden = true;
    editBtn.hidden = true;
    saveBtn.hidden = false;
    cancelBtn.hidden = false;
    mount(errors);
    editor.focus();
  }
  function stopEditing() {
    editing = false;
    editor.hidden = true;
    pre.hidden = false;
    editBtn.hidden = false;
    saveBtn.hidden = true;
    cancelBtn.hidden = true;
    notice.hidden = true;
    mount(errors);
    show();
  }
  async function save() {
    const text = editor.value;
    const parsed = parseManifests(text);
    if (parsed.error) {
      mount(errors, h('p', { class: 'error-line' }, `Line ${parsed.error.line}: ${parsed.error.message}`));
      return;
    }
    const docs = parsed.documents.filter((d) => d.object);
    if (docs.length !== 1) {
      mount(errors, h('p', { class: 'error-line' }, 'The editor must hold exactly one object.'));
      return;
    }
    saveBtn.disabled = true;
    try {
      await actions.replaceObject(app.api, plural, docs[0].object);
      toast(`${docs[0].object.kind.toLowerCase()}/${docs[0].object.metadata.name} replaced`);
      stopEditing();
    } catch (e) {
      const list = e.body ? fieldErrors(e.body) : [{ field: '', message: e.message }];
      mount(errors, list.map((fe) => h('p', { class: 'error-line' }, fe.field ? `Line ${locateField(text, docs[0], fe.field)}: ${fe.field}: ${fe.message}` : fe.message)));
    } finally {
      saveBtn.disabled = false;
    }
  }
  editBtn.addEventListener('click', edit);
  cancelBtn.addEventListener('click', stopEditing);
  saveBtn.addEventListener('click', save);
  editor.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      save();
    } else if (ev.key === 'Escape') {
      ev.preventDefault();
      stopEditing();
    } else if (ev.key === 'Tab' && !ev.shiftKey) {
      // Two spaces, as YAML wants; Shift+Tab (or Esc) still leaves the editor.
      ev.preventDefault();
      editor.setRangeText('  ', editor.selectionStart, editor.selectionEnd, 'end');
    }
  });
  return { show, update, edit };
}

function statusBadge(plural, o) {
  switch (plural) {
    case 'pods': return badge(podStatus(o));
    case 'nodes': return badge(nodeReady(o));
    case 'jobs': return badge(jobStatus(o));
    case 'namespaces': return badge((o.status && o.status.phase) || 'Active');
    case 'deployments':
    case 'statefulsets':
    case 'replicasets':
    case 'daemonsets': {
      const p = progress(o);
      if (p.available >= p.desired && p.updated >= p.desired) return badge('Available', 'ok');
      return badge('Progressing', 'warn');
    }
    default: return null;
  }
}

function containerState(s) {
  if (!s || !s.state) return badge('Waiting', 'neutral');
  if (s.state.running) return h('span', {}, badge('Running', 'ok'), h('span', { class: 'muted' }, ` since ${age(s.state.running.startedAt)}`));
  if (s.state.waiting) return h('span', { title: s.state.waiting.message || '' }, badge(s.state.waiting.reason || 'Waiting', statusTone(s.state.waiting.reason || 'Pending')));
  if (s.state.terminated) {
    const t = s.state.terminated;
    return h('span', { title: t.message || '' }, badge(t.reason || 'Terminated', t.exitCode === 0 ? 'neutral' : 'bad'), h('span', { class: 'muted' }, ` exit ${t.exitCode}`));
  }
  return '—';
}

function conditionsTable(conditions) {
  return objectTable({
    items: conditions.map((c) => ({ metadata: { name: c.type }, c })),
    caption: 'Conditions',
    columns: [
      { title: 'Type', value: (x) => x.c.type },
      { title: 'Status', value: (x) => badge(x.c.status, x.c.status === 'True' ? (/Pressure|Unavailable|Failed/.test(x.c.type) ? 'bad' : 'ok') : x.c.status === 'False' ? (/Pressure|Unavailable|Failed/.test(x.c.type) ? 'ok' : 'bad') : 'warn') },
      { title: 'Reason', value: (x) => x.c.reason || '' },
      { title: 'Message', value: (x) => x.c.message || '', class: 'message' },
      { title: 'Last transition', value: (x) => (x.c.lastTransitionTime ? `${age(x.c.lastTransitionTime)} ago` : ''), class: 'num wide-only' },
    ],
  });
}

function panel(title, ...content) {
  return h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', {}, title)), content);
}

function prop(label, value) {
  return h('div', { class: 'prop' }, h('dt', {}, label), h('dd', {}, value));
}

function loading() {
  return h('div', { class: 'loading', role: 'status' }, 'Loading…');
}

function decodeBase64(v) {
  try {
    const bin = atob(v);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  } catch {
    return '<not valid base64>';
  }
}

function atobLength(v) {
  try {
    return atob(v).length;
  } catch {
    return 0;
  }
}
