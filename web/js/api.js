// The Kubernetes API as the console calls it: same origin, `Authorization: Bearer <token>`, JSON.

import { readLines } from './lines.js';
import { ListWatch } from './watch.js';
import { resourcePath, pathFor, splitApiVersion, groupVersionPath } from './resources.js';

/** A failed API call, carrying the server's `Status`. */
export class ApiError extends Error {
  constructor(status, body, method, path) {
    const message = body && body.message ? body.message : `${method} ${path}: HTTP ${status}`;
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
    this.reason = body && body.reason;
  }
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export class Api {
  /** @param {string} token @param {(e: ApiError) => void} onUnauthorized */
  constructor(token, onUnauthorized = () => {}) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
    this.discovery = new Map();
  }

  async raw(method, path, { params, body, contentType = 'application/json', signal, accept = 'application/json' } = {}) {
    const headers = { Authorization: `Bearer ${this.token}`, Accept: accept };
    if (body !== undefined) headers['Content-Type'] = contentType;
    const res = await fetch(path + query(params), {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      signal,
      cache: 'no-store',
      credentials: 'omit',
    });
    if (!res.ok) {
      let status = null;
      try {
        status = await res.json();
      } catch {
        status = null;
      }
      const err = new ApiError(res.status, status, method, path);
      if (res.status === 401) this.onUnauthorized(err);
      throw err;
    }
    return res;
  }

  async request(method, path, opts = {}) {
    const res = await this.raw(method, path, opts);
    if (res.status === 204) return null;
    const text = await res.text();
    return text ? JSON.parse(text) : null;
  }

  get(path, params, signal) {
    return this.request('GET', path, { params, signal });
  }

  create(path, body, params) {
    return this.request('POST', path, { body, params });
  }

  replace(path, body, params) {
    return this.request('PUT', path, { body, params });
  }

  patch(path, body, type = 'merge', params) {
    const contentType = { merge: 'application/merge-patch+json', json: 'application/json-patch+json', strategic: 'application/strategic-merge-patch+json' }[type];
    return this.request('PATCH', path, { body, contentType, params });
  }

  remove(path, body) {
    return this.request('DELETE', path, { body });
  }

  /** The events of a watch, one parsed JSON line each. */
  async *watchEvents(path, params, resourceVersion, signal) {
    const res = await this.raw('GET', path, {
      params: { ...params, watch: 1, resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 240 + Math.floor(Math.random() * 60) },
      signal,
    });
    for await (const line of readLines(res.body)) {
      if (line.trim()) yield JSON.parse(line);
    }
  }

  /** A started list+watch of a resource; `onChange(lw)` runs after every change. */
  listWatch(plural, { namespace, labelSelector, fieldSelector } = {}, onChange, onState) {
    const path = resourcePath(plural, { namespace });
    const params = { labelSelector, fieldSelector };
    return new ListWatch({
      list: async (signal) => {
        const l = await this.get(path, params, signal);
        return { items: l.items || [], resourceVersion: l.metadata && l.metadata.resourceVersion };
      },
      watch: (rv, signal) => this.watchEvents(path, params, rv, signal),
      onChange,
      onState,
    }).start();
  }

  /** The resource (plural, namespaced) of an apiVersion + kind, from the server's discovery. */
  async resourceFor(apiVersion, kind) {
    const { group, version } = splitApiVersion(apiVersion);
    const key = `${group}/${version}`;
    if (!this.discovery.has(key)) {
      this.discovery.set(key, this.get(groupVersionPath(group, version)).catch((e) => {
        this.discovery.delete(key);
        throw e;
      }));
    }
    const list = await this.discovery.get(key);
    const r = (list.resources || []).find((x) => x.kind === kind && !x.name.includes('/'));
    if (!r) return null;
    return { group, version, plural: r.name, namespaced: r.namespaced };
  }

  /** The path of an object given its apiVersion/kind (for owner references and apply). */
  async objectPath(apiVersion, kind, namespace, name) {
    const r = await this.resourceFor(apiVersion, kind);
    if (!r) return null;
    return pathFor(r.group, r.version, r.plural, r.namespaced ? namespace : undefined, name);
  }
}
