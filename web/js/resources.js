// The kinds the console lists, and how their API paths are spelled.

/** Resource plural → its group, version, kind and scope, plus which console section shows it. */
export const RESOURCES = {
  pods: { group: '', version: 'v1', kind: 'Pod', namespaced: true, section: 'Workloads', title: 'Pods' },
  deployments: { group: 'apps', version: 'v1', kind: 'Deployment', namespaced: true, section: 'Workloads', title: 'Deployments', scalable: true, restartable: true },
  replicasets: { group: 'apps', version: 'v1', kind: 'ReplicaSet', namespaced: true, section: 'Workloads', title: 'ReplicaSets', scalable: true },
  daemonsets: { group: 'apps', version: 'v1', kind: 'DaemonSet', namespaced: true, section: 'Workloads', title: 'DaemonSets', restartable: true },
  statefulsets: { group: 'apps', version: 'v1', kind: 'StatefulSet', namespaced: true, section: 'Workloads', title: 'StatefulSets', scalable: true, restartable: true },
  jobs: { group: 'batch', version: 'v1', kind: 'Job', namespaced: true, section: 'Workloads', title: 'Jobs' },
  cronjobs: { group: 'batch', version: 'v1', kind: 'CronJob', namespaced: true, section: 'Workloads', title: 'CronJobs' },
  services: { group: '', version: 'v1', kind: 'Service', namespaced: true, section: 'Network', title: 'Services' },
  ingresses: { group: 'networking.k8s.io', version: 'v1', kind: 'Ingress', namespaced: true, section: 'Network', title: 'Ingresses' },
  configmaps: { group: '', version: 'v1', kind: 'ConfigMap', namespaced: true, section: 'Config', title: 'ConfigMaps' },
  secrets: { group: '', version: 'v1', kind: 'Secret', namespaced: true, section: 'Config', title: 'Secrets' },
  nodes: { group: '', version: 'v1', kind: 'Node', namespaced: false, section: 'Cluster', title: 'Nodes' },
  namespaces: { group: '', version: 'v1', kind: 'Namespace', namespaced: false, section: 'Cluster', title: 'Namespaces' },
  events: { group: '', version: 'v1', kind: 'Event', namespaced: true, section: 'Cluster', title: 'Events' },
};

/** The API base of a group/version: `/api/v1` or `/apis/apps/v1`. */
export function groupVersionPath(group, version) {
  return group ? `/apis/${group}/${version}` : `/api/${version}`;
}

/** The path of a collection, an object or an object's subresource. */
export function resourcePath(plural, { namespace, name, subresource } = {}) {
  const r = RESOURCES[plural];
  if (!r) throw new Error(`unknown resource ${plural}`);
  return pathFor(r.group, r.version, plural, r.namespaced ? namespace : undefined, name, subresource);
}

export function pathFor(group, version, plural, namespace, name, subresource) {
  let p = groupVersionPath(group, version);
  if (namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${plural}`;
  if (name) p += `/${encodeURIComponent(name)}`;
  if (subresource) p += `/${subresource}`;
  return p;
}

/** `apps/v1` → { group: 'apps', version: 'v1' }; `v1` → core. */
export function splitApiVersion(apiVersion) {
  const s = String(apiVersion || '');
  const i = s.indexOf('/');
  return i < 0 ? { group: '', version: s } : { group: s.slice(0, i), version: s.slice(i + 1) };
}

/** The console's plural for a kind it lists (`Deployment` → `deployments`), or null. */
export function pluralOfKind(kind) {
  for (const [plural, r] of Object.entries(RESOURCES)) if (r.kind === kind) return plural;
  return null;
}

/** The console route of an object: `/ui/pods/default/web-1`, `/ui/nodes/n1`. */
export function objectRoute(plural, namespace, name) {
  const r = RESOURCES[plural];
  if (!r) return null;
  return r.namespaced ? `/ui/${plural}/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}` : `/ui/${plural}/${encodeURIComponent(name)}`;
}

/** The kind.group kubectl prints (`deployment.apps`, `pod`). */
export function kindGroup(kind, group) {
  return group ? `${kind.toLowerCase()}.${group}` : kind.toLowerCase();
}

/** Which kinds an object of `plural` owns, by the ownerReferences of their objects. */
export const OWNED = {
  deployments: ['replicasets'],
  replicasets: ['pods'],
  statefulsets: ['pods'],
  daemonsets: ['pods'],
  jobs: ['pods'],
  cronjobs: ['jobs'],
};
