// Polls metrics.k8s.io every ~10 s and keeps the last minutes of CPU and memory per node and per
// pod in ring buffers, for the console's charts.

import { Ring } from './ring.js';
import { parseQuantity } from './format.js';

export const NODE_METRICS = '/apis/metrics.k8s.io/v1beta1/nodes';
export const POD_METRICS = '/apis/metrics.k8s.io/v1beta1/pods';

export class MetricsPoller {
  constructor(api, { interval = 10000, capacity = 36 } = {}) {
    this.api = api;
    this.interval = interval;
    this.capacity = capacity;
    this.series = new Map();
    this.listeners = new Set();
    this.error = null;
    this.polls = 0;
  }

  start() {
    this.poll();
    this.timer = setInterval(() => this.poll(), this.interval);
    return this;
  }

  stop() {
    clearInterval(this.timer);
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  record(key, t, cpu, mem) {
    let s = this.series.get(key);
    if (!s) {
      s = { cpu: new Ring(this.capacity), mem: new Ring(this.capacity) };
      this.series.set(key, s);
    }
    s.cpu.push({ t, v: cpu });
    s.mem.push({ t, v: mem });
  }

  async poll() {
    if (this.busy) return;
    this.busy = true;
    try {
      const [nodes, pods] = await Promise.all([this.api.get(NODE_METRICS), this.api.get(POD_METRICS)]);
      const t = Date.now();
      for (const n of nodes.items || []) {
        this.record(`node/${n.metadata.name}`, t, parseQuantity(n.usage.cpu), parseQuantity(n.usage.memory));
      }
      for (const p of pods.items || []) {
        let cpu = 0;
        let mem = 0;
        for (const c of p.containers || []) {
          cpu += parseQuantity(c.usage.cpu) || 0;
          mem += parseQuantity(c.usage.memory) || 0;
        }
        this.record(`pod/${p.metadata.namespace}/${p.metadata.name}`, t, cpu, mem);
      }
      this.error = null;
      this.polls++;
    } catch (e) {
      this.error = e;
    } finally {
      this.busy = false;
    }
    for (const fn of this.listeners) fn(this);
  }

  /** `{ cpu: Ring, mem: Ring }` of `node/NAME` or `pod/NS/NAME`, or undefined. */
  get(key) {
    return this.series.get(key);
  }

  latest(key) {
    const s = this.series.get(key);
    if (!s) return null;
    return { cpu: s.cpu.last().v, mem: s.mem.last().v };
  }
}
