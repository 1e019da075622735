import { test } from 'node:test';
import assert from 'node:assert/strict';
import { undoPatch, ownedReplicaSets, revisionOf, progress, restartPatch } from '../../../web/js/rollout.js';
import { Ring } from '../../../web/js/ring.js';

const deployment = { kind: 'Deployment', metadata: { name: 'web', uid: 'd1' }, spec: { replicas: 3 }, status: { updatedReplicas: 2, readyReplicas: 1, availableReplicas: 1 } };
const rs = (name, revision, image, owner = 'd1') => ({
  metadata: { name, uid: name, annotations: { 'deployment.kubernetes.io/revision': String(revision) }, ownerReferences: [{ uid: owner, controller: true, kind: 'Deployment', name: 'web' }] },
  spec: { template: { metadata: { labels: { app: 'web', 'pod-template-hash': name } }, spec: { containers: [{ name: 'c', image }] } } },
});

test('undo goes back to the previous revision, without its pod-template-hash', () => {
  const sets = [rs('web-1', 1, 'v1'), rs('web-3', 3, 'v3'), rs('web-2', 2, 'v2'), rs('other', 9, 'x', 'd2')];
  assert.deepEqual(ownedReplicaSets(deployment, sets).map(revisionOf), [3, 2, 1]);
  const { revision, patch } = undoPatch(deployment, sets);
  assert.equal(revision, 2);
  assert.equal(patch[0].op, 'replace');
  assert.equal(patch[0].path, '/spec/template');
  assert.equal(patch[0].value.spec.containers[0].image, 'v2');
  assert.deepEqual(patch[0].value.metadata.labels, { app: 'web' });
  assert.equal(sets[2].spec.template.metadata.labels['pod-template-hash'], 'web-2', 'the ReplicaSet itself is untouched');
});

test('undo without history is an error naming the deployment', () => {
  assert.throws(() => undoPatch(deployment, [rs('web-1', 1, 'v1')]), /no rollout history found for deployment "web"/);
});

test('progress numbers for the rollout bar', () => {
  assert.deepEqual(progress(deployment), { desired: 3, updated: 2, ready: 1, available: 1 });
  assert.deepEqual(progress({ kind: 'DaemonSet', spec: {}, status: { desiredNumberScheduled: 2, updatedNumberScheduled: 2, numberReady: 1, numberAvailable: 1 } }), { desired: 2, updated: 2, ready: 1, available: 1 });
  const p = restartPatch(new Date('2026-03-04T05:06:07.890Z'));
  assert.equal(p.spec.template.metadata.annotations['kubectl.kubernetes.io/restartedAt'], '2026-03-04T05:06:07Z');
});

test('the ring buffer keeps the newest samples in order', () => {
  const r = new Ring(3);
  assert.equal(r.last(), undefined);
  for (let i = 1; i <= 5; i++) r.push(i);
  assert.deepEqual(r.values(), [3, 4, 5]);
  assert.equal(r.last(), 5);
  assert.equal(r.length, 3);
});
