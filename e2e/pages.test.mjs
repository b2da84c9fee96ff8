// Every page type of the web app at 1366x900 and at 390x844 (a phone): no horizontal scrolling,
// no step id or raw runbook value in the visible text (outside the engineers' details), and no
// serious or critical axe-core violation. Screenshots of each page go to docs/screenshots/.
//
// Engineers' details (excluded from the text check): <details class="eng">, elements with class
// "eng-line" or the attribute data-eng, and the path's raw evidence (<details class="path-evidence">).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root, dialtoneBin, addUsers, startServer, launchBrowser, login } from './helpers.mjs';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const PASSWORD = 'e2e pages password';
const DOCS = join(root, 'docs', 'screenshots');
const CAPTURE = join(root, 'crates', 'captures', 'test_data', 'lab_udp.pcap');
const VIEWPORTS = [['desktop', { width: 1366, height: 900 }], ['mobile', { width: 390, height: 844 }]];
const ENG = 'details.eng, details.path-evidence, .eng-line, [data-eng]';

let work;
let server;
let base;
let browser;

// Ids and raw values a reader must never see: runbook and step ids, outcome ids, escalation
// kinds, answer values with an underscore (all read from the runbooks), and stored status names.
function forbiddenWords() {
  const words = new Set(['waiting_user', 'closed_after_fix', 'closed_not_an_issue', 'out_of_scope']);
  const dir = join(root, 'runbooks');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.toml'))) {
    let section = '';
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      const s = line.match(/^\[+([^\]]+)\]+/);
      if (s) { section = s[1]; if (section.startsWith('escalations.')) words.add(section.slice(12)); continue; }
      const kv = line.match(/^([a-z_]+) = "([^"]*)"$/);
      if (!kv) continue;
      const [, key, value] = kv;
      if (section === 'entries') words.add(key);
      if (key === 'id' && section === '') words.add(value); // the runbook's id, e.g. user-cant-call
      if (key === 'id' && section === 'steps') words.add(value);
      if (key === 'id' && section === 'outcomes') words.add(value);
      if (['value', 'default', 'kind', 'outcome'].includes(key) && value.includes('_')) words.add(value);
      if (['next', 'start'].includes(key)) words.add(value);
    }
  }
  return [...words];
}
const FORBIDDEN = forbiddenWords();
const FORBIDDEN_RE = new RegExp(`(^|[^\\w.-])(${FORBIDDEN.map((w) => w.replace(/[.]/g, '\\.')).join('|')})(?![\\w-])`);

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'dialtone-e2e-pages-'));
  const bin = dialtoneBin();
  const dataDir = join(work, 'data');
  addUsers(bin, dataDir, [['lena', 'l1'], ['leo', 'l2'], ['root', 'admin']], PASSWORD);
  ({ child: server, base } = await startServer(bin, ['--data-dir', dataDir, 'serve', '--listen', '127.0.0.1:0']));
  browser = await launchBrowser();
  mkdirSync(DOCS, { recursive: true });
});

after(async () => {
  if (browser) await browser.close();
  if (server && server.exitCode === null) server.kill('SIGTERM');
  if (work) rmSync(work, { recursive: true, force: true });
});

// Checks the page as loaded now at each viewport; returns the problems found.
async function checkPage(page, name, url, shoot = true) {
  const problems = [];
  for (const [vp, size] of VIEWPORTS) {
    await page.setViewportSize(size);
    const res = await page.goto(url);
    const where = `${name} @${vp}`;
    if (!res) { problems.push(`${where}: no response`); continue; }
    const m = await page.evaluate((eng) => {
      const hidden = [];
      document.querySelectorAll(eng).forEach((el) => { hidden.push([el, el.style.display]); el.style.display = 'none'; });
      const text = document.body.innerText;
      hidden.forEach(([el, d]) => { el.style.display = d; });
      return {
        text,
        scrollWidth: document.scrollingElement.scrollWidth,
        innerWidth: window.innerWidth,
        widest: [...document.querySelectorAll('main *')]
          .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
          .slice(0, 3)
          .map((el) => `${el.tagName.toLowerCase()}.${el.className}`),
      };
    }, ENG);
    if (m.scrollWidth > m.innerWidth) {
      problems.push(`${where}: page scrolls sideways (${m.scrollWidth} > ${m.innerWidth}; widest: ${m.widest.join(', ')})`);
    }
    for (const line of m.text.split('\n')) {
      const hit = line.match(FORBIDDEN_RE);
      if (hit) problems.push(`${where}: raw id "${hit[2]}" in: ${line.trim().slice(0, 160)}`);
      const version = line.match(/\bversion \d+\b/);
      if (version) problems.push(`${where}: the record version "${version[0]}" shown in: ${line.trim().slice(0, 160)}`);
    }
    await page.evaluate(AXE);
    const violations = await page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ['violations'] });
      return r.violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
    });
    for (const v of violations) problems.push(`${where}: axe ${v}`);
    if (shoot) await page.screenshot({ path: join(DOCS, `${name}-${vp}.png`) });
  }
  return problems;
}

