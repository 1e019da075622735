// Small SVG charts: sparklines for table cells, an area chart with a scale for detail pages, a
// stacked bar for counts, and the rollout progress bar.

import { h, s } from './dom.js';

function points(samples, w, hgt, max, span) {
  if (!samples.length) return [];
  const t1 = samples[samples.length - 1].t;
  const t0 = Math.min(samples[0].t, t1 - span);
  const dt = Math.max(1, t1 - t0);
  return samples.map((p) => [((p.t - t0) / dt) * w, hgt - (Math.max(0, p.v) / max) * (hgt - 2) - 1]);
}

/** A sparkline of `samples` ({t, v}); `max` fixes the scale (e.g. capacity). */
export function sparkline(samples, { max, label, width = 96, height = 28, span = 5 * 60 * 1000 } = {}) {
  const top = max || Math.max(1e-9, ...samples.map((p) => p.v)) * 1.15;
  const pts = points(samples, width, height, top, span);
  const svg = s('svg', { class: 'spark', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': label || 'chart' });
  svg.append(s('title', {}, label || ''));
  // The frame of the whole window, so a few minutes' worth of samples reads as a chart.
  svg.append(s('rect', { class: 'spark-frame', x: 0.5, y: 0.5, width: width - 1, height: height - 1, rx: 3 }));
  if (pts.length >= 2) {
    const line = pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
    svg.append(s('polygon', { class: 'spark-area', points: `${pts[0][0].toFixed(1)},${height} ${line} ${pts[pts.length - 1][0].toFixed(1)},${height}` }));
    svg.append(s('polyline', { class: 'spark-line', points: line }));
  } else if (pts.length === 1) {
    svg.append(s('circle', { class: 'spark-dot', cx: pts[0][0].toFixed(1), cy: pts[0][1].toFixed(1), r: 2 }));
  } else {
    svg.append(s('line', { class: 'spark-none', x1: 0, x2: width, y1: height - 1, y2: height - 1 }));
  }
  return svg;
}

/** An area chart with its scale and latest value, for a node's or pod's detail page. */
export function areaChart(samples, { title, format, max, span = 5 * 60 * 1000 } = {}) {
  const width = 320;
  const height = 90;
  const top = max || Math.max(1e-9, ...samples.map((p) => p.v)) * 1.2;
  const pts = points(samples, width, height, top, span);
  const svg = s('svg', { class: 'area-chart', viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': title });
  for (const f of [0.25, 0.5, 0.75]) svg.append(s('line', { class: 'grid', x1: 0, x2: width, y1: height * f, y2: height * f }));
  if (pts.length >= 2) {
    const line = pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
    svg.append(s('polygon', { class: 'spark-area', points: `${pts[0][0].toFixed(1)},${height} ${line} ${pts[pts.length - 1][0].toFixed(1)},${height}` }));
    svg.append(s('polyline', { class: 'spark-line', points: line }));
  }
  const last = samples.length ? samples[samples.length - 1].v : NaN;
  return h('figure', { class: 'chart' },
    h('figcaption', {}, h('span', { class: 'chart-title' }, title), h('span', { class: 'chart-value' }, samples.length ? format(last) : '–')),
    h('div', { class: 'chart-plot' }, svg, h('span', { class: 'chart-max' }, format(top))),
    h('div', { class: 'chart-axis' }, h('span', {}, `${Math.round(span / 60000)} min ago`), h('span', {}, samples.length < 2 ? 'collecting samples…' : 'now')));
}

/** A stacked horizontal bar of labelled counts: [{label, value, tone}]. */
export function stackedBar(parts, label) {
  const total = parts.reduce((n, p) => n + p.value, 0);
  const bar = h('div', { class: 'stack', role: 'img', 'aria-label': label });
  for (const p of parts) {
    if (!p.value) continue;
    const seg = h('span', { class: `stack-seg tone-${p.tone}`, title: `${p.label}: ${p.value}` });
    seg.style.flexGrow = String(p.value);
    bar.append(seg);
  }
  if (!total) bar.append(h('span', { class: 'stack-seg tone-neutral stack-empty' }));
  return bar;
}

/** A rollout's progress: updated / ready / available against desired replicas. */
export function rolloutBar({ desired, updated, ready, available }) {
  const max = Math.max(desired, updated, ready, available, 1);
  const row = (name, value, tone) => {
    const fill = h('span', { class: `meter-fill tone-${tone}` });
    fill.style.width = `${(value / max) * 100}%`;
    return h('div', { class: 'rollout-row' },
      h('span', { class: 'rollout-label' }, name),
      h('span', { class: 'meter meter-wide', role: 'meter', 'aria-label': `${name} replicas`, 'aria-valuenow': value, 'aria-valuemin': 0, 'aria-valuemax': desired }, fill),
      h('span', { class: 'rollout-num', dataset: { field: name.toLowerCase() } }, `${value}/${desired}`));
  };
  const done = updated >= desired && ready >= desired && available >= desired;
  return h('div', { class: 'rollout', dataset: { complete: String(done) } },
    row('Updated', updated, 'accent'),
    row('Ready', ready, 'ok'),
    row('Available', available, 'ok'));
}
