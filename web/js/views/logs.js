// A pod's logs, followed live: container choice, previous instance, timestamps.

import { h, mount } from '../dom.js';
import { readLines } from '../lines.js';
import { resourcePath } from '../resources.js';

const MAX_LINES = 5000;

export function logView(pane, app, namespace, name) {
  let pod = null;
  let controller = null;
  let container = '';
  let started = false;
  let stopped = false;
  let lines = 0;
  const select = h('select', { id: 'log-container', class: 'input', 'aria-label': 'Container' });
  const previous = h('input', { type: 'checkbox', id: 'log-previous' });
  const timestamps = h('input', { type: 'checkbox', id: 'log-timestamps' });
  const follow = h('input', { type: 'checkbox', id: 'log-follow', checked: true });
  const state = h('span', { class: 'log-state', role: 'status', id: 'log-state' });
  const out = h('pre', { class: 'logs', id: 'log-output', tabindex: '0', 'aria-label': 'Log output', 'aria-live': 'off' });
  const clearBtn = h('button', { type: 'button', class: 'btn btn-small', onClick: () => { mount(out); lines = 0; } }, 'Clear');
  mount(pane,
    h('div', { class: 'toolbar log-toolbar' },
      h('label', { for: 'log-container', class: 'toolbar-label' }, 'Container'), select,
      h('label', { class: 'check' }, follow, ' Follow'),
      h('label', { class: 'check' }, previous, ' Previous instance'),
      h('label', { class: 'check' }, timestamps, ' Timestamps'),
      clearBtn, state),
    out);

  function containers() {
    if (!pod) return [];
    return [...(pod.spec.initContainers || []), ...pod.spec.containers].map((c) => c.name);
  }

  function fillSelect() {
    const names = containers();
    if (!container || !names.includes(container)) container = pod.spec.containers[0].name;
    if (select.options.length !== names.length || [...select.options].some((o, i) => o.value !== names[i])) {
      mount(select, names.map((n) => h('option', { value: n }, n)));
    }
    select.value = container;
  }

  async function stream() {
    if (controller) controller.abort();
    controller = new AbortController();
    const signal = controller.signal;
    mount(out);
    lines = 0;
    const params = { container, follow: follow.checked && !previous.checked ? 'true' : undefined, previous: previous.checked ? 'true' : undefined, timestamps: timestamps.checked ? 'true' : undefined, tailLines: 1000 };
    state.textContent = 'Connecting…';
    state.dataset.state = 'connecting';
    let backoff = 1000;
    for (;;) {
      try {
        const res = await app.api.raw('GET', resourcePath('pods', { namespace, name, subresource: 'log' }), { params, signal, accept: '*/*' });
        state.textContent = params.follow ? 'Following' : 'Loaded';
        state.dataset.state = params.follow ? 'following' : 'loaded';
        for await (const line of readLines(res.body)) append(line);
        if (!params.follow || signal.aborted) {
          if (!lines) out.append(h('span', { class: 'muted' }, '(no output)'));
          state.textContent = 'Loaded';
          state.dataset.state = 'loaded';
          return;
        }
        // A followed stream ends when the container stops: reconnect for what it does next.
        state.textContent = 'Stream ended; reconnecting…';
        params.tailLines = undefined;
        params.sinceSeconds = 1;
      } catch (e) {
        if (signal.aborted || e.name === 'AbortError') return;
        state.textContent = e.body && e.body.message ? e.body.message : e.message;
        state.dataset.state = 'error';
        if (!params.follow || (e.status && e.status >= 400 && e.status < 500)) return;
      }
      await new Promise((res) => setTimeout(res, backoff));
      backoff = Math.min(backoff * 2, 15000);
      if (signal.aborted) return;
    }
  }

  function append(line) {
    const atBottom = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
    out.append(document.createTextNode(`${line}\n`));
    lines++;
    while (lines > MAX_LINES && out.firstChild) {
      out.removeChild(out.firstChild);
      lines--;
    }
    if (atBottom) out.scrollTop = out.scrollHeight;
  }

  for (const input of [previous, timestamps, follow]) input.addEventListener('change', () => stream());
  select.addEventListener('change', () => {
    container = select.value;
    stream();
  });

  return {
    update(p) {
      pod = p;
      fillSelect();
    },
    choose(c) {
      container = c;
      if (pod) fillSelect();
      if (started) stream();
    },
    start() {
      if (started || stopped) return;
      if (!pod) {
        state.textContent = 'Waiting for the pod…';
        setTimeout(() => this.start(), 300);
        return;
      }
      started = true;
      stream();
    },
    stop() {
      stopped = true;
      if (controller) controller.abort();
    },
  };
}
