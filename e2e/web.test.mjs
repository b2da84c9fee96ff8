// Browser end-to-end test of the agents' web app: a real `dialtone serve` (or the web crate's
// serve example), driven by playwright-core through Debian's headless chromium.
// An L1 agent logs in, opens an incident, walks the steps and escalates; an L2 engineer logs in,
// takes it, meets a conflict from a stale tab, and finishes it. Screenshots go to e2e/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const shots = join(here, 'screenshots');
const PASSWORD = 'e2e password 1';
const USERS = [['lena', 'l1'], ['leo', 'l2'], ['root', 'admin']];
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

let server;
let base;
let browser;
let dataDir;

function targetDir() {
  return process.env.CARGO_TARGET_DIR || join(root, 'target');
}

// Starts the server and resolves with its base URL once it prints the address (30 s bound).
function startServer(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    server = child;
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 30_000);
    const onData = (d) => {
      out += d.toString();
      const m = out.match(/http:\/\/(127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); resolve(`http://${m[1]}`); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => { out += d.toString(); });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}): ${out}`)); });
  });
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), 'dialtone-e2e-'));
  const bin = process.env.DIALTONE_BIN;
  if (bin && existsSync(bin)) {
    for (const [name, role] of USERS) {
      const r = spawnSync(bin, ['--data-dir', dataDir, 'user', 'add', name, '--role', role],
        { input: `${PASSWORD}\n`, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, `user add ${name}: ${r.stderr}`);
    }
    base = await startServer(bin, ['--data-dir', dataDir, 'serve', '--listen', '127.0.0.1:0']);
  } else {
    // Until the CLI is built: the web crate's example does the same.
    const example = join(targetDir(), 'debug', 'examples', 'serve');
    const built = spawnSync('cargo', ['build', '-q', '-p', 'web', '--example', 'serve'],
      { cwd: root, stdio: 'inherit', timeout: 590_000 });
    assert.equal(built.status, 0, 'cargo build --example serve');
    const users = USERS.flatMap(([n, r]) => ['--user', `${n}:${r}:${PASSWORD}`]);
    base = await startServer(example, ['--data-dir', dataDir, ...users]);
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });
});

after(async () => {
  if (browser) await browser.close();
  if (server && server.exitCode === null) server.kill('SIGTERM');
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function login(page, name) {
  await page.goto(`${base}/login`);
  await page.fill('input[name=username]', name);
  await page.fill('input[name=password]', PASSWORD);
  await Promise.all([page.waitForURL(/\/queue\//), page.click('button[type=submit]')]);
}

// Shows the header's links on a phone, where they sit behind the menu button.
async function openMenu(page) {
  const toggle = page.locator('button.menu-toggle');
  if (await toggle.isVisible() && (await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click();
}

async function logout(page) {
  await openMenu(page);
  await Promise.all([page.waitForURL(/\/login/), page.click('button:has-text("Log out")')]);
}

async function answer(page, value) {
  await Promise.all([
    page.waitForURL(/msg=Recorded/),
    page.click(`form.answer-form button[name=answer][value=${value}]`),
  ]);
}

// The whole walk, on a desktop and on a phone.
async function walk(viewport, tag, account) {
  const ctx = await browser.newContext({ viewport });
  const page = await ctx.newPage();
  page.setDefaultTimeout(20_000);
  const shot = (name) => join(shots, tag ? `${name}-${tag}.png` : `${name}.png`);

  // --- L1 agent
  await login(page, 'lena');
  await page.screenshot({ path: shot('queue-l1'), fullPage: true });
  await openMenu(page);
  await page.click('text=Open incident');
  await page.fill('input[name=account]', account);
  await page.fill('input[name=reporter]', 'Mario Rossi');
  await page.fill('textarea[name=description]', 'Cannot call anyone since this morning; the app shows no error.');
  await page.check('input[name="gate.gate.operational_requirements"][value=no]');
  await page.check('input[name="gate.gate.client_error"][value=none]');
  await page.screenshot({ path: shot('open-incident'), fullPage: true });
  await Promise.all([page.waitForURL(/\/incidents\/\d+$/), page.click('form.card button[type=submit]')]);
  const incidentUrl = page.url();

  // The guided step page: the question, the words to read, the answers.
  await page.waitForSelector('article.step[data-step="l1.connection_status"]');
  assert.match(await page.textContent('.say'), /Read to the user/);
  await page.fill('textarea[name=note]', 'User on Wi-Fi at the office.');
  await page.screenshot({ path: shot('step-page'), fullPage: true });
  await answer(page, 'connected');
  await page.waitForSelector('article.step[data-step="l1.force_reconnection"]');
  await answer(page, 'fine');
  await page.waitForSelector('article.step[data-step="l1.echo_call"]');
  await answer(page, 'fails');
  await page.waitForSelector('text=The runbook escalates to L2');
  await page.click('a.button:has-text("Escalate to L2")');
  assert.equal(await page.inputValue('select[name=kind]'), 'server_status_check');
  await page.fill('textarea[name=reason]', 'The echo test fails: server side.');
  await page.screenshot({ path: shot('escalate'), fullPage: true });
  await Promise.all([page.waitForURL(/msg=Escalated/), page.click('form.card button[type=submit]')]);
  assert.match(await page.textContent('.incident-head'), /L2/);
  // L1 still follows it: under "Escalated by me", and can add a note.
  const id = incidentUrl.match(/\/incidents\/(\d+)$/)[1];
  await page.goto(`${base}/queue/L1?tab=escalated_by_me`);
  assert.equal(await page.locator(`main a[href="/incidents/${id}"]`).count() > 0, true, 'the escalated incident is in L1\'s "Escalated by me"');
  await page.goto(incidentUrl);
  await page.fill('form[action$="/notes"] textarea[name=text]', 'User called back: still failing.');
  await Promise.all([page.waitForURL(/msg=Noted/), page.click('form[action$="/notes"] button[type=submit]')]);
  assert.match(await page.textContent('section.notes'), /still failing/);
  await logout(page);

  // --- L2 engineer
  await login(page, 'leo');
  await page.goto(`${base}/queue/L2?tab=escalated`);
  await page.screenshot({ path: shot('queue-l2'), fullPage: true });
  await Promise.all([page.waitForURL(/\/incidents\/\d+/), page.click(`table.list a[href="/incidents/${id}"] >> nth=0`)]);
  assert.equal(page.url().split('?')[0], incidentUrl);
  await Promise.all([page.waitForURL(/msg=/), page.click('button:has-text("Take it")')]);
  await page.waitForSelector('article.step[data-step="l2.server_services"]');

  // A second tab on the same incident goes stale when the first answers.
  const stale = await ctx.newPage();
  await stale.goto(incidentUrl);
  await answer(page, 'fine');
  await stale.fill('textarea[name=note]', 'typed in the stale tab');
  await stale.click('form.answer-form button[name=answer][value=failure]');
  await stale.waitForSelector('.flash.error');
  assert.match(await stale.textContent('.flash.error'), /was not recorded/);
  assert.equal(await stale.inputValue('textarea[name=note]'), 'typed in the stale tab');
  await stale.screenshot({ path: shot('conflict'), fullPage: true });
  await stale.close();

  await page.waitForSelector('article.step[data-step="l2.network_status"]');
  await answer(page, 'problem');
  await page.waitForSelector('text=Outcome reached');
  await page.fill('form[action$="/close"] textarea[name=note]', 'Customer router had SIP ALG on; disabled.');
  await Promise.all([page.waitForURL(/msg=Closed/), page.click('form.close-form button[type=submit]')]);
  assert.match(await page.textContent('article.closed'), /Network problem/i);
  await page.screenshot({ path: shot('closed'), fullPage: true });
  await page.click('text=Timeline and audit trail');
  const audit = await page.textContent('table.audit');
  for (const action of ['Opened', 'Answered a step', 'Escalated', 'Took the incident', 'Closed']) assert.match(audit, new RegExp(action));
  assert.match(audit, /lena/);
  assert.match(audit, /leo/);
  await page.screenshot({ path: shot('timeline'), fullPage: true });
  await logout(page);

  // --- admin page
  await login(page, 'root');
  await page.goto(`${base}/admin`);
  assert.match(await page.textContent('table.list'), /lena/);
  await page.screenshot({ path: shot('admin'), fullPage: true });
  await ctx.close();
}

test('L1 opens, walks and escalates; L2 takes, meets a stale tab, and closes (1366 px)', { timeout: 180_000 }, async () => {
  await walk({ width: 1366, height: 900 }, '', '1001');
});

test('the same walk on a phone (390 px)', { timeout: 180_000 }, async () => {
  await walk({ width: 390, height: 844 }, 'mobile', '1002');
});
// docs/step-page.png comes from checks.test.mjs (the step page with automated evidence).
