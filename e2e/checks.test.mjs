// Browser end-to-end test of the "Run automated check" button against a real lab: a private
// Kamailio+SIPp lab where alice has registered (SIPp) and called the echo service, a real
// `dialtone serve` configured for that lab, and an L1 agent in headless chromium who runs the
// checks of l1.connection_status, l1.force_reconnection and l1.echo_call and accepts what they
// propose (a check proposes; only the agent answers), then overrides one and revises it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  root, shots, startLab, stopLab, writeLabConfig, runSipp, dialtoneBin, addUsers, startServer,
  launchBrowser, login,
} from './helpers.mjs';

const PASSWORD = 'e2e checks password';
const CHECK_WAIT = 60_000;

let work;
let runDir;
let lab;
let server;
let base;
let browser;
let alicePort;
const timings = {};

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'dialtone-e2e-checks-'));
  runDir = join(work, 'lab');
  mkdirSync(runDir);
  let t = Date.now();
  lab = await startLab(runDir);
  timings.lab_start_ms = Date.now() - t;
  const config = writeLabConfig(runDir);

  // alice registers from her own SIPp port, then calls the echo number.
  t = Date.now();
  const reg = await runSipp(lab, 'register.xml', 'alice', { expires: '300' });
  assert.equal(reg.status, 0, `alice's REGISTER failed: ${reg.out}`);
  alicePort = reg.port;
  const call = await runSipp(lab, 'call.xml', 'alice', { target: lab.LAB_ECHO_NUMBER || '600' }, ['-d', '500']);
  assert.equal(call.status, 0, `alice's echo call failed: ${call.out}`);
  timings.sipp_ms = Date.now() - t;

  const bin = dialtoneBin();
  const dataDir = join(work, 'data');
  addUsers(bin, dataDir, [['lena', 'l1']], PASSWORD);
  ({ child: server, base } = await startServer(bin,
    ['--data-dir', dataDir, 'serve', '--listen', '127.0.0.1:0', '--config', config]));
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server && server.exitCode === null) server.kill('SIGTERM');
  stopLab(runDir);
  if (work) rmSync(work, { recursive: true, force: true });
  console.log(`timings: ${JSON.stringify(timings)}`);
});

// Clicks "Run automated check" on the current step and waits for the page it leads to.
async function runCheck(page, step) {
  await page.waitForSelector(`article.step[data-step="${step}"]`);
  const t = Date.now();
  await Promise.all([
    page.waitForURL(/msg=Check/, { timeout: CHECK_WAIT }),
    page.click('form.check-form button[type=submit]'),
  ]);
  timings[step in timings ? `${step} (again)` : step] = Date.now() - t;
  return (await page.textContent('.flash.ok')) || '';
}

// Accepts the proposal shown on the step page and waits for the recorded answer.
async function accept(page, step) {
  const box = page.locator(`article.step[data-step="${step}"] .proposal`);
  assert.equal(await box.count(), 1, `a proposal for ${step}`);
  await Promise.all([page.waitForURL(/msg=Recorded/), box.locator('button.accept').click()]);
}

// The "Path so far" entry of a step: its text and its source badge.
async function pathEntry(page, step) {
  const li = page.locator(`ol.path li[data-step="${step}"]`);
  assert.equal(await li.count(), 1, `one path entry for ${step}`);
  return { text: await li.textContent(), source: await li.locator('.src').getAttribute('data-source') };
}

