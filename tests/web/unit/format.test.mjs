import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseQuantity, formatCpu, formatBytes, humanDuration, age, podStatus, podReady, podRestarts, percent, statusTone } from '../../../web/js/format.js';

test('quantities parse with decimal and binary suffixes', () => {
  assert.equal(parseQuantity('100m'), 0.1);
  assert.equal(parseQuantity('2'), 2);
  assert.equal(parseQuantity('1.5'), 1.5);
  assert.equal(parseQuantity('64Mi'), 64 * 1024 * 1024);
  assert.equal(parseQuantity('1Gi'), 2 ** 30);
  assert.equal(parseQuantity('1k'), 1000);
  assert.equal(parseQuantity('250000n'), 0.00025);
  assert.equal(parseQuantity('12345Ki'), 12345 * 1024);
  assert.equal(parseQuantity('1e3'), 1000);
  assert.ok(Number.isNaN(parseQuantity('abc')));
  assert.ok(Number.isNaN(parseQuantity('1.2.3')));
  assert.ok(Number.isNaN(parseQuantity('5Xi')));
  assert.ok(Number.isNaN(parseQuantity(undefined)));
});

test('CPU prints like kubectl top', () => {
  assert.equal(formatCpu(0.25), '250m');
  assert.equal(formatCpu(0), '0');
  assert.equal(formatCpu(0.0004), '0.4m');
  assert.equal(formatCpu(2), '2000m');
  assert.equal(formatCpu(12.34), '12.3');
  assert.equal(formatCpu(NaN), '–');
});

test('bytes print with binary units and three significant digits', () => {
  assert.equal(formatBytes(64 * 2 ** 20), '64Mi');
  assert.equal(formatBytes(1.5 * 2 ** 30), '1.5Gi');
  assert.equal(formatBytes(512), '512');
  assert.equal(formatBytes(1536), '1.5Ki');
  assert.equal(formatBytes(123.456 * 2 ** 20), '123Mi');
  assert.equal(formatBytes(0), '0');
  assert.equal(percent(1, 4), '25%');
  assert.equal(percent(1, 0), '–');
});

test('ages follow kubectl HumanDuration', () => {
  const s = 1000;
  assert.equal(humanDuration(45 * s), '45s');
  assert.equal(humanDuration(119 * s), '119s');
  assert.equal(humanDuration(200 * s), '3m20s');
  assert.equal(humanDuration(300 * s), '5m');
  assert.equal(humanDuration(90 * 60 * s), '90m');
  assert.equal(humanDuration(5 * 3600 * s), '5h');
  assert.equal(humanDuration((5 * 3600 + 7 * 60) * s), '5h7m');
  assert.equal(humanDuration(30 * 3600 * s), '30h');
  assert.equal(humanDuration((3 * 24 + 4) * 3600 * s), '3d4h');
  assert.equal(humanDuration(40 * 24 * 3600 * s), '40d');
  assert.equal(humanDuration((3 * 365 + 20) * 24 * 3600 * s), '3y20d');
  assert.equal(humanDuration(-500), '0s');
  assert.equal(humanDuration(-5000), '<invalid>');
  assert.equal(age('2026-01-01T00:00:00Z', Date.parse('2026-01-01T00:01:00Z')), '60s');
  assert.equal(age(undefined), '<unknown>');
});

const pod = (status, extra = {}) => ({ metadata: { name: 'p', ...extra }, spec: { containers: [{ name: 'c' }] }, status });

test('pod status is the word kubectl get pods shows', () => {
  assert.equal(podStatus(pod({ phase: 'Pending' })), 'Pending');
  assert.equal(podStatus(pod({ phase: 'Running', containerStatuses: [{ name: 'c', ready: true, state: { running: {} } }] })), 'Running');
  assert.equal(podStatus(pod({ phase: 'Running', containerStatuses: [{ name: 'c', state: { waiting: { reason: 'CrashLoopBackOff' } } }] })), 'CrashLoopBackOff');
  assert.equal(podStatus(pod({ phase: 'Succeeded', containerStatuses: [{ name: 'c', state: { terminated: { reason: 'Completed', exitCode: 0 } } }] })), 'Completed');
  assert.equal(podStatus(pod({ phase: 'Failed', containerStatuses: [{ name: 'c', state: { terminated: { exitCode: 3 } } }] })), 'ExitCode:3');
  assert.equal(podStatus(pod({ phase: 'Pending', initContainerStatuses: [{ name: 'i', state: { waiting: { reason: 'PodInitializing' } } }] })), 'Init:0/1');
  assert.equal(podStatus(pod({ phase: 'Running' }, { deletionTimestamp: '2026-01-01T00:00:00Z' })), 'Terminating');
  const p = pod({ phase: 'Running', containerStatuses: [{ name: 'c', ready: true, restartCount: 3, state: { running: {} } }] });
  assert.equal(podReady(p), '1/1');
  assert.equal(podRestarts(p), 3);
});

test('status words get tones', () => {
  assert.equal(statusTone('Running'), 'ok');
  assert.equal(statusTone('Pending'), 'warn');
  assert.equal(statusTone('CrashLoopBackOff'), 'bad');
  assert.equal(statusTone('ImagePullBackOff'), 'bad');
  assert.equal(statusTone('Something'), 'neutral');
});
