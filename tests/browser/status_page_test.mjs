// ctest Browser.StatusPage: the status page in a real browser (docs/api.md, "Status page").
//
//   node tests/browser/status_page_test.mjs STORJNETD SCREENSHOT_DIR
//
// Starts `storjnetd --nodes 5` (ephemeral ports, its own data dir and token), drives the system Chromium
// headless through puppeteer-core (tests/browser/node_modules, installed by scripts/install-deps) and checks:
// the page loads with no console error, no failed request and no error response; it shows node 0's id
// (dht_id) and peer count (dht_peers), a pubsub event and an inbound stream made through the API; a chart
// updates; without the token in the fragment the page asks for it (and says when it is refused); the token left the address bar; the network view shows
// every node and a click opens another node's page. Screenshots: SCREENSHOT_DIR/status.png and network.png.
// Every wait is on a condition of the page or the daemon, bounded by a generous timeout that only a broken
// page reaches. Chromium or puppeteer-core missing is a failure, never a skip.
import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { createRequire } from 'node:module';

const [storjnetd, shotDir] = process.argv.slice(2);
if (!storjnetd || !shotDir) {
  console.error('usage: status_page_test.mjs STORJNETD SCREENSHOT_DIR');
  process.exit(2);
}
const NODES = 5;
const WAIT_MS = 60_000;  // any single condition; a working page meets each within a few seconds, even under ASan

function fail(msg) {
  throw new Error(msg);
}

function loadPuppeteer() {
  const require = createRequire(import.meta.url);
  try {
    return require('puppeteer-core');
  } catch (e) {
    fail('puppeteer-core is not installed in tests/browser/node_modules: run scripts/install-deps (' + e.message + ')');
  }
}

function chromiumPath() {
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      return execFileSync('sh', ['-c', `command -v ${name}`]).toString().trim();
    } catch { /* next */ }
  }
  fail('chromium is not installed: run scripts/install-deps');
}

// One HTTP request to the daemon; resolves {status, body}.
function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let data = '';
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

async function rpc(api, token, method, params = []) {
  const r = await request(api + '/', {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const j = JSON.parse(r.body);
  if (j.error) fail(`${method}: ${j.error.message}`);
  return j.result;
}

// Calls `f` until it returns a truthy value (polling the daemon, not sleeping for a fixed time).
async function until(what, f) {
  const end = Date.now() + WAIT_MS;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) fail('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Starts the daemon; resolves with its nodes' API URLs once it says they are all ready.
function startDaemon(dataDir, token) {
  const child = spawn(storjnetd, ['--nodes', String(NODES), '--port', '0', '--api-port', '0', '--host', '127.0.0.1',
                                  '--data-dir', dataDir, '--log-level', 'warn'],
                      { env: { ...process.env, STORJNET_API_TOKEN: token }, stdio: ['ignore', 'pipe', 'inherit'] });
  const apis = [];
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('storjnetd did not report its nodes ready')), WAIT_MS);
    child.on('exit', (code) => reject(new Error('storjnetd exited early with ' + code)));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const m = line.match(/^node (\d+) id=[0-9a-f]+ .* api=(\S+)/);
      if (m) apis[Number(m[1])] = m[2];
      if (/nodes ready$/.test(line)) {
        clearTimeout(timer);
        resolve(apis);
      }
    });
  });
  return { child, ready };
}

