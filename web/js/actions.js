// What the console changes in the cluster: apply, edit, scale, restart, undo, delete, create.

import { ApiError } from './api.js';
import { resourcePath, kindGroup } from './resources.js';
import { undoPatch, restartPatch } from './rollout.js';

const MANAGER = { fieldManager: 'wasmkube-console', fieldValidation: 'Strict' };

/**
 * Applies one manifest object: created if new, otherwise merged into the existing object (a JSON
 * merge patch, so fields set by others — a scaled replica count, an allocated clusterIP — stay).
 * Returns `{ ref, verb }`, `verb` being `created` or `configured`. Errors are ApiErrors.
 */
export async function applyObject(api, obj, defaultNamespace) {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new Error('a manifest document must be a mapping');
  if (!obj.apiVersion) throw Object.assign(new Error('apiVersion not set'), { field: 'apiVersion' });
  if (!obj.kind) throw Object.assign(new Error('kind not set'), { field: 'kind' });
  const r = await api.resourceFor(obj.apiVersion, obj.kind);
  if (!r) throw Object.assign(new Error(`no matches for kind "${obj.kind}" in version "${obj.apiVersion}"`), { field: 'kind' });
  const name = obj.metadata && obj.metadata.name;
  const namespace = r.namespaced ? (obj.metadata && obj.metadata.namespace) || defaultNamespace : undefined;
  const base = `${r.group ? `/apis/${r.group}` : '/api'}/${r.version}${namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''}/${r.plural}`;
  const ref = `${kindGroup(obj.kind, r.group)}/${name || obj.metadata?.generateName || ''}`;
  try {
    const created = await api.create(base, obj, MANAGER);
    return { ref: `${kindGroup(obj.kind, r.group)}/${created.metadata.name}`, verb: 'created' };
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 409 || !name) throw e;
  }
  const path = `${base}/${encodeURIComponent(name)}`;
  const before = await api.get(path);
  const after = await api.patch(path, obj, 'merge', MANAGER);
  const verb = before.metadata.resourceVersion === after.metadata.resourceVersion ? 'unchanged' : 'configured';
  return { ref, verb };
}

/** Replaces an object with an edited copy (PUT; its resourceVersion guards against races). */
export async function replaceObject(api, plural, obj) {
  const path = resourcePath(plural, { namespace: obj.metadata.namespace, name: obj.metadata.name });
  return api.replace(path, obj, MANAGER);
}

/** Sets a workload's replicas through its scale subresource, as `kubectl scale` does. */
export function scale(api, plural, namespace, name, replicas) {
  return api.patch(resourcePath(plural, { namespace, name, subresource: 'scale' }), { spec: { replicas } }, 'merge');
}

/** `kubectl rollout restart`. */
export function restart(api, plural, namespace, name) {
  return api.patch(resourcePath(plural, { namespace, name }), restartPatch(), 'strategic');
}

/** `kubectl rollout undo` (to the previous revision). Returns the revision rolled back to. */
export async function undo(api, namespace, name) {
  const deployment = await api.get(resourcePath('deployments', { namespace, name }));
  const rsList = await api.get(resourcePath('replicasets', { namespace }));
  const { revision, patch } = undoPatch(deployment, rsList.items || []);
  await api.patch(resourcePath('deployments', { namespace, name }), patch, 'json');
  return revision;
}

/** Deletes an object; dependents go in the background, as kubectl's default. */
export function remove(api, plural, namespace, name) {
  return api.remove(resourcePath(plural, { namespace, name }), { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' });
}

export function createNamespace(api, name) {
  return api.create(resourcePath('namespaces'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name } }, MANAGER);
}