test('every page fits 1366 and 390 px, speaks words not ids, and passes axe', { timeout: 300_000 }, async () => {
  const ctx = await browser.newContext({ viewport: VIEWPORTS[0][1], bypassCSP: true });
  const page = await ctx.newPage();
  page.setDefaultTimeout(20_000);
  const problems = [];
  const check = async (name, url, shoot) => { problems.push(...await checkPage(page, name, url, shoot)); };

  await check('login', `${base}/login`);

  // --- L1: opens an incident for alice, attaches her capture, walks to the escalation.
  await login(page, base, 'lena', PASSWORD);
  await check('new-incident', `${base}/incidents/new`);
  await page.setViewportSize(VIEWPORTS[0][1]);
  await page.goto(`${base}/incidents/new`);
  await page.fill('input[name=account]', 'alice');
  await page.fill('input[name=reporter]', 'Alice Liddell');
  await page.fill('textarea[name=description]', 'Cannot call anyone since this morning; no error shown.');
  await page.check('input[name="gate.gate.operational_requirements"][value=no]');
  await page.check('input[name="gate.gate.client_error"][value=none]');
  await Promise.all([page.waitForURL(/\/incidents\/\d+$/), page.click('form.card button[type=submit]')]);
  const incident = page.url();
  const id = incident.match(/\/incidents\/(\d+)$/)[1];
  await page.setInputFiles('input[type=file][name=file]', CAPTURE);
  await Promise.all([page.waitForURL(/msg=Attached/), page.click('form:has(input[type=file]) button[type=submit]')]);
  await check('step', incident);

  const view = await page.getAttribute('a[href*="/attachments/"][href$="/view"]', 'href');
  assert.ok(view, 'the step page links to the capture view');
  await check('capture', `${base}${view}`);
  // The account's calls only, failed ones first, each with a jump to its ladder.
  await page.setViewportSize(VIEWPORTS[0][1]);
  await page.goto(`${base}${view}`);
  const results = await page.locator('table.calls tbody td.result').allTextContents();
  assert.ok(results.length > 0, 'calls listed');
  assert.match(results[0], /^Failed/, 'failed first');
  assert.ok(!(await page.locator('table.calls').textContent()).includes('dave'), 'another account filtered out');
  const jump = await page.getAttribute('table.calls a[href^="#ladder-"] >> nth=0', 'href');
  assert.equal(await page.locator(`figure${jump}`).count(), 1, 'the jump link has its ladder');

  for (const [step, value] of [['l1.connection_status', 'connected'], ['l1.force_reconnection', 'fine'], ['l1.echo_call', 'fails']]) {
    await page.goto(incident);
    await page.waitForSelector(`article.step[data-step="${step}"]`);
    await Promise.all([page.waitForURL(/msg=/), page.click(`form.answer-form button[name=answer][value=${value}]`)]);
  }
  await check('escalate', `${base}/incidents/${id}/escalate`);
  await page.setViewportSize(VIEWPORTS[0][1]);
  await page.goto(`${base}/incidents/${id}/escalate`);
  assert.match(await page.textContent('.say:not([hidden])'), /second-level team/);
  await page.fill('textarea[name=reason]', 'The echo test fails: server side.');
  await Promise.all([page.waitForURL(/\/incidents\/\d+/), page.click('form.card button[type=submit]')]);

  const tabs = async (level) => {
    await page.goto(`${base}/queue/${level}`);
    return page.locator('nav.tabs a').evaluateAll((as) => as.map((a) => [a.textContent.trim(), a.getAttribute('href')]));
  };
  for (const [label, href] of await tabs('L1')) {
    // Screenshots of the first tab only (the others look alike).
    await check(`queue-l1-${label.toLowerCase().replace(/[^a-z]+/g, '-')}`, `${base}${href}`, label === 'New');
  }
  await ctx.clearCookies();

  // --- L2: the escalated queue, the timeline.
  await login(page, base, 'leo', PASSWORD);
  for (const [label, href] of await tabs('L2')) {
    await check(`queue-l2-${label.toLowerCase().replace(/[^a-z]+/g, '-')}`, `${base}${href}`, label === 'Escalated');
  }
  await check('timeline', `${base}/incidents/${id}/timeline`);
  await ctx.clearCookies();

  // --- admin: the page, a refused form, an error page.
  await login(page, base, 'root', PASSWORD);
  await check('admin', `${base}/admin`);
  await page.setViewportSize(VIEWPORTS[0][1]);
  await page.goto(`${base}/admin`);
  await page.fill('form[action="/admin/users"] input[name=username]', 'lena');
  await page.fill('form[action="/admin/users"] input[name=password]', 'another password');
  await page.click('form[action="/admin/users"] button[type=submit]');
  await page.waitForSelector('.flash.error');
  assert.match(await page.textContent('.flash.error'), /already exists/);
  assert.equal(await page.inputValue('form[action="/admin/users"] input[name=username]'), 'lena');
  assert.equal(await page.locator('header.top').count(), 1, 'the error is inside the normal layout');
  await page.screenshot({ path: join(DOCS, 'admin-refused-desktop.png') });
  await check('error', `${base}/incidents/987654`);
  await check('webhooks', `${base}/admin/webhooks`);
  await check('reports', `${base}/reports`);
  await check('search', `${base}/search?q=alice`);
  await ctx.close();

  assert.deepEqual(problems, [], `\n${problems.join('\n')}`);
});

