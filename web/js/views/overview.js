// The cluster overview: nodes with readiness, capacity and live usage; pods by phase; where
// pods run (the node/pod map); workloads' health; recent warnings. Everything is watched.

import { h, mount, coalesce, emptyState, badge, link } from '../dom.js';
import { age, podStatus, statusTone, parseQuantity } from '../format.js';
import { objectRoute } from '../resources.js';
import { columnsFor, nodeReady, eventObject, eventTime } from '../columns.js';
import { stackedBar } from '../charts.js';
import { objectTable, liveBadge } from './table.js';
import { progress } from '../rollout.js';

const PHASES = [
  ['Running', 'ok'],
  ['Pending', 'warn'],
  ['Succeeded', 'neutral'],
  ['Failed', 'bad'],
  ['Unknown', 'warn'],
];

export function render({ app, el }) {
  const ns = app.namespace || undefined;
  const watches = {};
  const cards = h('section', { class: 'cards', 'aria-label': 'Summary' });
  const nodesBox = h('div', {});
  const mapBox = h('div', { class: 'panel-pad' });
  const warningsBox = h('div', {});
  const workloadsBox = h('div', { class: 'panel-pad' });
  const live = h('span', {});
  mount(el,
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Cluster overview'), h('p', { class: 'subtitle' }, ns ? `Workloads in namespace ${ns}; nodes cluster-wide` : 'All namespaces')),
      live),
    cards,
    h('section', { class: 'panel', 'aria-labelledby': 'nodes-title' }, h('div', { class: 'panel-head' }, h('h2', { id: 'nodes-title' }, 'Nodes'), h('a', { href: '/ui/nodes' }, 'All nodes')), nodesBox),
    h('div', { class: 'grid-2' },
      h('section', { class: 'panel', 'aria-labelledby': 'map-title' }, h('div', { class: 'panel-head' }, h('h2', { id: 'map-title' }, 'Where pods run'), h('a', { href: '/ui/pods' }, 'All pods')), mapBox),
      h('section', { class: 'panel', 'aria-labelledby': 'workloads-title' }, h('div', { class: 'panel-head' }, h('h2', { id: 'workloads-title' }, 'Deployments'), h('a', { href: '/ui/deployments' }, 'All deployments')), workloadsBox)),
    h('section', { class: 'panel', 'aria-labelledby': 'warnings-title' }, h('div', { class: 'panel-head' }, h('h2', { id: 'warnings-title' }, 'Recent warnings'), h('a', { href: '/ui/events' }, 'All events')), warningsBox));

  const paint = coalesce(() => {
    const { nodes, pods, deployments, warnings } = watches;
    const lws = Object.values(watches);
    const worst = lws.find((w) => w.state === 'backoff') || lws.find((w) => w.state !== 'watching') || lws[0];
    mount(live, liveBadge(worst));
    const nodeItems = nodes.synced ? nodes.items : [];
    const podItems = pods.synced ? pods.items : [];

    // Summary cards.
    const ready = nodeItems.filter((n) => nodeReady(n).startsWith('Ready')).length;
    const phases = Object.fromEntries(PHASES.map(([p]) => [p, 0]));
    for (const p of podItems) {
      const phase = (p.status && p.status.phase) || 'Unknown';
      phases[phase in phases ? phase : 'Unknown']++;
    }
    const depItems = deployments.synced ? deployments.items : [];
    const healthy = depItems.filter((d) => { const x = progress(d); return x.available >= x.desired; }).length;
    const recent = (warnings.synced ? warnings.items : []).filter((e) => Date.now() - Date.parse(eventTime(e) || 0) < 3600 * 1000);
    let cpuCap = 0;
    let cpuUsed = 0;
    for (const n of nodeItems) {
      cpuCap += parseQuantity(n.status && n.status.capacity && n.status.capacity.cpu) || 0;
      const l = app.metrics.latest(`node/${n.metadata.name}`);
      if (l) cpuUsed += l.cpu;
    }
    mount(cards,
      card('Nodes', `${ready}/${nodeItems.length}`, 'ready', ready === nodeItems.length && nodeItems.length ? 'ok' : 'bad', 'nodes'),
      h('div', { class: 'card', dataset: { card: 'pods' } },
        h('div', { class: 'card-label' }, 'Pods'),
        h('div', { class: 'card-value' }, String(podItems.length), h('small', {}, ' total')),
        stackedBar(PHASES.map(([p, tone]) => ({ label: p, value: phases[p], tone })), 'Pods by phase'),
        h('ul', { class: 'legend' }, PHASES.filter(([p]) => phases[p]).map(([p, tone]) => h('li', { dataset: { phase: p } }, h('span', { class: `dot tone-${tone}` }), `${p} `, h('strong', {}, String(phases[p])))))),
      card('Deployments', `${healthy}/${depItems.length}`, 'available', healthy === depItems.length ? 'ok' : 'warn', 'deployments'),
      card('Warnings', String(recent.length), 'in the last hour', recent.length ? 'bad' : 'ok', 'warnings'),
      card('CPU in use', cpuCap ? `${Math.round((cpuUsed / cpuCap) * 1000) / 10}%` : '–', `of ${cpuCap} cores`, 'neutral', 'cpu'));

    // Nodes with usage.
    if (!nodes.synced) mount(nodesBox, h('div', { class: 'loading', role: 'status' }, 'Loading…'));
    else if (!nodeItems.length) mount(nodesBox, emptyState('No nodes have joined', 'Start wasmkube server without --disable-agent, or join one with wasmkube agent.'));
    else {
      const podsPerNode = {};
      for (const p of podItems) if (p.spec.nodeName) podsPerNode[p.spec.nodeName] = (podsPerNode[p.spec.nodeName] || 0) + 1;
      const cols = columnsFor('nodes', app).filter((c) => c.title !== 'Runtime');
      cols.splice(4, 0, { title: 'Pods', value: (n) => `${podsPerNode[n.metadata.name] || 0}/${(n.status && n.status.capacity && n.status.capacity.pods) || '–'}`, class: 'num' });
      mount(nodesBox, objectTable({ items: nodeItems.slice().sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)), columns: cols, plural: 'nodes', navigate: app.navigate, caption: 'Nodes' }));
    }

    // The node/pod map.
    if (!pods.synced || !nodes.synced) mount(mapBox, h('div', { class: 'loading', role: 'status' }, 'Loading…'));
    else mount(mapBox, podMap(nodeItems, podItems));

    // Deployments with their rollout state.
    if (!deployments.synced) mount(workloadsBox, h('div', { class: 'loading' }, 'Loading…'));
    else if (!depItems.length) mount(workloadsBox, emptyState('No deployments', h('span', {}, 'Deploy something with ', h('a', { href: '/ui/apply' }, 'Apply YAML'), '.')));
    else {
      mount(workloadsBox, h('ul', { class: 'dep-list' }, depItems.slice().sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)).slice(0, 12).map((d) => {
        const p = progress(d);
        const fill = h('span', { class: `meter-fill tone-${p.available >= p.desired ? 'ok' : 'warn'}` });
        fill.style.width = `${p.desired ? Math.min(1, p.available / p.desired) * 100 : 100}%`;
        return h('li', {},
          link(objectRoute('deployments', d.metadata.namespace, d.metadata.name), d.metadata.name, { class: 'name-link' }),
          ns ? null : h('span', { class: 'muted' }, d.metadata.namespace),
          h('span', { class: 'meter meter-wide', role: 'meter', 'aria-label': 'available replicas', 'aria-valuenow': p.available, 'aria-valuemin': 0, 'aria-valuemax': p.desired }, fill),
          h('span', { class: 'num' }, `${p.available}/${p.desired}`));
      })));
    }

    // Recent warnings.
    if (!warnings.synced) mount(warningsBox, h('div', { class: 'loading' }, 'Loading…'));
    else {
      const items = warnings.items.slice().sort((a, b) => Date.parse(eventTime(b) || 0) - Date.parse(eventTime(a) || 0)).slice(0, 8);
      if (!items.length) mount(warningsBox, emptyState('No warnings', 'Nothing has gone wrong recently.', 'ok'));
      else {
        mount(warningsBox, objectTable({
          items,
          caption: 'Recent warnings',
          columns: [
            { title: 'Last seen', value: (e) => age(eventTime(e)), class: 'num' },
            { title: 'Reason', value: (e) => badge(e.reason || 'Warning', 'bad') },
            { title: 'Object', value: eventObject },
            { title: 'Message', value: (e) => e.message || '', class: 'message' },
          ],
        }));
      }
    }
  });

  watches.nodes = app.api.listWatch('nodes', {}, paint, paint);
  watches.pods = app.api.listWatch('pods', { namespace: ns }, paint, paint);
  watches.deployments = app.api.listWatch('deployments', { namespace: ns }, paint, paint);
  watches.warnings = app.api.listWatch('events', { namespace: ns, fieldSelector: 'type=Warning' }, paint, paint);
  paint();
  const unsub = app.metrics.subscribe(paint);
  const tick = setInterval(paint, 15000);
  return () => {
    for (const w of Object.values(watches)) w.stop();
    unsub();
    clearInterval(tick);
  };
}