async function main() {
  const puppeteer = loadPuppeteer();
  const executablePath = chromiumPath();
  fs.mkdirSync(shotDir, { recursive: true });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'storjnet-ui-'));
  const token = crypto.randomBytes(16).toString('hex');
  const daemon = startDaemon(dataDir, token);
  let browser;
  try {
    const apis = await daemon.ready;
    const api = apis[0];

    // The API side first: the data needs the token; the page's files do not; web-page requests are refused.
    if ((await request(api + '/api/status')).status !== 401) fail('GET /api/status without the token was not refused');
    if ((await request(api + '/api/status?token=' + token)).status !== 401) fail('a token in the query string was accepted');
    const cross = await request(api + '/api/status', { headers: { Authorization: 'Bearer ' + token, Origin: 'http://evil.example' } });
    if (cross.status !== 403) fail('GET /api/status from another origin answered ' + cross.status);
    const page0 = await request(api + '/ui');
    if (page0.status !== 200 || !page0.body.includes('<title>')) fail('GET /ui answered ' + page0.status);

    // Every node joined: node 0 sees the other two.
    const id = await rpc(api, token, 'dht_id');
    const peers = await until('node 0 to hold every other node', async () => {
      const p = await rpc(api, token, 'dht_peers');
      return p.length === NODES - 1 && p;
    });

    // Something to show: a subscription with events, a stored value (lookups), an inbound stream with unread
    // bytes. Events are published until one arrives (a subscription needs a moment to reach the network).
    await rpc(api, token, 'pubsub_subscribe', ['news']);
    let n = 0;
    await until('a pubsub event at node 0', async () => {
      await rpc(apis[1], token, 'pubsub_publish', ['news', { n: ++n, text: 'hello from node 1' }]);
      const st = JSON.parse((await request(api + '/api/status', { headers: { Authorization: 'Bearer ' + token } })).body);
      return st.subscriptions[0].events > 0;
    });
    for (let i = 0; i < 5; ++i) await rpc(api, token, 'dht_put', ['greeting-' + i, { hello: 'world', i }]);
    const sid = await rpc(apis[1], token, 'stream_open', [id]);
    if (!sid) fail('stream_open from node 1 to node 0 failed');
    if ((await rpc(apis[1], token, 'stream_write', [sid, 'ab'.repeat(20000)])) !== 20000) fail('stream_write fell short');

    const args = process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [];
    browser = await puppeteer.launch({ executablePath, headless: true, args: [...args, '--window-size=1360,900'] });
    const page = await browser.newPage();
    await page.setViewport({ width: 1360, height: 900 });
    const problems = [];
    page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
    page.on('pageerror', (e) => problems.push('page error: ' + e.message));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
    page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
    const check = (where) => { if (problems.length) fail(where + ':\n  ' + problems.join('\n  ')); };

    await page.goto(`${api}/ui#token=${token}`, { waitUntil: 'load' });
    const wait = (what, fn, ...a) => page.waitForFunction(fn, { timeout: WAIT_MS, polling: 100 }, ...a)
      .catch((e) => fail(`page: timed out waiting for ${what} (${e.message})`));
    await wait('the node id', (want) => document.getElementById('node-id')?.textContent === want, id);
    await wait('the peer count', (want) => document.getElementById('peer-count')?.textContent === want, String(peers.length));
    if (await page.evaluate(() => location.hash) !== '') fail('the token stayed in the address bar');
    // A chart updates: it draws points, then newer ones.
    await wait('the first chart points', () => Number(document.getElementById('chart-datagrams').dataset.points) > 0);
    const t0 = await page.evaluate(() => Number(document.getElementById('chart-datagrams').dataset.lastT));
    await wait('the chart to move', (t) => Number(document.getElementById('chart-datagrams').dataset.lastT) > t, t0);
    await wait('the event', () => document.getElementById('subscriptions').textContent.includes('hello from node 1'));
    await wait('the inbound stream', () => [...document.querySelectorAll('#streams tbody tr')]
      .some((tr) => tr.cells[2]?.textContent === 'in' && tr.cells[3]?.textContent === '19.5 KiB'));
    // Enough history for the screenshot to show lines (ten seconds, sampled once a second).
    await wait('ten seconds of history', () => Number(document.getElementById('chart-datagrams').dataset.points) >= 20);
    const buckets = await page.evaluate(() => document.querySelectorAll('#routing .bucket').length);
    if (buckets < 1) fail('the routing table picture is empty');
    check('status page');
    await page.screenshot({ path: path.join(shotDir, 'status.png'), fullPage: true });

    // The network view: every node, its edges, and one click to another node's page.
    await page.goto(`${api}/ui/network`, { waitUntil: 'load' });
    await wait('every node in the graph', (n) => document.querySelectorAll('#net .net-node').length === n, NODES);
    await wait('routing-table edges', () => Number(document.getElementById('net').dataset.edges) > 0);
    check('network view');
    await page.screenshot({ path: path.join(shotDir, 'network.png'), fullPage: true });
    const id1 = await rpc(apis[1], token, 'dht_id');
    await Promise.all([page.waitForNavigation({ waitUntil: 'load', timeout: WAIT_MS }),
                       page.click('#net .net-node[data-index="1"]')]);
    if (new URL(page.url()).port !== new URL(apis[1]).port) fail('the click did not open node 1: ' + page.url());
    await wait("node 1's id on its page", (want) => document.getElementById('node-id')?.textContent === want, id1);
    check("node 1's page");
    // Without the fragment the page asks for the token, says so when it is wrong, and takes the right one.
    const fresh = await (await browser.createBrowserContext()).newPage();
    const freshErrors = [];
    fresh.on('pageerror', (e) => freshErrors.push(e.message));
    await fresh.goto(`${api}/ui`, { waitUntil: 'load' });
    const waitFresh = (what, fn) => fresh.waitForFunction(fn, { timeout: WAIT_MS, polling: 100 })
      .catch((e) => fail(`token prompt: timed out waiting for ${what} (${e.message})`));
    await waitFresh('the token form', () => !document.getElementById('token-form-box').hidden);
    await fresh.type('#token-input', 'not-the-token');
    await fresh.click('#token-form button');
    await waitFresh('the refusal', () => !document.getElementById('token-error').hidden);
    await fresh.type('#token-input', token);
    await fresh.click('#token-form button');
    await waitFresh('the page with the right token', () => document.getElementById('node-id').textContent.length === 40);
    if (freshErrors.length) fail('token prompt: ' + freshErrors.join('; '));
    console.log(`Browser.StatusPage: ok (node ${id.slice(0, 8)}, ${peers.length} peers); screenshots in ${shotDir}`);
  } finally {
    if (browser) await browser.close();
    const exited = new Promise((r) => daemon.child.once('exit', (code) => r(code)));
    if (daemon.child.exitCode === null) daemon.child.kill('SIGTERM');
    const code = daemon.child.exitCode ?? (await exited);
    fs.rmSync(dataDir, { recursive: true, force: true });
    if (code !== 0) fail('storjnetd exited with ' + code + ' after SIGTERM');
  }
}

main().catch((e) => {
  console.error('Browser.StatusPage: FAILED: ' + (e.stack || e));
  process.exit(1);
});
