// End-to-end test of the web console in real headless Chromium, against a running wasmkube
// server (started by tests/e2e/web.rs, which also imports the example images).
//
// Env: WASMKUBE_URL (https://127.0.0.1:PORT), WASMKUBE_TOKEN (the admin token), REPO (the
// checkout, for manifests/), SCREENSHOT_DIR (where overview.png and pod.png go), CHROMIUM
// (default /usr/bin/chromium).
//
// The server's certificate is signed by the cluster's own CA, which this browser does not
// know: the test context ignores certificate errors (ignoreHTTPSErrors), and only here.
//
// Fails on any console error or page error, except the HTTP errors a step provokes on purpose
// (the 401 of a wrong token, the 422 of a broken manifest), which are expected by that step.

import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const url = process.env.WASMKUBE_URL;
const token = process.env.WASMKUBE_TOKEN;
// A ServiceAccount token bound to the `view` ClusterRole (read-only, no nodes, no Secrets).
const viewerToken = process.env.WASMKUBE_VIEWER_TOKEN;
const repo = process.env.REPO;
const shots = process.env.SCREENSHOT_DIR;
if (!url || !token || !viewerToken || !repo || !shots) {
  console.error('set WASMKUBE_URL, WASMKUBE_TOKEN, WASMKUBE_VIEWER_TOKEN, REPO and SCREENSHOT_DIR');
  process.exit(2);
}
const STEP_TIMEOUT = 60_000;

const problems = [];
let allowed = []; // HTTP statuses the current step provokes on purpose

