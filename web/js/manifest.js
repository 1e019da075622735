// Manifests in YAML: parsing multi-document text with the source position of every field (so a
// server error naming `spec.template.spec.containers[0].image` is shown on that line), dumping
// objects back to YAML, and reading field errors out of a Kubernetes `Status`.
//
// Parsing and dumping are js-yaml's (vendored, MIT, web/vendor/js-yaml.mjs); this module adds
// the field → position index from its event stream.

import { parseEvents, constructFromEvents, getScalarValue, dump, YAMLException } from '../vendor/js-yaml.mjs';

const EV = { DOCUMENT: 1, SEQUENCE: 2, MAPPING: 3, SCALAR: 4, ALIAS: 5, POP: 6 };

/** The 1-based line of `offset` in `text`. */
export function lineOf(text, offset) {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/**
 * Indexes the events of one parse: for each document, field path → source offset of the
 * field's key (or of the list item), plus the document's first offset.
 */
function indexDocuments(text, events) {
  const docs = [];
  let i = 0;
  // Walks one node starting at events[i]; records `path` at `at` (the key or item offset).
  function node(path, paths) {
    const ev = events[i];
    if (ev.type === EV.SCALAR || ev.type === EV.ALIAS) {
      i++;
      return ev.type === EV.SCALAR ? ev.valueStart : -1;
    }
    const start = ev.start;
    i++;
    if (ev.type === EV.MAPPING) {
      while (events[i].type !== EV.POP) {
        const keyEv = events[i];
        let key;
        let at;
        if (keyEv.type === EV.SCALAR) {
          key = getScalarValue(text, keyEv);
          at = keyEv.valueStart;
          i++;
        } else {
          key = '?';
          at = node(`${path}.?`, new Map());
        }
        const child = path ? `${path}.${key}` : key;
        paths.set(child, at);
        node(child, paths);
      }
      i++;
    } else if (ev.type === EV.SEQUENCE) {
      let n = 0;
      while (events[i].type !== EV.POP) {
        const child = `${path}[${n}]`;
        const first = events[i];
        const at = first.type === EV.SCALAR ? first.valueStart : first.start;
        paths.set(child, at);
        node(child, paths);
        n++;
      }
      i++;
    }
    return start;
  }
  while (i < events.length) {
    const ev = events[i];
    if (ev.type !== EV.DOCUMENT) {
      i++;
      continue;
    }
    i++;
    const paths = new Map();
    let start = -1;
    if (events[i] && events[i].type !== EV.POP) {
      const first = events[i];
      start = first.type === EV.SCALAR ? first.valueStart : first.start;
      node('', paths);
    }
    if (events[i] && events[i].type === EV.POP) i++;
    docs.push({ paths, start });
  }
  return docs;
}

/**
 * Parses multi-document YAML. Returns `{ documents, error }`: each document has `index` (0-based,
 * counting empty documents too), `object` (null for an empty one), `line` (its first line) and
 * `paths` (field path → offset). A syntax error is `{ message, line }`.
 */
export function parseManifests(text) {
  let events;
  try {
    events = parseEvents(text, {});
    const objects = constructFromEvents(events, { source: text });
    const index = indexDocuments(text, events);
    const documents = index.map((d, n) => ({
      index: n,
      object: objects[n] ?? null,
      paths: d.paths,
      line: d.start >= 0 ? lineOf(text, d.start) : 1,
    }));
    return { documents, error: null };
  } catch (e) {
    if (e instanceof YAMLException || e.name === 'YAMLException') {
      const line = e.mark && Number.isInteger(e.mark.line) ? e.mark.line + 1 : 1;
      return { documents: [], error: { message: e.reason || e.message, line } };
    }
    throw e;
  }
}

/** `spec.containers[0].image` and `metadata.labels[app]` → the index's spelling. */
export function normalizeFieldPath(field) {
  return String(field || '')
    .replace(/\[([^\]]*)\]/g, (m, inner) => (/^\d+$/.test(inner) ? `[${inner}]` : `.${inner}`))
    .replace(/^\./, '');
}

/**
 * The line a field path names in a parsed document: its own, or that of its nearest ancestor
 * present in the text (a missing `image` points at its container), or the document's first line.
 */
export function locateField(text, doc, field) {
  let path = normalizeFieldPath(field);
  while (path) {
    if (doc.paths.has(path)) return lineOf(text, doc.paths.get(path));
    const cut = Math.max(path.lastIndexOf('.'), path.lastIndexOf('['));
    path = cut > 0 ? path.slice(0, cut) : '';
  }
  return doc.line;
}

/**
 * The field errors of a Kubernetes `Status`: `details.causes` of a 422, or the fields a
 * strict-decoding 400 names (`unknown field "spec.foo"`). Each is `{ field, message }`;
 * `field` is '' when the status names none.
 */
export function fieldErrors(status) {
  if (!status || typeof status !== 'object') return [{ field: '', message: String(status || 'unknown error') }];
  const causes = (status.details && status.details.causes) || [];
  const named = causes.filter((c) => c.field || c.message).map((c) => ({ field: c.field || '', message: c.message || c.reason || '' }));
  if (named.length) return named;
  const msg = status.message || status.reason || 'unknown error';
  const unknown = [...msg.matchAll(/unknown field \\?"([^"\\]+)\\?"/g)].map((m) => m[1]);
  if (unknown.length) return unknown.map((f) => ({ field: f, message: `unknown field "${f}"` }));
  return [{ field: '', message: msg }];
}

/** An object as YAML, the way `kubectl get -o yaml` lays it out (no line wrapping). */
export function toYaml(obj) {
  return dump(obj, { lineWidth: -1, noRefs: true });
}

/** Strips what the server owns before an object is edited and sent back. */
export function editable(obj) {
  const copy = JSON.parse(JSON.stringify(obj));
  if (copy.metadata) delete copy.metadata.managedFields;
  return copy;
}
