import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseManifests, locateField, fieldErrors, normalizeFieldPath, toYaml, lineOf } from '../../../web/js/manifest.js';

const helloHttp = readFileSync(new URL('../../../manifests/hello-http.yaml', import.meta.url), 'utf8');

test('the example manifest parses into its two objects', () => {
  const { documents, error } = parseManifests(helloHttp);
  assert.equal(error, null);
  assert.deepEqual(documents.map((d) => d.object.kind), ['Deployment', 'Service']);
  assert.equal(documents[0].object.spec.template.spec.containers[0].ports[0].containerPort, 8080);
  assert.equal(documents[1].object.spec.ports[0].targetPort, 'http');
  const lines = helloHttp.split('\n');
  assert.match(lines[documents[1].line - 1], /^apiVersion: v1/);
});

test('field paths point at their line, or their nearest ancestor', () => {
  const { documents } = parseManifests(helloHttp);
  const lines = helloHttp.split('\n');
  const at = (doc, field) => lines[locateField(helloHttp, documents[doc], field) - 1];
  assert.match(at(0, 'spec.template.spec.containers[0].image'), /image: wasmkube.local/);
  assert.match(at(0, 'spec.template.spec.containers[0].ports[0].containerPort'), /containerPort: 8080/);
  assert.match(at(0, 'spec.template.spec.containers[0].readinessProbe.httpGet.port'), /port: http/);
  // Not in the text: the container it belongs to.
  assert.match(at(0, 'spec.template.spec.containers[0].command'), /- name: hello-http/);
  assert.match(at(0, 'metadata.labels[app]'), /app: hello-http/);
  assert.match(at(1, 'spec.ports[0].port'), /port: 80/);
  // Nothing in common: the document's first line.
  assert.match(at(1, 'status.loadBalancer'), /^apiVersion: v1/);
});

test('YAML features of manifests: comments, quotes, block scalars, flow, documents', () => {
  const text = [
    '# leading comment',
    '---',
    'apiVersion: v1',
    'kind: ConfigMap',
    'metadata: {name: "cm", labels: {a: \'b\'}}',
    'data:',
    '  script: |',
    '    echo one',
    '    echo two',
    '  folded: >',
    '    a',
    '    b',
    '  number: "8080"  # stays a string',
    '---',
    '---',
    'kind: List',
    'items:',
    '  - 1',
    '  - two',
    '  - null',
    '',
  ].join('\n');
  const { documents, error } = parseManifests(text);
  assert.equal(error, null);
  const objs = documents.filter((d) => d.object);
  assert.equal(objs.length, 2);
  const cm = objs[0].object;
  assert.deepEqual(cm.metadata, { name: 'cm', labels: { a: 'b' } });
  assert.equal(cm.data.script, 'echo one\necho two\n');
  assert.equal(cm.data.folded, 'a b\n');
  assert.equal(cm.data.number, '8080');
  assert.deepEqual(objs[1].object.items, [1, 'two', null]);
  assert.equal(locateField(text, objs[0], 'data.number'), 13);
  assert.equal(locateField(text, objs[0], 'metadata.labels.a'), 5);
  assert.equal(locateField(text, objs[1], 'items[1]'), 19);
  assert.equal(objs[0].index, 0);
  assert.equal(objs[1].index, 2, 'the empty document between two --- still counts');
});

test('syntax errors name their line', () => {
  const r = parseManifests('apiVersion: v1\nkind: Pod\nmetadata:\n  name: [x\n');
  assert.equal(r.documents.length, 0);
  assert.ok(r.error.message.length > 0);
  assert.ok(r.error.line >= 4, `line ${r.error.line}`);
  const dup = parseManifests('a: 1\na: 2\n');
  assert.equal(dup.error.line, 2);
});

test('a Status gives its field errors', () => {
  const invalid = {
    kind: 'Status', code: 422, reason: 'Invalid',
    message: 'Deployment.apps "x" is invalid: spec.template.spec.containers[0].image: Required value',
    details: { causes: [{ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.template.spec.containers[0].image' }] },
  };
  assert.deepEqual(fieldErrors(invalid), [{ field: 'spec.template.spec.containers[0].image', message: 'Required value' }]);
  const strict = { kind: 'Status', code: 400, reason: 'BadRequest', message: 'strict decoding error: unknown field "spec.replica", unknown field "spec.foo.bar"' };
  assert.deepEqual(fieldErrors(strict).map((e) => e.field), ['spec.replica', 'spec.foo.bar']);
  assert.deepEqual(fieldErrors({ kind: 'Status', code: 403, message: 'forbidden' }), [{ field: '', message: 'forbidden' }]);
  assert.equal(normalizeFieldPath('metadata.annotations[a.b/c]'), 'metadata.annotations.a.b/c');
  assert.equal(normalizeFieldPath('spec.containers[2].env[0].name'), 'spec.containers[2].env[0].name');
});

test('objects dump to YAML that parses back to the same object', () => {
  const obj = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', annotations: { long: 'a'.repeat(200) } }, data: { yes: 'yes', num: '010', multi: 'a\nb\n', empty: '' } };
  const text = toYaml(obj);
  assert.ok(!text.includes('\n  long: >'), 'long strings are not folded');
  assert.deepEqual(parseManifests(text).documents[0].object, obj);
  assert.equal(lineOf('a\nb\nc', 4), 3);
});
