// The list-then-watch protocol as a small state machine, independent of fetch and the DOM (so
// tests/web/unit/watch.test.mjs drives it with scripted lists and event streams).
//
//   Listing ──list ok──▶ Watching ──stream ends──▶ Watching (resumed from the last resourceVersion)
//      ▲                    │
//      │ 410 Gone           │ error
//      └────────────────────┴──────▶ Backoff ──delay (doubling, capped)──▶ Watching (or Listing)
//
// A 410 (as an HTTP status or as an ERROR event) means the resourceVersion left the server's
// watch window: the cache is rebuilt from a fresh list rather than resumed.

export const State = Object.freeze({
  Idle: 'idle',
  Listing: 'listing',
  Watching: 'watching',
  Backoff: 'backoff',
  Stopped: 'stopped',
});

/** A watch error: a Kubernetes `Status` that arrived as an ERROR event. */
export class WatchError extends Error {
  constructor(status) {
    super(status && status.message ? status.message : 'watch error');
    this.status = status && status.code;
    this.body = status;
  }
}

const isGone = (e) => e && e.status === 410;
const isAbort = (e) => e && (e.name === 'AbortError' || e.aborted === true);

function defaultSleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

/** The key of an object in the cache: namespace/name (uids change when an object is recreated). */
export function objectKey(obj) {
  const m = obj.metadata || {};
  return m.namespace ? `${m.namespace}/${m.name}` : m.name;
}

export class ListWatch {
  /**
   * @param {object} o
   * @param {(signal: AbortSignal) => Promise<{items: object[], resourceVersion: string}>} o.list
   * @param {(resourceVersion: string, signal: AbortSignal) => AsyncIterable<{type: string, object: object}>} o.watch
   * @param {(lw: ListWatch) => void} [o.onChange] after every change of the cache
   * @param {(state: string, lw: ListWatch) => void} [o.onState] after every state change
   */
  constructor({ list, watch, onChange = () => {}, onState = () => {}, sleep = defaultSleep, initialDelay = 500, maxDelay = 30000 }) {
    Object.assign(this, { list, watch, onChange, onState, sleep, initialDelay, maxDelay });
    this.state = State.Idle;
    this.cache = new Map();
    this.resourceVersion = '';
    this.error = null;
    this.synced = false;
    this.lists = 0;
    this.controller = new AbortController();
  }

  get items() {
    return [...this.cache.values()];
  }

  setState(s) {
    if (this.state === s) return;
    this.state = s;
    this.onState(s, this);
  }

  start() {
    this.done = this.run();
    return this;
  }

  stop() {
    this.controller.abort();
    this.setState(State.Stopped);
  }

  get stopped() {
    return this.controller.signal.aborted;
  }

  async run() {
    const signal = this.controller.signal;
    let delay = this.initialDelay;
    let needList = true;
    while (!this.stopped) {
      let events = 0;
      try {
        if (needList) {
          this.setState(State.Listing);
          const l = await this.list(signal);
          if (this.stopped) return;
          this.lists++;
          this.cache = new Map(l.items.map((o) => [objectKey(o), o]));
          this.resourceVersion = l.resourceVersion || '';
          this.synced = true;
          this.error = null;
          needList = false;
          this.onChange(this);
        }
        this.setState(State.Watching);
        for await (const ev of this.watch(this.resourceVersion, signal)) {
          if (this.stopped) return;
          events++;
          this.apply(ev);
        }
        if (this.stopped) return;
        // A stream that ends cleanly (the server's timeout) is resumed at once; one that
        // ends without a single event is treated like a failure, so a server that keeps
        // closing streams is not hammered.
        if (events > 0) {
          delay = this.initialDelay;
          continue;
        }
        throw Object.assign(new Error('watch stream closed'), { status: 0 });
      } catch (e) {
        if (this.stopped || isAbort(e)) return;
        if (isGone(e)) {
          needList = true;
          continue;
        }
        if (events > 0) delay = this.initialDelay;
        this.error = e;
        this.setState(State.Backoff);
        await this.sleep(delay, signal);
        delay = Math.min(delay * 2, this.maxDelay);
      }
    }
  }

  apply(ev) {
    const obj = ev.object || {};
    switch (ev.type) {
      case 'ADDED':
      case 'MODIFIED':
        this.cache.set(objectKey(obj), obj);
        break;
      case 'DELETED':
        this.cache.delete(objectKey(obj));
        break;
      case 'BOOKMARK':
        break;
      case 'ERROR':
        throw new WatchError(obj);
      default:
        return;
    }
    if (obj.metadata && obj.metadata.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
    this.error = null;
    if (ev.type !== 'BOOKMARK') this.onChange(this);
  }
}
