// Shared helpers of the browser end-to-end tests: a private Kamailio+SIPp lab on a free port
// block, SIPp user agents, the dialtone binary and its web server, headless chromium.
// Every wait is bounded; secrets (SIP and user passwords) never go to the test's output.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const here = dirname(fileURLToPath(import.meta.url));
export const root = join(here, '..');
export const shots = join(here, 'screenshots');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

// Resolves true when 127.0.0.1:port can be bound over TCP and UDP right now.
function portFree(port) {
  const tcp = new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
  const udp = new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => { s.close(); resolve(false); });
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
  return Promise.all([tcp, udp]).then(([a, b]) => a && b);
}

// A free UDP port picked by the kernel (it may be taken again before use: callers retry).
export function freeUdpPort() {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// A block of 16 ports (23000-31000, step 16) where all of them bind now.
async function freeBlock() {
  for (let i = 0; i < 50; i++) {
    const base = 23000 + 16 * Math.floor(Math.random() * 500);
    const ports = Array.from({ length: 16 }, (_, k) => base + k);
    const ok = await Promise.all(ports.map(portFree));
    if (ok.every(Boolean)) return base;
  }
  throw new Error('no free block of 16 ports in 23000-31000');
}

// Reads RUN_DIR/lab.env (KEY=VALUE lines, never quoted).
export function readEnv(runDir) {
  const env = {};
  for (const line of readFileSync(join(runDir, 'lab.env'), 'utf8').split('\n')) {
    const m = line.match(/^([A-Z0-9_]+)=(.*)$/);
    if (m) env[m[1]] = m[2];
  }
  return env;
}

// Starts a lab in runDir on a free port block; Kamailio occasionally aborts at start, so up to
// three attempts (each on a fresh block). Returns lab.env as an object.
export async function startLab(runDir) {
  let last = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const b = await freeBlock();
    const env = {
      ...process.env,
      LAB_SIP_PORT: `${b}`, LAB_TLS_PORT: `${b + 1}`, LAB_RPC_PORT: `${b + 2}`,
      LAB_ECHO_PORT: `${b + 3}`, LAB_GW_PORT: `${b + 4}`, LAB_GW2_PORT: `${b + 5}`,
      LAB_MEDIA_BASE: `${b + 8}`,
    };
    const r = spawnSync(join(root, 'lab', 'start.sh'), [runDir],
      { env, encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) return readEnv(runDir);
    last = `${r.error || ''}${r.stdout}${r.stderr}`;
    stopLab(runDir);
  }
  throw new Error(`lab did not start after 3 attempts: ${last}`);
}

export function stopLab(runDir) {
  if (!runDir || !existsSync(runDir)) return;
  spawnSync(join(root, 'lab', 'stop.sh'), [runDir], { encoding: 'utf8', timeout: 30_000 });
}

// Writes the dialtone configuration for the lab (scripts/lab-config.sh) and returns its path.
export function writeLabConfig(runDir) {
  const r = spawnSync(join(root, 'scripts', 'lab-config.sh'), [runDir], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`lab-config.sh failed: ${r.stderr}`);
  const path = join(runDir, 'dialtone.toml');
  writeFileSync(path, r.stdout);
  return path;
}

// Runs one SIPp UAC scenario of lab/sipp as `user` (as testlab's run_sipp does), retrying when
// the picked port was taken meanwhile. Resolves with SIPp's exit status and output.
export async function runSipp(lab, scenario, user, keys = {}, extra = []) {
  const password = lab[`LAB_ACCOUNT_${user.toUpperCase()}_PASSWORD`];
  if (!password) throw new Error(`no password for ${user} in lab.env`);
  let r;
  let port;
  for (let attempt = 0; attempt < 3; attempt++) {
    port = await freeUdpPort();
    const media = await freeUdpPort();
    const args = [lab.LAB_SIP_UDP, '-sf', join(lab.LAB_DIR, 'sipp', scenario),
      '-t', 'u1', '-m', '1', '-nostdin', '-timeout', '15', '-timeout_error',
      '-i', lab.LAB_IP, '-mi', lab.LAB_IP, '-p', `${port}`, '-mp', `${media}`,
      '-key', 'user', user, '-key', 'domain', lab.LAB_DOMAIN,
      '-key', 'contact', keys.contact || `sip:${user}@${lab.LAB_IP}:${port}`,
      '-au', user, '-ap', password];
    for (const [k, v] of Object.entries(keys)) if (k !== 'contact') args.push('-key', k, v);
    args.push(...extra);
    r = spawnSync('sipp', args, { cwd: lab.LAB_RUN_DIR, encoding: 'utf8', timeout: 30_000 });
    if (!(r.stderr || '').includes('Unable to bind')) break;
  }
  return { status: r.status, port, out: `${r.stdout}${r.stderr}`.replaceAll(password, '***') };
}

// The dialtone binary: DIALTONE_BIN, else a debug build in CARGO_TARGET_DIR (built if needed).
export function dialtoneBin() {
  const bin = process.env.DIALTONE_BIN;
  if (bin && existsSync(bin)) return bin;
  const target = process.env.CARGO_TARGET_DIR || '/var/cache/dialtone/target';
  const r = spawnSync('cargo', ['build', '-q', '-p', 'dialtone'], {
    cwd: root, stdio: 'inherit', timeout: 1_200_000, env: { ...process.env, CARGO_TARGET_DIR: target },
  });
  if (r.status !== 0) throw new Error('cargo build -p dialtone failed');
  return join(target, 'debug', 'dialtone');
}

// Creates web users (name, role) with one password (read from stdin by the CLI).
export function addUsers(bin, dataDir, users, password) {
  for (const [name, role] of users) {
    const r = spawnSync(bin, ['--data-dir', dataDir, 'user', 'add', name, '--role', role],
      { input: `${password}\n`, encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`user add ${name}: ${r.stderr}`);
  }
}

// Starts a server and resolves with { child, base } once it prints its address (30 s bound).
export function startServer(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 30_000);
    child.stdout.on('data', (d) => {
      out += d.toString();
      const m = out.match(/http:\/\/(127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); resolve({ child, base: `http://${m[1]}` }); }
    });
    child.stderr.on('data', (d) => { out += d.toString(); });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}): ${out}`)); });
  });
}

export function launchBrowser() {
  mkdirSync(shots, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });
}

export async function login(page, base, name, password) {
  await page.goto(`${base}/login`);
  await page.fill('input[name=username]', name);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL(/\/queue\//), page.click('button[type=submit]')]);
}
