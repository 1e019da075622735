// The columns of each list, after `kubectl get`'s, plus live usage where it helps.

import { h, link, badge, meter } from './dom.js';
import { age, podStatus, podReady, podRestarts, formatCpu, formatBytes, parseQuantity, percent } from './format.js';
import { objectRoute, pluralOfKind } from './resources.js';
import { sparkline } from './charts.js';
import { progress } from './rollout.js';

const meta = (o) => o.metadata || {};
const name = { title: 'Name', key: 'name', value: (o, plural) => link(objectRoute(plural, meta(o).namespace, meta(o).name), meta(o).name, { class: 'name-link' }), sort: (o) => meta(o).name };
const namespace = { title: 'Namespace', key: 'namespace', value: (o) => meta(o).namespace || '', sort: (o) => meta(o).namespace || '', allNamespacesOnly: true };
const ageCol = { title: 'Age', key: 'age', value: (o) => age(meta(o).creationTimestamp), sort: (o) => -Date.parse(meta(o).creationTimestamp || 0), class: 'num' };

export function nodeReady(node) {
  const c = (node.status && node.status.conditions || []).find((x) => x.type === 'Ready');
  let word = c && c.status === 'True' ? 'Ready' : c && c.status === 'Unknown' ? 'Unknown' : 'NotReady';
  if (node.spec && node.spec.unschedulable) word += ',SchedulingDisabled';
  return word;
}

/** A usage cell: value, a bar against `capacity` when known, and a sparkline of the last minutes. */
export function usageCell(metrics, key, which, capacity) {
  const series = metrics.get(key);
  const ring = series ? series[which] : null;
  const samples = ring ? ring.values() : [];
  const last = samples.length ? samples[samples.length - 1].v : NaN;
  const fmt = which === 'cpu' ? formatCpu : formatBytes;
  return h('div', { class: 'usage' },
    h('span', { class: 'usage-value' }, fmt(last), capacity ? h('small', {}, ` ${percent(last, capacity)}`) : null),
    capacity ? meter(last / capacity, last / capacity > 0.85 ? 'bad' : 'accent', `${which} of capacity`) : null,
    sparkline(samples, { max: capacity, label: `${which === 'cpu' ? 'CPU' : 'Memory'} over the last minutes` }));
}

function images(template) {
  return ((template && template.spec && template.spec.containers) || []).map((c) => c.image).join(', ');
}

function ownerLink(o) {
  const ref = (meta(o).ownerReferences || []).find((r) => r.controller) || (meta(o).ownerReferences || [])[0];
  if (!ref) return '';
  const plural = pluralOfKind(ref.kind);
  return plural ? link(objectRoute(plural, meta(o).namespace, ref.name), `${ref.kind}/${ref.name}`) : `${ref.kind}/${ref.name}`;
}

function selectorText(sel) {
  return Object.entries(sel || {}).map(([k, v]) => `${k}=${v}`).join(',');
}