test('L1 lets the automated checks answer the first steps against a real lab', { timeout: 300_000 }, async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(20_000);
  await login(page, base, 'lena', PASSWORD);
  await page.click('text=Open incident');
  await page.fill('input[name=account]', 'alice');
  await page.fill('input[name=reporter]', 'Alice Liddell');
  await page.fill('textarea[name=description]', 'Cannot call anyone since this morning.');
  await page.check('input[name="gate.gate.operational_requirements"][value=no]');
  await page.check('input[name="gate.gate.client_error"][value=none]');
  await Promise.all([page.waitForURL(/\/incidents\/\d+$/), page.click('form.card button[type=submit]')]);

  const incidentUrl = page.url();

  // l1.connection_status: the check reads the registrar and answers "connected" with what alice's
  // real REGISTER left there: her source address and port, the transport and her Contact.
  const f1 = await runCheck(page, 'l1.connection_status');
  assert.match(f1, /The automated check of .Connection status. proposes .Connected/);
  assert.match(await page.textContent('.proposal'), /registered from 127\.0\.0\.1:\d+ over udp/);
  assert.equal(await page.locator('ol.path li[data-step="l1.connection_status"]').count(), 0,
    'a proposal answers nothing by itself');
  await accept(page, 'l1.connection_status');
  await page.waitForSelector('article.step[data-step="l1.force_reconnection"]');
  const p1 = await pathEntry(page, 'l1.connection_status');
  assert.match(p1.text, /Connected \(registered\)/);
  assert.equal(p1.source, 'automated');
  assert.match(p1.text, new RegExp(`registered from 127\\.0\\.0\\.1:${alicePort} over udp`));
  assert.match(p1.text, new RegExp(`contact sip:alice@127\\.0\\.0\\.1:${alicePort}\\b`));
  assert.match(p1.text, /expires in \d+ s/);
  await page.screenshot({ path: join(shots, 'check-connection.png'), fullPage: true });

  // l1.force_reconnection: the latest REGISTER was accepted.
  const f2 = await runCheck(page, 'l1.force_reconnection');
  assert.match(f2, /proposes .Yes: it connected/);
  await accept(page, 'l1.force_reconnection');
  await page.waitForSelector('article.step[data-step="l1.echo_call"]');
  const p2 = await pathEntry(page, 'l1.force_reconnection');
  assert.equal(p2.source, 'automated');
  assert.match(p2.text, /latest REGISTER was accepted \(200\)/);

  // l1.echo_call: dialtone's own echo call with real RTP, plus alice's echo call from the CDRs.
  const f3 = await runCheck(page, 'l1.echo_call');
  assert.match(f3, /proposes .It works/);
  await accept(page, 'l1.echo_call');
  await page.waitForSelector('article.step[data-step="l1.call_other_user"]');
  const p3 = await pathEntry(page, 'l1.echo_call');
  assert.equal(p3.source, 'automated');
  assert.match(p3.text, /It works/);
  const echo = p3.text.match(/(\d+) of (\d+) RTP packets came back \(loss ([\d.]+)%/);
  assert.ok(echo, `no packet figures in: ${p3.text}`);
  assert.ok(Number(echo[2]) > 0 && Number(echo[1]) >= Number(echo[2]) * 0.9, `echoed ${echo[1]} of ${echo[2]}`);
  assert.match(p3.text, /the user's latest echo call was answered \(200\)/);
  await page.screenshot({ path: join(shots, 'check-echo.png'), fullPage: true });

  // l1.call_other_user: alice has called nobody else, so the check is not conclusive: the step
  // stays with the agent and the evidence is on the page.
  const f4 = await runCheck(page, 'l1.call_other_user');
  assert.match(f4, /was not conclusive: .*Answer it yourself/);
  await page.waitForSelector('article.step[data-step="l1.call_other_user"]');
  assert.equal(await page.locator('.proposal').count(), 0, 'nothing to accept');
  const ev = page.locator('.evidence .evidence-item').first();
  assert.match(await ev.locator('.evidence-head').textContent(), /no call to another user/);
  const evJson = JSON.parse(await ev.locator('details.raw pre').textContent());
  assert.deepEqual(evJson.data.calls, []);
  assert.equal(await page.locator('ol.path li').count(), 5);
  await page.screenshot({ path: join(shots, 'check-step-page.png'), fullPage: true });

  // alice now calls bob, who is not registered; the same check finds that failed call and answers.
  const bob = lab.LAB_ACCOUNT_BOB_NUMBERS.split(',')[0];
  await runSipp(lab, 'call.xml', 'alice', { target: bob }, ['-d', '500']);
  const f5 = await runCheck(page, 'l1.call_other_user');
  assert.match(f5, /proposes .No/);
  assert.match(await page.textContent('.proposal'), new RegExp(`none answered \\(latest to ${bob}: 480 `));
  // The agent knows better (the user says calls to others work now): overriding the proposal.
  await Promise.all([
    page.waitForURL(/msg=Recorded/),
    page.click('form.answer-form button[name=answer][value=yes]'),
  ]);
  const p4 = await pathEntry(page, 'l1.call_other_user');
  assert.equal(p4.source, 'agent');
  // ...and then revising it back to what the check said: the old answer stays, struck through.
  await page.locator('ol.path li[data-step="l1.call_other_user"] details.revise summary').click();
  await page.selectOption('ol.path li[data-step="l1.call_other_user"] select[name=answer]', 'no');
  await Promise.all([
    page.waitForURL(/msg=Revised/),
    page.click('ol.path li[data-step="l1.call_other_user"] details.revise button[type=submit]'),
  ]);
  assert.equal(await page.locator('ol.path li.superseded').count(), 1, 'the overridden answer is kept, superseded');
  await page.goto(incidentUrl);
  await page.waitForSelector('article.step[data-step="l1.outgoing_trunks"]');
  await page.screenshot({ path: join(shots, 'check-trunks.png'), fullPage: true });

  await ctx.close();

  // The README shows the step page with an automated check's evidence.
  mkdirSync(join(root, 'docs'), { recursive: true });
  copyFileSync(join(shots, 'check-step-page.png'), join(root, 'docs', 'step-page.png'));
});
