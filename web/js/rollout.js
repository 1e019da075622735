// Deployment rollouts as kubectl computes them: revisions of the owned ReplicaSets, the template
// `kubectl rollout undo` goes back to, and the progress numbers the console draws as a bar.

const REVISION = 'deployment.kubernetes.io/revision';

/** The revision number of a ReplicaSet (0 when it has none). */
export function revisionOf(rs) {
  const v = rs && rs.metadata && rs.metadata.annotations && rs.metadata.annotations[REVISION];
  const n = Number.parseInt(v, 10);
  return Number.isFinite(n) ? n : 0;
}

/** The ReplicaSets a Deployment owns, newest revision first. */
export function ownedReplicaSets(deployment, replicasets) {
  const uid = deployment.metadata.uid;
  return replicasets
    .filter((rs) => (rs.metadata.ownerReferences || []).some((o) => o.uid === uid && o.controller))
    .sort((a, b) => revisionOf(b) - revisionOf(a));
}

/**
 * The JSON patch `kubectl rollout undo` sends: the Deployment's pod template replaced by that of
 * the ReplicaSet with the previous revision (its `pod-template-hash` label dropped). Throws a
 * kubectl-worded error when there is no previous revision.
 */
export function undoPatch(deployment, replicasets) {
  const owned = ownedReplicaSets(deployment, replicasets);
  const current = revisionOf(owned[0]);
  const previous = owned.find((rs) => revisionOf(rs) > 0 && revisionOf(rs) < current);
  if (!previous) throw new Error(`no rollout history found for deployment "${deployment.metadata.name}"`);
  const template = JSON.parse(JSON.stringify(previous.spec.template));
  if (template.metadata && template.metadata.labels) delete template.metadata.labels['pod-template-hash'];
  return {
    revision: revisionOf(previous),
    patch: [{ op: 'replace', path: '/spec/template', value: template }],
  };
}

/** Desired, updated, ready and available replicas of a workload, for the progress bar. */
export function progress(obj) {
  const spec = obj.spec || {};
  const st = obj.status || {};
  if (obj.kind === 'DaemonSet') {
    return {
      desired: st.desiredNumberScheduled || 0,
      updated: st.updatedNumberScheduled || 0,
      ready: st.numberReady || 0,
      available: st.numberAvailable || 0,
    };
  }
  return {
    desired: spec.replicas ?? 1,
    updated: st.updatedReplicas ?? (obj.kind === 'ReplicaSet' ? st.replicas || 0 : 0),
    ready: st.readyReplicas || 0,
    available: st.availableReplicas ?? (obj.kind === 'ReplicaSet' ? st.availableReplicas || 0 : 0),
  };
}

/** The `kubectl.kubernetes.io/restartedAt` merge patch of `kubectl rollout restart`. */
export function restartPatch(now = new Date()) {
  const at = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': at } } } } };
}
