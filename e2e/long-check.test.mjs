// The long-check script of the web UI (crates/web/static/app.js) in headless chromium, against a
// tiny loopback server whose check answers slowly: while a form marked data-long-check runs, the
// page's answer buttons are disabled, the elapsed seconds count up, and Cancel puts the page back;
// when the check answers with a redirect, the browser follows it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, launchBrowser } from './helpers.mjs';

const APP_JS = readFileSync(join(root, 'crates', 'web', 'static', 'app.js'), 'utf8');
const PAGE = `<!doctype html><html lang="en"><head><title>step</title>
<script src="/static/app.js" defer></script></head><body><main>
<form method="post" action="/check" class="check-form" data-long-check="30">
  <input type="hidden" name="csrf" value="t0ken">
  <button type="submit" id="run">Run automated check</button>
</form>
<form method="post" action="/answer" class="answer-form">
  <button type="submit" name="answer" value="yes" id="yes">Yes</button>
  <button type="submit" name="answer" value="no" id="no">No</button>
  <button type="button" id="keep" data-keep-enabled>Help</button>
</form>
</main></body></html>`;

let server;
let base;
let browser;
let delayMs = 4000;
const posted = [];

before(async () => {
  server = createServer((req, res) => {
    if (req.url === '/static/app.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
      res.end(APP_JS);
    } else if (req.url === '/step' || req.url.startsWith('/step?')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE.replace('<title>step</title>', `<title>${req.url}</title>`));
    } else if (req.url === '/check' && req.method === 'POST') {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => {
        posted.push(body);
        const t = setTimeout(() => { res.writeHead(303, { location: '/step?msg=Check' }); res.end(); }, delayMs);
        res.on('close', () => clearTimeout(t));
      });
    } else {
      res.writeHead(404); res.end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.close();
});

test('a long check disables the answers, counts seconds, can be cancelled, and follows its answer', { timeout: 60_000 }, async () => {
  const page = await browser.newPage();
  page.setDefaultTimeout(15_000);
  await page.goto(`${base}/step`);

  // Running: answers disabled (not the marked one), seconds counting, a Cancel button.
  await page.click('#run');
  await page.waitForSelector('[data-check-status] [data-check-cancel]');
  assert.equal(await page.isDisabled('#yes'), true);
  assert.equal(await page.isDisabled('#no'), true);
  assert.equal(await page.isDisabled('#run'), true);
  assert.equal(await page.isDisabled('#keep'), false);
  await page.waitForFunction(() => /Running the check… [1-9]\d* s/.test(document.querySelector('[data-check-status]').textContent));
  assert.match(posted[0], /csrf=t0ken/);

  // Cancel: the page as it was, and it says so; nothing navigates later.
  await page.click('[data-check-cancel]');
  assert.equal(await page.isDisabled('#yes'), false);
  assert.equal(await page.isDisabled('#run'), false);
  assert.match(await page.textContent('[data-check-status]'), /Check cancelled/);
  await page.waitForTimeout(delayMs + 500);
  assert.equal(new URL(page.url()).pathname, '/step');
  assert.equal(new URL(page.url()).search, '');

  // Run again and let it finish: the redirect is followed.
  delayMs = 1500;
  await Promise.all([page.waitForURL(/msg=Check/), page.click('#run')]);
  assert.equal(posted.length, 2);
  await page.close();
});