function card(label, value, detail, tone, key) {
  return h('div', { class: `card card-${tone}`, dataset: { card: key } },
    h('div', { class: 'card-label' }, label),
    h('div', { class: 'card-value' }, value),
    h('div', { class: 'card-detail' }, detail));
}

/** Nodes as boxes, each pod a square coloured by its status, grouped by the workload that owns it. */
export function podMap(nodes, pods) {
  const byNode = new Map(nodes.map((n) => [n.metadata.name, []]));
  const unscheduled = [];
  for (const p of pods) {
    if (p.spec.nodeName && byNode.has(p.spec.nodeName)) byNode.get(p.spec.nodeName).push(p);
    else unscheduled.push(p);
  }
  const owner = (p) => {
    const ref = (p.metadata.ownerReferences || []).find((r) => r.controller);
    if (!ref) return p.metadata.name;
    // A ReplicaSet's name is its Deployment's plus a hash: group the replicas under the Deployment.
    return ref.kind === 'ReplicaSet' ? ref.name.replace(/-[a-z0-9]{6,10}$/, '') : ref.name;
  };
  const box = (title, list, nodeName) => {
    const groups = new Map();
    for (const p of list.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
      const k = `${p.metadata.namespace}/${owner(p)}`;
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(p);
    }
    return h('div', { class: 'map-node', dataset: { node: nodeName || '' } },
      h('div', { class: 'map-node-head' }, nodeName ? link(objectRoute('nodes', null, nodeName), title) : h('span', {}, title), h('span', { class: 'muted' }, `${list.length} pod${list.length === 1 ? '' : 's'}`)),
      list.length ? h('div', { class: 'map-groups' }, [...groups].map(([k, ps]) => h('div', { class: 'map-group' },
        h('span', { class: 'map-group-name', title: k }, k.split('/')[1]),
        h('span', { class: 'map-pods' }, ps.map((p) => {
          const st = podStatus(p);
          return h('a', { class: `map-pod tone-${statusTone(st)}`, href: objectRoute('pods', p.metadata.namespace, p.metadata.name), title: `${p.metadata.name}: ${st}`, 'aria-label': `pod ${p.metadata.name}, ${st}` });
        }))))) : h('p', { class: 'muted map-empty' }, 'No pods'));
  };
  return h('div', { class: 'map' },
    [...byNode].map(([n, list]) => box(n, list, n)),
    unscheduled.length ? box('Not scheduled', unscheduled, null) : null);
}