test('the search box finds an incident by its number and by a word in a note', { timeout: 120_000 }, async () => {
  const ctx = await browser.newContext({ viewport: VIEWPORTS[0][1] });
  const page = await ctx.newPage();
  page.setDefaultTimeout(20_000);
  await login(page, base, 'lena', PASSWORD);
  await page.goto(`${base}/incidents/new`);
  await page.fill('input[name=account]', '390655512345');
  await page.fill('input[name=reporter]', 'Bruno');
  await page.fill('textarea[name=description]', 'Calls to the office fail.');
  await page.check('input[name="gate.gate.operational_requirements"][value=no]');
  await page.check('input[name="gate.gate.client_error"][value=none]');
  await Promise.all([page.waitForURL(/\/incidents\/\d+$/), page.click('form.card button[type=submit]')]);
  const id = page.url().match(/\/incidents\/(\d+)$/)[1];
  await page.fill('form[action$="/notes"] textarea[name=text]', 'The caller heard the Zurich gateway voicemail.');
  await Promise.all([page.waitForURL(/msg=/), page.click('form[action$="/notes"] button[type=submit]')]);

  // From the search box in the header, as an agent would: a word of the note, then the number.
  for (const q of ['zurich', '390655512345']) {
    const box = page.locator('header.top form.search input[name=q]');
    await box.fill(q);
    await Promise.all([page.waitForURL(/\/search\?q=/), box.press('Enter')]);
    const links = await page.locator('main table.list a[href^="/incidents/"]').evaluateAll(
      (as) => as.map((a) => a.getAttribute('href')));
    assert.ok(links.includes(`/incidents/${id}`), `${q}: ${links.join(', ')}`);
  }
  const box = page.locator('header.top form.search input[name=q]');
  await box.fill('nosuchwordanywhere');
  await Promise.all([page.waitForURL(/\/search\?q=/), box.press('Enter')]);
  assert.match(await page.textContent('main'), /No incident matches/);
  await ctx.close();
});
