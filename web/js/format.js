// Pure formatting helpers: Kubernetes quantities, ages, pod status. No DOM, so `node --test`
// exercises them directly (tests/web/unit/format.test.mjs).

const BINARY = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/** Parses a Kubernetes quantity ("100m", "64Mi", "1.5", "2e3") into a number; NaN if invalid. */
export function parseQuantity(q) {
  if (typeof q === 'number') return q;
  if (typeof q !== 'string') return NaN;
  const m = /^([+-]?[0-9.]+)([eE][+-]?[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/.exec(q.trim());
  if (!m || m[1] === '.' || (m[1].match(/\./g) || []).length > 1) return NaN;
  const base = Number(m[1] + (m[2] || ''));
  const suffix = m[3] || '';
  const mult = BINARY[suffix] ?? DECIMAL[suffix];
  return base * mult;
}

/** CPU cores as kubectl top prints them: millicores below 10 cores ("250m"), else cores. */
export function formatCpu(cores) {
  if (!Number.isFinite(cores)) return '–';
  if (cores === 0) return '0';
  if (cores < 10) {
    const milli = cores * 1000;
    return milli < 1 ? `${milli.toFixed(2).replace(/\.?0+$/, '')}m` : `${Math.round(milli)}m`;
  }
  return `${Math.round(cores * 10) / 10}`;
}

/** Bytes with a binary unit, three significant digits ("64Mi", "1.5Gi", "512Ki"). */
export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return '–';
  if (bytes === 0) return '0';
  const units = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi'];
  let i = 0;
  let v = bytes;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const digits = v >= 100 || i === 0 ? 0 : v >= 10 ? 1 : 2;
  return `${Number(v.toFixed(digits))}${units[i]}`;
}

/** A fraction as a whole percentage ("37%"), or "–" when unknown. */
export function percent(part, whole) {
  if (!Number.isFinite(part) || !Number.isFinite(whole) || whole <= 0) return '–';
  return `${Math.round((part / whole) * 100)}%`;
}

/** kubectl's HumanDuration: "45s", "3m20s", "5h", "2d3h", "1y20d". */
export function humanDuration(ms) {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${days}d` : `${days}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.floor(days / 365);
  if (hours < 24 * 365 * 8) {
    const d = days % 365;
    return d === 0 ? `${years}y` : `${years}y${d}d`;
  }
  return `${years}y`;
}

/** The age of an object from its RFC 3339 timestamp, as kubectl prints AGE. */
export function age(timestamp, now = Date.now()) {
  if (!timestamp) return '<unknown>';
  const t = Date.parse(timestamp);
  if (Number.isNaN(t)) return '<unknown>';
  return humanDuration(now - t);
}

/** The STATUS column of `kubectl get pods` (kubectl's printPod, abridged). */
export function podStatus(pod) {
  const status = pod.status || {};
  let reason = status.reason || status.phase || 'Unknown';
  const inits = status.initContainerStatuses || [];
  let initializing = false;
  inits.forEach((c, i) => {
    if (initializing) return;
    const st = c.state || {};
    if (st.terminated && st.terminated.exitCode === 0) return;
    initializing = true;
    if (st.terminated) {
      reason = st.terminated.reason ? `Init:${st.terminated.reason}` : `Init:ExitCode:${st.terminated.exitCode}`;
    } else if (st.waiting && st.waiting.reason && st.waiting.reason !== 'PodInitializing') {
      reason = `Init:${st.waiting.reason}`;
    } else {
      reason = `Init:${i}/${inits.length}`;
    }
  });
  if (!initializing) {
    let hasRunning = false;
    const containers = status.containerStatuses || [];
    for (let i = containers.length - 1; i >= 0; i--) {
      const st = containers[i].state || {};
      if (st.waiting && st.waiting.reason) reason = st.waiting.reason;
      else if (st.terminated && st.terminated.reason) reason = st.terminated.reason;
      else if (st.terminated) {
        reason = st.terminated.signal ? `Signal:${st.terminated.signal}` : `ExitCode:${st.terminated.exitCode}`;
      } else if (containers[i].ready && st.running) hasRunning = true;
    }
    if (reason === 'Completed' && hasRunning) {
      const ready = (status.conditions || []).some((c) => c.type === 'Ready' && c.status === 'True');
      reason = ready ? 'Running' : 'NotReady';
    }
  }
  if (pod.metadata && pod.metadata.deletionTimestamp) {
    reason = status.reason === 'NodeLost' ? 'Unknown' : 'Terminating';
  }
  return reason;
}

/** "ready/total" containers of a pod. */
export function podReady(pod) {
  const total = (pod.spec && pod.spec.containers ? pod.spec.containers.length : 0);
  const ready = (pod.status && pod.status.containerStatuses || []).filter((c) => c.ready).length;
  return `${ready}/${total}`;
}

/** Restarts summed over a pod's containers. */
export function podRestarts(pod) {
  return (pod.status && pod.status.containerStatuses || []).reduce((n, c) => n + (c.restartCount || 0), 0);
}

/** A status word → the colour class the console paints it with. */
export function statusTone(word) {
  const w = String(word || '');
  if (/^(Running|Ready|Active|Bound|Complete|Completed|Succeeded|Available|True|Normal)$/.test(w)) return 'ok';
  if (/^(Pending|ContainerCreating|PodInitializing|Terminating|Progressing|Unknown|Init:)/.test(w)) return 'warn';
  if (/(Err|Error|BackOff|Failed|OOMKilled|NotReady|Evicted|Warning|False|Invalid|Unschedulable|ExitCode)/.test(w)) return 'bad';
  return 'neutral';
}