function step(name) {
  console.log(`step: ${name}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
let failed = false;
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1440, height: 900 }, colorScheme: 'light' });
  context.setDefaultTimeout(STEP_TIMEOUT);
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    const m = /status of (\d{3})/.exec(text);
    if (m && allowed.includes(Number(m[1]))) return;
    problems.push(`console error: ${text} (${msg.location().url || 'no location'})`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    const f = r.failure();
    // Requests aborted by the page itself (leaving a view stops its watches) are expected.
    if (f && /ERR_ABORTED/.test(f.errorText)) return;
    problems.push(`request failed: ${r.method()} ${r.url()}: ${f && f.errorText}`);
  });
  const checkProblems = (where) => {
    if (problems.length) throw new Error(`${where}:\n  ${problems.join('\n  ')}`);
  };

  // ---- sign-in ----
  step('the console is served at /ui and asks for a token');
  const res = await page.goto(`${url}/ui`);
  if (!res.ok()) throw new Error(`GET /ui: HTTP ${res.status()}`);
  if (!page.url().endsWith('/ui/')) throw new Error(`/ui did not redirect to /ui/: ${page.url()}`);
  const csp = res.headers()['content-security-policy'] || '';
  if (!csp.includes("script-src 'self'")) throw new Error(`no strict CSP on the page: ${csp}`);
  await page.getByRole('heading', { name: 'Sign in to the cluster' }).waitFor();

  step('a wrong token is refused with a clear 401 message');
  allowed = [401];
  await page.fill('#token', 'not-the-right-token-at-all');
  await page.click('button[type=submit]');
  await page.locator('#signin-error', { hasText: '401 Unauthorized' }).waitFor();
  allowed = [];
  checkProblems('after the wrong token');

  step('the right token signs in');
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.getByRole('heading', { name: 'Cluster overview' }).waitFor();
  // Any full page load from here on would drop this marker: the views must update live.
  await page.evaluate(() => { window.__noReload = true; });
  const stored = await page.evaluate(() => sessionStorage.getItem('wasmkube.token'));
  if (stored !== token) throw new Error('the token is not kept in session storage');
  await page.locator('.table tr[data-name="server-node"] .badge', { hasText: 'Ready' }).waitFor();

  // ---- apply from the editor ----
  step('apply manifests/hello-http.yaml from the editor');
  await page.click('#apply-button');
  await page.getByRole('heading', { name: 'Apply YAML' }).waitFor();
  await page.fill('#apply-editor', readFileSync(join(repo, 'manifests/hello-http.yaml'), 'utf8'));
  await page.click('#apply-submit');
  await page.locator('.result-ok[data-ref="deployment.apps/hello-http"][data-verb="created"]').waitFor();
  await page.locator('.result-ok[data-ref="service/hello-http"][data-verb="created"]').waitFor();

  step('its pods turn Running without a reload');
  await page.click('.result-ok[data-ref="deployment.apps/hello-http"] a');
  await page.getByRole('heading', { name: /hello-http/ }).waitFor();
  await waitForPods(page, 2);
  await page.locator('.rollout-num[data-field="available"]', { hasText: '2/2' }).waitFor();

  // ---- scale ----
  step('scale to 5');
  await page.click('#action-scale');
  await page.fill('#scale-replicas', '5');
  await page.keyboard.press('Enter');
  await page.locator('.toast', { hasText: 'scaled to 5' }).waitFor();
  await page.locator('.rollout-num[data-field="ready"]', { hasText: '5/5' }).waitFor();
  await waitForPods(page, 5);

  step('Esc closes a dialog without acting');
  await page.click('#action-scale');
  await page.locator('dialog[open]').waitFor();
  await page.keyboard.press('Escape');
  await page.locator('dialog[open]').waitFor({ state: 'detached' });

  step('scale back to 2');
  await page.click('#action-scale');
  await page.fill('#scale-replicas', '2');
  await page.click('dialog button[type=submit]');
  await page.locator('.rollout-num[data-field="ready"]', { hasText: '2/2' }).waitFor();
  await waitForPods(page, 2);

  // ---- edit, restart, undo ----
  step("edit the deployment's YAML (PUT)");
  await page.click('#action-edit');
  const yamlText = await page.inputValue('#yaml-editor');
  const edited = yamlText.replace(/^  revisionHistoryLimit: 10$/m, '  revisionHistoryLimit: 7');
  if (edited === yamlText) throw new Error(`no revisionHistoryLimit: 10 in the YAML:\n${yamlText}`);
  await page.fill('#yaml-editor', edited);
  await page.keyboard.press('Control+Enter');
  await page.locator('.toast', { hasText: 'deployment/hello-http replaced' }).waitFor();
  await page.locator('.yaml-view', { hasText: 'revisionHistoryLimit: 7' }).waitFor();
  await page.click('#tab-overview');

  step('rollout restart makes revision 2; undo goes back to revision 1');
  await page.click('#action-restart');
  await page.click('dialog button[type=submit]');
  await page.locator('.toast', { hasText: 'hello-http restarted' }).waitFor();
  await page.locator('.panel', { hasText: 'ReplicaSets (revisions)' }).locator('td[data-col="revision"]', { hasText: /^2$/ }).waitFor();
  await page.click('#action-undo');
  await page.click('dialog button[type=submit]');
  await page.locator('.toast', { hasText: 'rolled back to revision 1' }).waitFor();
  await page.locator('.panel', { hasText: 'ReplicaSets (revisions)' }).locator('td[data-col="revision"]', { hasText: /^3$/ }).waitFor();
  await waitForPods(page, 2);

  step('create a namespace');
  await page.click('.nav-item[data-nav="namespaces"]');
  await page.click('#create-namespace');
  await page.fill('#new-namespace', 'console-e2e');
  await page.keyboard.press('Enter');
  await page.locator('.list-body tr[data-name="console-e2e"]').waitFor();
  await page.locator('#namespace option[value="console-e2e"]').waitFor({ state: 'attached' });

  // ---- lists, search, the overview ----
  step('the pods list filters with / search');
  await page.click('.nav-item[data-nav="pods"]');
  await page.getByRole('heading', { name: /^Pods/ }).waitFor();
  await page.locator('main').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('/');
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
  if (focused !== 'search') throw new Error(`"/" focused ${focused}, not the search box`);
  await page.keyboard.type('hello-http');
  await waitForCount(page, '.list-body tbody tr', 2);
  await page.keyboard.press('Escape');

  step('overview: nodes with usage, pods by phase, the pod map (screenshot)');
  await page.click('.nav-item[data-nav="overview"]');
  await page.getByRole('heading', { name: 'Cluster overview' }).waitFor();
  await page.locator('.legend li[data-phase="Running"]').waitFor();
  await waitForCount(page, '.map-node[data-node="server-node"] .map-pod.tone-ok', 2, '>=');
  // Two metrics samples make a line: wait for the node's CPU sparkline to have one.
  await page.locator('.table tr[data-name="server-node"] .spark polyline').first().waitFor({ state: 'attached', timeout: 45_000 });
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, 'overview.png'), fullPage: true });

  // ---- a pod: details and logs ----
  step('a pod page: containers, usage and events (screenshot)');
  await page.locator('.map-node[data-node="server-node"] .map-pod.tone-ok').first().click();
  await page.locator('.kind-tag', { hasText: 'Pod' }).waitFor();
  await page.locator('.panel', { hasText: 'Containers' }).locator('.badge', { hasText: 'Running' }).waitFor();
  await page.locator('.owner-link', { hasText: 'ReplicaSet/hello-http-' }).waitFor();
  await page.locator('.chart .spark-line').first().waitFor({ state: 'attached', timeout: 45_000 });
  await page.screenshot({ path: join(shots, 'pod.png'), fullPage: true });

  step("open the pod's logs");
  await page.click('#tab-logs');
  await page.locator('#log-state[data-state="following"]').waitFor();
  await page.locator('#log-container').waitFor();
  const container = await page.inputValue('#log-container');
  if (container !== 'hello-http') throw new Error(`log container ${container}`);

  step('live logs of a pod that prints (the counter example)');
  await page.click('#apply-button');
  await page.fill('#apply-editor', readFileSync(join(repo, 'manifests/counter.yaml'), 'utf8'));
  await page.keyboard.press('Control+Enter');
  await page.locator('.result-ok[data-ref="pod/counter"]').waitFor();
  await page.click('.result-ok[data-ref="pod/counter"] a');
  await page.locator('.panel', { hasText: 'Containers' }).locator('.badge', { hasText: 'Running' }).waitFor();
  await page.click('#tab-logs');
  await page.locator('#log-state[data-state="following"]').waitFor();
  // The counter prints "count: 1", "count: 2" ... every 2 s: later lines arrive on the open stream.
  await page.locator('#log-output', { hasText: /counter: starting from 0[^\n]*\ncount: 1\n/ }).waitFor();
  await page.locator('#log-output', { hasText: /\ncount: 3\n/ }).waitFor();
  await page.click('#action-delete');
  await page.click('dialog button[type=submit]');
  await page.getByRole('heading', { name: /^Pods/ }).waitFor();

  // ---- validation errors ----
  step('a broken manifest shows the server\'s error next to its field');
  const broken = [
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata:',
    '  name: broken-web',
    'spec:',
    '  replicas: -3',
    '  selector:',
    '    matchLabels: {app: broken-web}',
    '  template:',
    '    metadata:',
    '      labels: {app: broken-web}',
    '    spec:',
    '      containers:',
    '        - name: web',
    '          image: wasmkube.local/examples/hello-http:v1',
    '',
  ].join('\n');
  await page.click('#apply-button');
  allowed = [422];
  await page.fill('#apply-editor', `# a valid document first\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-settings\ndata:\n  mode: fast\n---\n${broken}`);
  await page.click('#apply-submit');
  const err = page.locator('.result-error[data-field="spec.replicas"]');
  await err.waitFor();
  const line = Number(await err.getAttribute('data-line'));
  if (line !== 14) throw new Error(`the spec.replicas error points at line ${line}, not 14`);
  await err.locator('.result-title', { hasText: 'Document 2 (Deployment broken-web)' }).waitFor();
  await page.locator('.gutter-line.gutter-error[data-line="14"]').waitFor();
  await page.locator('.result-ok[data-ref="configmap/web-settings"]').waitFor();
  allowed = [];

  // ---- delete ----
  step('delete the deployment');
  await page.click('.nav-item[data-nav="deployments"]');
  await page.locator('.list-body tr[data-name="hello-http"]').waitFor();
  await page.click('.list-body tr[data-name="hello-http"] a');
  await page.click('#action-delete');
  await page.locator('dialog[open]', { hasText: 'Delete deployment hello-http?' }).waitFor();
  await page.click('dialog button[type=submit]');
  await page.getByRole('heading', { name: /^Deployments/ }).waitFor();
  await page.locator('.list-body tr[data-name="hello-http"]').waitFor({ state: 'detached' });
  await page.click('.nav-item[data-nav="pods"]');
  await waitForCount(page, '.list-body tbody tr[data-name^="hello-http-"]', 0);

  step('phone width: no horizontal scrolling, navigation behind the menu button');
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 1) throw new Error(`the page is ${overflow}px wider than a phone screen`);
  await page.click('.menu-toggle');
  await page.locator('.nav-item[data-nav="nodes"]').click();
  await page.getByRole('heading', { name: /^Nodes/ }).waitFor();

  step('theme toggle');
  await page.keyboard.press('t');
  if ((await page.evaluate(() => document.documentElement.dataset.theme)) !== 'dark') throw new Error('t did not switch to the dark theme');

  if (!(await page.evaluate(() => window.__noReload === true))) throw new Error('the page reloaded during the test');
  step('sign out');
  await page.click('#sign-out');
  await page.getByRole('heading', { name: 'Sign in to the cluster' }).waitFor();
  if (await page.evaluate(() => sessionStorage.getItem('wasmkube.token'))) throw new Error('sign-out kept the token');

  // ---- a ServiceAccount token: RBAC applies to everything the console does ----
  step('a ServiceAccount token signs in; what RBAC refuses says so');
  allowed = [403];
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.fill('#token', viewerToken);
  await page.click('button[type=submit]');
  await page.getByRole('heading', { name: 'Cluster overview' }).waitFor();
  await page.click('.nav-item[data-nav="nodes"]');
  await page.locator('.empty', { hasText: 'Not allowed' }).waitFor();
  await page.locator('.empty', { hasText: 'cannot list resource "nodes"' }).waitFor();
  await page.click('.nav-item[data-nav="configmaps"]');
  await page.locator('.list-body tr[data-name="viewer-can-see"]').waitFor();
  await page.click('.list-body tr[data-name="viewer-can-see"] a');
  await page.click('#action-delete');
  await page.locator('dialog[open]', { hasText: 'Delete configmap viewer-can-see?' }).waitFor();
  await page.click('dialog button[type=submit]');
  await page.locator('dialog[open] .dialog-error', { hasText: 'cannot delete resource "configmaps"' }).waitFor();
  await page.keyboard.press('Escape');
  await page.click('#sign-out');
  await page.getByRole('heading', { name: 'Sign in to the cluster' }).waitFor();
  allowed = [];
  checkProblems('after the ServiceAccount steps');
  checkProblems('at the end');
  console.log('console e2e: all steps passed');
} catch (e) {
  failed = true;
  console.error(`FAILED: ${e.stack || e.message}`);
  if (problems.length) console.error(`console problems:\n  ${problems.join('\n  ')}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);

/** Waits until the object page's Pods panel lists exactly `n` pods, all Running. */
async function waitForPods(page, n) {
  await page.waitForFunction((want) => {
    const panel = [...document.querySelectorAll('.panel')].find((p) => p.querySelector('h2') && p.querySelector('h2').textContent === 'Pods');
    if (!panel) return false;
    const rows = [...panel.querySelectorAll('tbody tr')];
    return rows.length === want && rows.every((r) => /Running/.test(r.querySelector('td[data-col="status"]').textContent) && r.querySelector('td[data-col="ready"]').textContent === '1/1');
  }, n, { timeout: 90_000 });
}

async function waitForCount(page, selector, n, op = '==') {
  await page.waitForFunction(([sel, want, cmp]) => {
    const c = document.querySelectorAll(sel).length;
    return cmp === '>=' ? c >= want : c === want;
  }, [selector, n, op], { timeout: 60_000 });
}