function servicePorts(svc) {
  return ((svc.spec && svc.spec.ports) || []).map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol || 'TCP'}`).join(',');
}

export function eventObject(ev) {
  const io = ev.involvedObject || ev.regarding || {};
  const plural = pluralOfKind(io.kind);
  const text = `${(io.kind || '').toLowerCase()}/${io.name}`;
  return plural && io.name ? link(objectRoute(plural, io.namespace, io.name), text) : text;
}

export function eventTime(ev) {
  return ev.lastTimestamp || ev.eventTime || (ev.series && ev.series.lastObservedTime) || ev.firstTimestamp || meta(ev).creationTimestamp;
}

/** Columns per resource plural. `ctx` gives `metrics`. */
export function columnsFor(plural, ctx) {
  const m = ctx.metrics;
  switch (plural) {
    case 'pods':
      return [name, namespace,
        { title: 'Ready', value: podReady, class: 'num' },
        { title: 'Status', value: (p) => badge(podStatus(p)), sort: podStatus },
        { title: 'Restarts', value: podRestarts, sort: podRestarts, class: 'num' },
        { title: 'CPU', value: (p) => usageCell(m, `pod/${meta(p).namespace}/${meta(p).name}`, 'cpu'), class: 'wide-only' },
        { title: 'Memory', value: (p) => usageCell(m, `pod/${meta(p).namespace}/${meta(p).name}`, 'mem', podMemoryLimit(p)), class: 'wide-only' },
        { title: 'IP', value: (p) => (p.status && p.status.podIP) || '', class: 'mono wide-only' },
        { title: 'Node', value: (p) => (p.spec.nodeName ? link(objectRoute('nodes', null, p.spec.nodeName), p.spec.nodeName) : h('span', { class: 'muted' }, '<none>')), sort: (p) => p.spec.nodeName || '' },
        ageCol];
    case 'deployments':
    case 'statefulsets':
      return [name, namespace,
        { title: 'Ready', value: (d) => { const p = progress(d); return h('div', { class: 'ready-cell' }, `${p.ready}/${p.desired}`, meter(p.desired ? p.ready / p.desired : 1, p.ready >= p.desired ? 'ok' : 'warn', 'ready replicas')); }, class: 'num' },
        { title: 'Up-to-date', value: (d) => progress(d).updated, class: 'num' },
        { title: 'Available', value: (d) => progress(d).available, class: 'num' },
        { title: 'Images', value: (d) => images(d.spec.template), class: 'mono wide-only' },
        ageCol];
    case 'replicasets':
      return [name, namespace,
        { title: 'Desired', value: (r) => r.spec.replicas ?? 1, class: 'num' },
        { title: 'Current', value: (r) => (r.status && r.status.replicas) || 0, class: 'num' },
        { title: 'Ready', value: (r) => (r.status && r.status.readyReplicas) || 0, class: 'num' },
        { title: 'Owner', value: ownerLink },
        ageCol];
    case 'daemonsets':
      return [name, namespace,
        { title: 'Desired', value: (d) => (d.status && d.status.desiredNumberScheduled) || 0, class: 'num' },
        { title: 'Current', value: (d) => (d.status && d.status.currentNumberScheduled) || 0, class: 'num' },
        { title: 'Ready', value: (d) => (d.status && d.status.numberReady) || 0, class: 'num' },
        { title: 'Up-to-date', value: (d) => (d.status && d.status.updatedNumberScheduled) || 0, class: 'num' },
        { title: 'Available', value: (d) => (d.status && d.status.numberAvailable) || 0, class: 'num' },
        { title: 'Node selector', value: (d) => selectorText(d.spec.template.spec.nodeSelector) || '<none>', class: 'mono wide-only' },
        ageCol];
    case 'jobs':
      return [name, namespace,
        { title: 'Status', value: (j) => badge(jobStatus(j)) },
        { title: 'Completions', value: (j) => `${(j.status && j.status.succeeded) || 0}/${j.spec.completions ?? 1}`, class: 'num' },
        { title: 'Duration', value: (j) => jobDuration(j), class: 'num' },
        ageCol];
    case 'cronjobs':
      return [name, namespace,
        { title: 'Schedule', value: (c) => c.spec.schedule, class: 'mono' },
        { title: 'Suspend', value: (c) => (c.spec.suspend ? 'True' : 'False') },
        { title: 'Active', value: (c) => ((c.status && c.status.active) || []).length, class: 'num' },
        { title: 'Last schedule', value: (c) => (c.status && c.status.lastScheduleTime ? age(c.status.lastScheduleTime) : '<none>'), class: 'num' },
        ageCol];
    case 'services':
      return [name, namespace,
        { title: 'Type', value: (s) => s.spec.type || 'ClusterIP' },
        { title: 'Cluster-IP', value: (s) => s.spec.clusterIP || '<none>', class: 'mono' },
        { title: 'Ports', value: servicePorts, class: 'mono' },
        { title: 'Selector', value: (s) => selectorText(s.spec.selector) || '<none>', class: 'mono wide-only' },
        ageCol];
    case 'ingresses':
      return [name, namespace,
        { title: 'Class', value: (i) => i.spec.ingressClassName || '<none>' },
        { title: 'Hosts', value: (i) => ((i.spec.rules || []).map((r) => r.host).filter(Boolean).join(',') || '*') },
        { title: 'Address', value: (i) => (((i.status && i.status.loadBalancer && i.status.loadBalancer.ingress) || []).map((x) => x.ip || x.hostname).join(',')), class: 'mono' },
        ageCol];
    case 'configmaps':
      return [name, namespace, { title: 'Data', value: (c) => Object.keys(c.data || {}).length + Object.keys(c.binaryData || {}).length, class: 'num' }, ageCol];
    case 'secrets':
      return [name, namespace, { title: 'Type', value: (s) => s.type || 'Opaque', class: 'mono' }, { title: 'Data', value: (s) => Object.keys(s.data || {}).length, class: 'num' }, ageCol];
    case 'nodes':
      return [name,
        { title: 'Status', value: (n) => badge(nodeReady(n)), sort: nodeReady },
        { title: 'CPU', value: (n) => usageCell(m, `node/${meta(n).name}`, 'cpu', parseQuantity(n.status && n.status.capacity && n.status.capacity.cpu)) },
        { title: 'Memory', value: (n) => usageCell(m, `node/${meta(n).name}`, 'mem', parseQuantity(n.status && n.status.capacity && n.status.capacity.memory)) },
        { title: 'Version', value: (n) => (n.status && n.status.nodeInfo && n.status.nodeInfo.kubeletVersion) || '', class: 'mono wide-only' },
        { title: 'Runtime', value: (n) => (n.status && n.status.nodeInfo && n.status.nodeInfo.containerRuntimeVersion) || '', class: 'mono wide-only' },
        ageCol];
    case 'namespaces':
      return [name, { title: 'Status', value: (n) => badge((n.status && n.status.phase) || 'Active') }, ageCol];
    case 'events':
      return [
        { title: 'Last seen', value: (e) => age(eventTime(e)), sort: (e) => -Date.parse(eventTime(e) || 0), class: 'num' },
        namespace,
        { title: 'Type', value: (e) => badge(e.type || 'Normal'), sort: (e) => e.type },
        { title: 'Reason', value: (e) => e.reason || '', sort: (e) => e.reason || '' },
        { title: 'Object', value: eventObject, sort: (e) => (e.involvedObject || {}).name || '' },
        { title: 'Message', value: (e) => e.message || e.note || '', class: 'message' },
        { title: 'Count', value: (e) => e.count || (e.series && e.series.count) || 1, class: 'num wide-only' }];
    default:
      return [name, namespace, ageCol];
  }
}

export function podMemoryLimit(p) {
  let total = 0;
  for (const c of p.spec.containers || []) {
    const l = c.resources && c.resources.limits && c.resources.limits.memory;
    if (!l) return undefined;
    total += parseQuantity(l);
  }
  return total || undefined;
}

export function jobStatus(j) {
  const conds = (j.status && j.status.conditions) || [];
  if (conds.some((c) => c.type === 'Complete' && c.status === 'True')) return 'Complete';
  if (conds.some((c) => c.type === 'Failed' && c.status === 'True')) return 'Failed';
  if (j.spec.suspend) return 'Suspended';
  return 'Running';
}

function jobDuration(j) {
  const st = j.status || {};
  if (!st.startTime) return '';
  const end = st.completionTime ? Date.parse(st.completionTime) : Date.now();
  return age(st.startTime, end);
}

/** Default sort of a list: events newest first, the rest by namespace and name. */
export function defaultSort(plural) {
  if (plural === 'events') return (a, b) => Date.parse(eventTime(b) || 0) - Date.parse(eventTime(a) || 0);
  return (a, b) => (meta(a).namespace || '').localeCompare(meta(b).namespace || '') || meta(a).name.localeCompare(meta(b).name);
}

/** Whether an object matches the search box: name, namespace or a label `key=value`. */
export function matchesSearch(o, q) {
  if (!q) return true;
  const md = meta(o);
  if ((md.name || '').toLowerCase().includes(q) || (md.namespace || '').toLowerCase().includes(q)) return true;
  for (const [k, v] of Object.entries(md.labels || {})) if (`${k}=${v}`.toLowerCase().includes(q)) return true;
  if (o.kind === 'Event' || o.involvedObject) {
    const t = `${o.reason || ''} ${o.message || ''} ${(o.involvedObject || {}).name || ''}`.toLowerCase();
    if (t.includes(q)) return true;
  }
  return false;
}
