// Apply YAML: an editor for one or more manifests. Each document is created, or merged into
// the object that exists; the server's errors are shown next to the document and line of the
// field they name.

import { h, mount, toast } from '../dom.js';
import { parseManifests, locateField, fieldErrors } from '../manifest.js';
import { applyObject } from '../actions.js';
import { pluralOfKind, objectRoute, splitApiVersion } from '../resources.js';

const DRAFT_KEY = 'wasmkube.applyDraft';

const EXAMPLE = `# One or more manifests, separated by ---
apiVersion: v1
kind: ConfigMap
metadata:
  name: example
data:
  greeting: hello
`;

export function render({ app, el }) {
  const ns = app.namespace || 'default';
  const text = h('textarea', { id: 'apply-editor', class: 'editor-text', spellcheck: 'false', 'aria-label': 'Manifests (YAML)', 'aria-describedby': 'apply-help', wrap: 'off' });
  text.value = sessionStorage.getItem(DRAFT_KEY) ?? EXAMPLE;
  const gutter = h('div', { class: 'gutter', 'aria-hidden': 'true' });
  const results = h('div', { class: 'apply-results', id: 'apply-results', 'aria-live': 'polite' });
  const applyBtn = h('button', { type: 'button', class: 'btn btn-primary', id: 'apply-submit' }, 'Apply');
  const fileInput = h('input', { type: 'file', id: 'apply-file', accept: '.yaml,.yml,.json,text/yaml', class: 'sr-only' });
  let marks = new Map(); // line → message

  mount(el,
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Apply YAML'), h('p', { class: 'subtitle', id: 'apply-help' }, `Objects without a namespace go to ${ns}. New objects are created; existing ones are updated (merge patch). Ctrl+Enter applies.`))),
    h('div', { class: 'toolbar' },
      applyBtn,
      h('label', { class: 'btn', for: 'apply-file' }, 'Open file…'), fileInput,
      h('button', { type: 'button', class: 'btn', onClick: () => { text.value = ''; sync(); text.focus(); } }, 'Clear')),
    h('div', { class: 'apply-grid' },
      h('div', { class: 'editor' }, gutter, text),
      results));

  function sync() {
    sessionStorage.setItem(DRAFT_KEY, text.value);
    const n = text.value.split('\n').length;
    const frag = document.createDocumentFragment();
    for (let i = 1; i <= n; i++) {
      const msg = marks.get(i);
      frag.append(h('div', { class: msg ? 'gutter-line gutter-error' : 'gutter-line', title: msg || undefined, dataset: { line: i } }, String(i)));
    }
    mount(gutter, frag);
    gutter.scrollTop = text.scrollTop;
  }
  text.addEventListener('input', () => {
    marks = new Map();
    sync();
  });
  text.addEventListener('scroll', () => { gutter.scrollTop = text.scrollTop; });
  text.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      run();
    } else if (ev.key === 'Tab' && !ev.shiftKey && !ev.ctrlKey) {
      ev.preventDefault();
      text.setRangeText('  ', text.selectionStart, text.selectionEnd, 'end');
    }
  });
  fileInput.addEventListener('change', async () => {
    const f = fileInput.files && fileInput.files[0];
    if (!f) return;
    text.value = await f.text();
    marks = new Map();
    sync();
  });
  applyBtn.addEventListener('click', run);

  function goToLine(line) {
    const lines = text.value.split('\n');
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    text.focus();
    text.setSelectionRange(start, start + (lines[line - 1] || '').length);
    const lh = parseFloat(getComputedStyle(text).lineHeight) || 18;
    text.scrollTop = Math.max(0, (line - 4) * lh);
  }

  function errorItem(docLabel, line, field, message) {
    return h('li', { class: 'result result-error', dataset: { line, field: field || '' } },
      h('span', { class: 'result-icon', 'aria-hidden': 'true' }, '✕'),
      h('div', {},
        h('div', { class: 'result-title' }, docLabel, ' · ', h('button', { type: 'button', class: 'linklike', onClick: () => goToLine(line) }, `line ${line}`)),
        field ? h('code', { class: 'result-field' }, field) : null,
        h('div', { class: 'result-message' }, message)));
  }

  async function run() {
    const source = text.value;
    marks = new Map();
    const parsed = parseManifests(source);
    if (parsed.error) {
      marks.set(parsed.error.line, parsed.error.message);
      sync();
      mount(results, h('ul', { class: 'results' }, errorItem('YAML', parsed.error.line, '', parsed.error.message)));
      return;
    }
    const docs = parsed.documents.filter((d) => d.object !== null);
    if (!docs.length) {
      mount(results, h('p', { class: 'muted' }, 'Nothing to apply: the editor holds no objects.'));
      return;
    }
    applyBtn.disabled = true;
    const list = h('ul', { class: 'results' });
    mount(results, h('h2', { class: 'results-title' }, 'Result'), list);
    let failed = 0;
    // In order, as kubectl does: a Namespace before what goes in it.
    for (const doc of docs) {
      const o = doc.object;
      const label = `Document ${doc.index + 1}${o && o.kind ? ` (${o.kind}${o.metadata && o.metadata.name ? ` ${o.metadata.name}` : ''})` : ''}`;
      const pending = h('li', { class: 'result result-pending' }, h('span', { class: 'result-icon' }, '…'), h('div', {}, label));
      list.append(pending);
      try {
        const res = await applyObject(app.api, o, ns);
        const plural = pluralOfKind(o.kind);
        const { group } = splitApiVersion(o.apiVersion);
        const name = res.ref.split('/').pop();
        const known = plural && (group === '' || ['apps', 'batch', 'networking.k8s.io'].includes(group));
        const namespace = (o.metadata && o.metadata.namespace) || ns;
        pending.replaceWith(h('li', { class: 'result result-ok', dataset: { ref: res.ref, verb: res.verb } },
          h('span', { class: 'result-icon', 'aria-hidden': 'true' }, '✓'),
          h('div', {}, known ? h('a', { href: objectRoute(plural, namespace, name) }, res.ref) : res.ref, ` ${res.verb}`)));
      } catch (e) {
        failed++;
        const errs = e.body ? fieldErrors(e.body) : [{ field: e.field || '', message: e.message }];
        const items = errs.map((fe) => {
          const line = fe.field ? locateField(source, doc, fe.field) : doc.line;
          marks.set(line, `${fe.field ? `${fe.field}: ` : ''}${fe.message}`);
          return errorItem(label, line, fe.field, fe.message);
        });
        const summary = e.body && e.body.message && errs.length > 1 ? h('li', { class: 'result result-summary' }, e.body.message) : null;
        pending.replaceWith(...items, ...(summary ? [summary] : []));
      }
    }
    sync();
    applyBtn.disabled = false;
    if (failed) toast(`${failed} of ${docs.length} document${docs.length === 1 ? '' : 's'} failed`, 'bad');
    else toast(`Applied ${docs.length} object${docs.length === 1 ? '' : 's'}`);
  }
  sync();
  text.focus();
  return () => {};
}
