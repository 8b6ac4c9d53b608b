// The page in a real browser: Debian's Chromium driven by playwright-core, against web/dist
// served on 127.0.0.1 by the tiny static server below. Run by tests/web.rs, which prepares the
// inputs, then checks the ZIP against the CLI and with exiftool:
//   node web/test/browser.mjs CONFIG.json
// CONFIG: { dist, folder, leaky, bad: [paths], more: [paths], big, out, chromium, settings }
// It writes OUT/web.zip, OUT/screenshot.png, OUT/bad.png and prints one JSON line of findings.

import { createServer } from 'node:http';
import { readFileSync, createReadStream, existsSync, statSync, writeFileSync } from 'node:fs';
import { join, extname, normalize } from 'node:path';
import { chromium } from 'playwright-core';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css',
  '.wasm': 'application/wasm', '.png': 'image/png',
};

const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const path = normalize(join(config.dist, decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname)));
  if (!path.startsWith(config.dist) || !existsSync(path) || !statSync(path).isFile()) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': TYPES[extname(path)] || 'application/octet-stream' });
  createReadStream(path).pipe(res);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: config.chromium,
  headless: true,
  // No sandbox (CI runs as root); nothing in the background may reach for the network (this
  // machine has none, and any request would be recorded below).
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--disable-default-apps', '--no-first-run', '--disable-domain-reliability',
    '--disable-client-side-phishing-detection', '--metrics-recording-only', '--no-pings'],
});
const result = { origin, requests: [], afterLoad: [], failures: [] };
const fail = (what) => result.failures.push(what);
try {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 900 } });
  // Every request the page or its workers make, recorded.
  let loaded = false;
  context.on('request', (r) => {
    result.requests.push(r.url());
    if (loaded) result.afterLoad.push(r.url());
  });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') result.failures.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => fail(`page error: ${e.message}`));
  // Long tasks on the main thread, from the first moment.
  await page.addInitScript(() => {
    window.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longTasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  });
  await page.goto(`${origin}/`);
  await page.waitForSelector('body[data-engine]', { timeout: 60000 });
  if ((await page.getAttribute('body', 'data-engine')) !== 'ready') fail('the engine did not start');
  loaded = true;
  // From here on the page has no network at all: everything below must work offline.
  await context.setOffline(true);
  result.csp = await page.getAttribute('meta[http-equiv=Content-Security-Policy]', 'content');
  result.workers = await page.evaluate(() => navigator.hardwareConcurrency);

  // Settings, as a person sets them.
  const s = config.settings;
  await page.selectOption('select[name=preset]', s.preset);
  await page.fill('input[name=text]', s.text);
  await page.fill('input[name=notice]', s.notice);
  await page.fill('input[name=rights]', s.rights);
  await page.selectOption('select[name=perturb]', s.perturb);
  await page.dispatchEvent('#form', 'change');

  // The folder, through the folder picker.
  await page.setInputFiles('#pick-folder', config.folder);
  const folderName = config.folder.split('/').pop();
  const gpsItem = page.locator(`li[data-name="${folderName}/${config.leaky}"] .leaks li[data-category=gps]`);
  await gpsItem.waitFor({ timeout: 60000 });
  result.gpsShown = await gpsItem.innerText();
  result.serialShown = await page.locator(`li[data-name="${folderName}/${config.leaky}"] .leaks li[data-category=serial]`).allInnerTexts();
  result.ownerShown = await page.locator(`li[data-name="${folderName}/${config.leaky}"] .leaks li[data-category=owner]`).allInnerTexts();
  result.listed = await page.locator('#files > li').evaluateAll((lis) => lis.map((li) => li.dataset.name));
  // Settings survive a reload (localStorage).
  result.savedSettings = await page.evaluate(() => localStorage.getItem('photoshield.settings.v1'));

  // Protect all; the main thread must stay responsive.
  const before = await page.evaluate(() => performance.now());
  await page.click('#protect');
  await page.waitForSelector('body[data-batch=done]', { timeout: 300000 });
  result.batchStates = await page.locator('#files > li').evaluateAll((lis) => lis.map((li) => [li.dataset.name, li.dataset.state, li.querySelector('.state').textContent]));
  result.longTasks = await page.evaluate((t) => window.__longTasks.filter((e) => e.start >= t), before);
  // The preview of the first photo, then the page as a person sees it.
  await page.waitForFunction(() => document.getElementById('after').complete && document.getElementById('after').naturalWidth > 0, null, { timeout: 60000 });
  await page.waitForFunction(() => document.getElementById('crop').complete && document.getElementById('crop').naturalWidth > 0, null, { timeout: 60000 });
  await page.screenshot({ path: join(config.out, 'screenshot.png'), fullPage: true });

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#zip')]);
  result.zipName = download.suggestedFilename();
  await download.saveAs(join(config.out, 'web.zip'));

  // Bad inputs, picked as files: each fails with its own message, the batch goes on.
  await page.click('#clear');
  const picked = [...config.bad, join(config.folder, config.leaky), ...config.more];
  await page.setInputFiles('#pick-files', picked);
  await page.waitForFunction((n) => document.querySelectorAll('#files > li').length === n, picked.length);
  await page.evaluate(() => { delete document.body.dataset.batch; });
  await page.click('#protect');
  await page.waitForSelector('body[data-batch=done]', { timeout: 120000 });
  result.badStates = await page.locator('#files > li').evaluateAll((lis) => lis.map((li) => [li.dataset.name, li.dataset.state, li.querySelector('.state').textContent, li.querySelector('.download a')?.getAttribute('download') ?? null]));
  await page.screenshot({ path: join(config.out, 'bad.png'), fullPage: true });

  // Speed: one large JPEG, default options (no preset, nothing drawn), on one worker (one photo
  // goes to one worker). The best of five runs, as the worker timed the pipeline.
  if (config.big) {
    await page.click('#clear');
    await page.selectOption('select[name=preset]', '');
    await page.fill('input[name=text]', '');
    await page.fill('input[name=notice]', '');
    await page.fill('input[name=rights]', '');
    await page.selectOption('select[name=perturb]', '');
    await page.dispatchEvent('#form', 'change');
    await page.setInputFiles('#pick-files', config.big);
    await page.waitForSelector('#files > li[data-state=ready]', { timeout: 120000 });
    // Let the preview finish before timing.
    await page.waitForFunction(() => !document.getElementById('preview-note').textContent.startsWith('making'), null, { timeout: 120000 });
    const times = [];
    for (let i = 0; i < 5; i++) {
      await page.evaluate(() => { delete document.body.dataset.batch; });
      const t = await page.evaluate(() => performance.now());
      await page.click('#protect');
      await page.waitForSelector('body[data-batch=done]', { timeout: 300000 });
      const state = await page.locator('#files > li').evaluateAll((lis) => lis.map((li) => [li.dataset.state, li.querySelector('.state').textContent]));
      if (state[0][0] !== 'done') { fail(`the large JPEG failed: ${state[0][1]}`); break; }
      times.push(Number(/(\d+) ms/.exec(state[0][1])[1]));
      const lt = await page.evaluate((t0) => window.__longTasks.filter((e) => e.start >= t0), t);
      result.longTasks.push(...lt);
    }
    result.bigMs = times;
  }
  result.maxLongTask = Math.max(0, ...result.longTasks.map((e) => e.duration));
  await context.close();
} catch (err) {
  fail(`${err.stack || err}`);
} finally {
  await browser.close();
  server.close();
}
writeFileSync(join(config.out, 'result.json'), JSON.stringify(result, null, 1));
console.log(JSON.stringify(result));
