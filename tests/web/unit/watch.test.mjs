import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ListWatch, State, objectKey } from '../../../web/js/watch.js';
import { lineSplitter } from '../../../web/js/lines.js';

const obj = (name, rv) => ({ metadata: { name, namespace: 'default', resourceVersion: String(rv) } });

// A scripted server: each list() returns the next list; each watch() runs the next script,
// which yields events or throws. Sleeps are recorded, not waited.
function scripted({ lists, watches }) {
  const calls = { lists: 0, watches: [], sleeps: [] };
  let lw;
  const done = new Promise((resolve) => {
    lw = new ListWatch({
      list: async () => {
        const l = lists[calls.lists++];
        if (l instanceof Error) throw l;
        return l;
      },
      watch: (rv) => {
        calls.watches.push(rv);
        const script = watches.shift();
        if (!script) {
          lw.stop();
          resolve();
          return (async function* () {})();
        }
        return script();
      },
      sleep: async (ms) => { calls.sleeps.push(ms); },
      initialDelay: 100,
      maxDelay: 400,
    });
  });
  lw.start();
  return { lw, calls, done };
}

const gone = () => Object.assign(new Error('too old resource version'), { status: 410 });

test('lists, then applies watch events to the cache', async () => {
  const { lw, calls, done } = scripted({
    lists: [{ items: [obj('a', 1)], resourceVersion: '5' }],
    watches: [async function* () {
      yield { type: 'ADDED', object: obj('b', 6) };
      yield { type: 'MODIFIED', object: { ...obj('a', 7), spec: { x: 1 } } };
      yield { type: 'DELETED', object: obj('b', 8) };
      yield { type: 'BOOKMARK', object: { metadata: { resourceVersion: '9' } } };
    }],
  });
  await done;
  assert.deepEqual(lw.items.map((o) => o.metadata.name), ['a']);
  assert.deepEqual(lw.items[0].spec, { x: 1 });
  assert.equal(lw.resourceVersion, '9');
  // The stream ended cleanly: the watch resumed from the last resourceVersion, with no back-off.
  assert.deepEqual(calls.watches, ['5', '9']);
  assert.deepEqual(calls.sleeps, []);
  assert.equal(calls.lists, 1);
});

test('a 410 ERROR event re-lists instead of resuming', async () => {
  const { lw, calls, done } = scripted({
    lists: [{ items: [obj('a', 1)], resourceVersion: '5' }, { items: [obj('c', 20)], resourceVersion: '20' }],
    watches: [async function* () {
      yield { type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old' } };
    }],
  });
  await done;
  assert.equal(calls.lists, 2);
  assert.deepEqual(lw.items.map((o) => o.metadata.name), ['c']);
  assert.deepEqual(calls.watches, ['5', '20']);
  assert.deepEqual(calls.sleeps, []);
});

test('a 410 HTTP status on the watch request re-lists too', async () => {
  const { calls, done } = scripted({
    lists: [{ items: [], resourceVersion: '5' }, { items: [], resourceVersion: '30' }],
    watches: [async function* () { throw gone(); }],
  });
  await done;
  assert.equal(calls.lists, 2);
  assert.deepEqual(calls.watches, ['5', '30']);
});

test('errors back off, doubling up to the cap, and reset after events', async () => {
  const fail = async function* () { throw Object.assign(new Error('connection reset'), { status: 0 }); };
  const states = [];
  const { lw, calls, done } = scripted({
    lists: [{ items: [], resourceVersion: '1' }],
    watches: [fail, fail, fail, fail, async function* () { yield { type: 'ADDED', object: obj('a', 2) }; throw new Error('reset'); }, fail],
  });
  lw.onState = (s) => states.push(s);
  await done;
  assert.deepEqual(calls.sleeps, [100, 200, 400, 400, 100, 200]);
  assert.ok(states.includes(State.Backoff));
  assert.equal(calls.lists, 1, 'a failed watch resumes from its resourceVersion; it does not re-list');
  assert.equal(lw.resourceVersion, '2');
});

test('a failing list is retried with back-off before any watch', async () => {
  const { calls, lw, done } = scripted({
    lists: [Object.assign(new Error('unavailable'), { status: 503 }), { items: [obj('a', 3)], resourceVersion: '3' }],
    watches: [],
  });
  await done;
  assert.equal(calls.lists, 2);
  assert.deepEqual(calls.sleeps, [100]);
  assert.equal(lw.synced, true);
  assert.deepEqual(calls.watches, ['3']);
});

test('stop aborts and never calls back again', async () => {
  let changes = 0;
  const lw = new ListWatch({
    list: async () => ({ items: [obj('a', 1)], resourceVersion: '1' }),
    watch: (rv, signal) => (async function* () {
      await new Promise((resolve) => signal.addEventListener('abort', resolve));
      throw Object.assign(new Error('aborted'), { name: 'AbortError' });
    })(),
    onChange: () => changes++,
  }).start();
  await new Promise((r) => setTimeout(r, 10));
  lw.stop();
  await lw.done;
  assert.equal(lw.state, State.Stopped);
  assert.equal(changes, 1);
});

test('objects are keyed by namespace and name', () => {
  assert.equal(objectKey({ metadata: { name: 'n1' } }), 'n1');
  assert.equal(objectKey(obj('a', 1)), 'default/a');
});

test('lines split across chunks, with CRLF and a final partial line', () => {
  const s = lineSplitter();
  assert.deepEqual(s.push('{"a":'), []);
  assert.deepEqual(s.push('1}\n{"b"'), ['{"a":1}']);
  assert.deepEqual(s.push(':2}\r\nlast'), ['{"b":2}']);
  assert.deepEqual(s.flush(), ['last']);
  assert.deepEqual(s.flush(), []);
});
