// The admin screens end to end in real headless Chromium (Debian's package, driven by playwright-core)
// against a real `hearth serve` on a real PostgreSQL Atlas: a pull from a loopback file server with
// progress (bytes, speed, time left), a reload mid-pull that still shows it, the chat's model picker
// gaining the model without a reload, a delete confirmed by name; an API key created, copied and
// revoked; a batch job followed to its results; the node's state; axe on every screen; and every
// screen at 390×844. Screenshots go to a temp folder.
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { WEB_DIST } from '../src/http/ui/app.js';
import { generateModel } from './fixtures/gguf/index.js';
import { axeViolations, launchChromium } from './support/browser.js';
import { type HearthDirs, type HearthProcess, hearthDirs, startHearthProcess } from './support/hearth.js';
import { call, jsonlDataset, putFile } from './support/jobs.js';
import { makeTestModels } from './support/models.js';
import { createTestDatabase } from './support/postgres.js';
import { type SlowMirror, startSlowMirror } from './support/slow-mirror.js';
import { importModel, UiClient } from './support/ui-client.js';

/** Screenshots for people to look at, outside the repository. */
const SHOTS = join(tmpdir(), 'hearth-ui-admin-e2e');

let dirs: HearthDirs;
let hearth: HearthProcess;
let database: { url: string; drop(): Promise<void> };
let browser: Browser;
let context: BrowserContext;
let page: Page;
let mirror: SlowMirror;
let source = '';
let gguf: Buffer;

/** What sticks out past the right edge of the screen (nothing may, on a phone): `tag.class` of each. */
const sticksOut = (p: Page) =>
  p.evaluate(() => {
    const doc = (globalThis as any).document;
    const width = doc.documentElement.clientWidth;
    return [...doc.querySelectorAll('body *')]
      .filter((el: any) => el.getBoundingClientRect().right > width + 1)
      .map((el: any) => `${el.tagName.toLowerCase()}.${el.className}`);
  });

async function signIn(p: Page, path: string) {
  await p.goto(`${hearth.url}${path}`);
  await p.getByLabel('User name').fill('alice');
  await p.getByLabel('Password', { exact: true }).fill('correct horse');
  await p.getByRole('button', { name: 'Sign in' }).click();
}

beforeAll(async () => {
  if (!existsSync(join(WEB_DIST, 'index.html'))) {
    throw new Error('web/dist is missing: run `npm run build` before these tests (`npm test` does)');
  }
  await mkdir(SHOTS, { recursive: true });
  dirs = await hearthDirs('hearth-ui-admin-e2e-');
  await mkdir(join(dirs.root, 'models'), { recursive: true });
  const models = await makeTestModels(join(dirs.root, 'models'));
  const pulled = await generateModel({
    path: join(dirs.root, 'pulled.gguf'),
    seed: 9,
    chatTemplate: 'chatml',
    contextLength: 1024,
    name: 'hearth-test-pulled',
  });
  gguf = await readFile(pulled.path);
  // A mirror on loopback that sends the GGUF over about 8 s: long enough to watch and reload mid-pull.
  mirror = await startSlowMirror('/mirror/pulled-model.gguf', gguf, 80);
  source = mirror.url;

  const admin = inject('postgresUrl');
  if (!admin) throw new Error(`PostgreSQL is not running for the tests: ${inject('postgresUnavailable')}`);
  database = await createTestDatabase(admin);
  hearth = await startHearthProcess({ dirs, database: database.url, env: { HEARTH_UI_GENERATE_TITLES: 'false' } });
  await importModel(hearth.url, 'chat', models.chat);
  const client = new UiClient(hearth.url);
  client.csrf = 'x';
  expect((await client.post('/api/ui/setup', { username: 'alice', password: 'correct horse' })).status).toBe(201);
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: hearth.url });
  page = await context.newPage();
  await signIn(page, '/ui/');
  await page.getByRole('textbox', { name: 'Message' }).waitFor();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await hearth?.stop();
  await database?.drop();
  await mirror?.close();
  await dirs?.cleanup();
});

describe('the admin screens in Chromium', () => {
  it('pulls a model with live progress that survives a reload; the chat picker gains it without a reload', async () => {
    // A chat page open beside the Models page, never reloaded.
    const chat = await context.newPage();
    await chat.goto(`${hearth.url}/ui/`);
    const picker = chat.getByRole('combobox', { name: 'Model' });
    await picker.waitFor();
    const offered = () =>
      picker.locator('option').evaluateAll((os) => os.map((o) => (o as unknown as { value: string }).value));
    expect(await offered()).toContain('chat:latest');
    expect(await offered()).not.toContain('pulled-model:latest');

    await page.getByRole('link', { name: 'Admin' }).click();
    await page.getByRole('heading', { name: 'Pull a model' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/ui/admin/models');
    expect(await axeViolations(page)).toEqual([]);

    await page.getByLabel('Model to pull').fill(source);
    await page.getByRole('button', { name: 'Pull', exact: true }).click();
    const progress = page.getByRole('progressbar', { name: 'Pulling pulled-model:latest' });
    await progress.waitFor();
    // Bytes, speed and time left, as the download goes.
    await page.locator('.pull-speed').waitFor();
    await page.locator('.pull-eta').waitFor();
    expect(await page.locator('.pull-bytes').textContent()).toMatch(/^[\d.]+ (B|KB|MB) of [\d.]+ (KB|MB)$/);
    await page.screenshot({ path: join(SHOTS, 'models-pulling-1280x800.png') });

    // The pull is the server's: a reload mid-pull shows it again, still going.
    await page.reload();
    await progress.waitFor();
    const before = Number(await progress.getAttribute('value'));
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(gguf.length);
    await page.getByRole('button', { name: 'Cancel pull' }).waitFor();

    const installed = page.getByRole('list', { name: 'Installed models' });
    await installed.getByText('pulled-model:latest', { exact: true }).waitFor({ timeout: 60_000 });
    await page.locator('.pull.done').first().waitFor();
    const row = installed.getByRole('listitem').filter({ hasText: 'pulled-model:latest' });
    expect(await row.textContent()).toContain('context 1024');
    await row.getByText('completion', { exact: true }).waitFor();
    expect(await axeViolations(page)).toEqual([]);
    await page.screenshot({ path: join(SHOTS, 'models-1280x800.png') });

    // The chat page's picker refreshes by itself (every 10 s, while the tab is visible).
    await chat.bringToFront();
    await chat.waitForFunction(
      () =>
        [...(globalThis as any).document.querySelectorAll('select option')].some(
          (o: { value: string }) => o.value === 'pulled-model:latest',
        ),
      undefined,
      { timeout: 25_000 },
    );
    await page.bringToFront();
    await chat.close();
  });

  it('loads and unloads a model, and deletes one after a confirmation that names what is lost', async () => {
    const installed = page.getByRole('list', { name: 'Installed models' });
    const row = installed.getByRole('listitem').filter({ hasText: 'pulled-model:latest' });
    await row.getByRole('button', { name: 'Load' }).click();
    const loaded = page.getByRole('list', { name: 'Loaded models' });
    await loaded.getByText('pulled-model:latest', { exact: true }).waitFor({ timeout: 60_000 });
    expect(await loaded.textContent()).toMatch(/unloads in \d+ min/);
    await loaded.getByLabel('Keep loaded for').selectOption('-1');
    await loaded.getByRole('button', { name: 'Set keep-alive' }).click();
    await loaded.getByText('kept loaded forever').waitFor();
    await page.getByRole('button', { name: 'Unload pulled-model:latest' }).click();
    await page.getByText('No model is loaded.').waitFor({ timeout: 30_000 });

    await row.getByRole('button', { name: 'Delete pulled-model:latest' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete pulled-model:latest?' });
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain('its GGUF file');
    expect(await axeViolations(page)).toEqual([]);
    await dialog.getByRole('button', { name: 'Delete pulled-model:latest' }).click();
    await installed.getByText('pulled-model:latest', { exact: true }).waitFor({ state: 'detached' });
    expect(await installed.textContent()).toContain('chat:latest');
  });

  it('creates an API key shown once with Copy, lists it, and revokes it', async () => {
    await page.getByRole('link', { name: 'API keys' }).click();
    await page.getByRole('heading', { name: 'New API key' }).waitFor();
    expect(await axeViolations(page)).toEqual([]);
    await page.getByLabel('Key name').fill('n8n');
    await page.getByRole('checkbox', { name: 'jobs' }).check();
    await page.getByRole('button', { name: 'Create key' }).click();
    const shown = page.getByRole('dialog', { name: 'Key n8n created' });
    await shown.waitFor();
    const key = await shown.getByLabel('The new key').inputValue();
    expect(key.length).toBeGreaterThan(30);
    await shown.getByRole('button', { name: 'Copy key' }).click();
    await shown.getByRole('button', { name: 'Copied' }).waitFor();
    expect(await page.evaluate(() => (globalThis as any).navigator.clipboard.readText())).toBe(key);
    expect(await axeViolations(page)).toEqual([]);
    await shown.getByRole('button', { name: 'Done' }).click();

    const list = page.getByRole('list', { name: 'API keys' });
    const row = list.getByRole('listitem').filter({ hasText: 'n8n' });
    expect(await row.textContent()).toContain('inference, jobs');
    expect(await row.textContent()).toContain('last used never');
    // The key works until it is revoked.
    const used = await fetch(`${hearth.url}/api/tags`, { headers: { authorization: `Bearer ${key}` } });
    expect(used.status).toBe(200);
    await page.screenshot({ path: join(SHOTS, 'keys-1280x800.png') });

    await row.getByRole('button', { name: 'Revoke n8n' }).click();
    const confirm = page.getByRole('dialog', { name: 'Revoke n8n?' });
    await confirm.getByRole('button', { name: 'Revoke n8n' }).click();
    await page.getByText('No keys.').waitFor();
    await page.getByText('Revoked (1)').waitFor();
  });

  it('follows a batch job to the end and opens its results', async () => {
    await putFile(hearth.url, 'datasets/e2e.jsonl', jsonlDataset(8));
    const submitted = await call(hearth.url, '/api/jobs', {
      input: 'datasets/e2e.jsonl',
      model: 'chat',
      template: 'Say {{text}}',
      key_field: 'id',
      options: { num_predict: 2, temperature: 0 },
      output: 'results/e2e',
    });
    expect(submitted.status, submitted.text).toBe(201);
    await page.getByRole('link', { name: 'Batch jobs' }).click();
    const row = page.getByRole('list', { name: 'Jobs' }).getByRole('listitem').filter({ hasText: 'results/e2e' });
    await row.waitFor();
    await row.getByRole('button', { name: 'Details' }).click();
    await row.locator('.state.succeeded').waitFor({ timeout: 120_000 });
    expect(await row.locator('.job-figures').textContent()).toContain('8 of 8 records · 0 failed');
    const log = page.getByRole('list', { name: `Log of job ${submitted.json.id}` });
    await log.getByRole('listitem').first().waitFor();
    await row.getByRole('button', { name: 'Open results' }).click();
    const lines = page.getByLabel('Result lines');
    await lines.waitFor();
    expect((await lines.textContent())?.split('\n')).toHaveLength(8);
    expect(await lines.textContent()).toContain('"key":"r0000"');
    expect(await axeViolations(page)).toEqual([]);
    await page.screenshot({ path: join(SHOTS, 'jobs-1280x800.png') });
  });

  it("shows the node: engine, cache, Atlas health and doctor's exposure report; links to the workflow gallery", async () => {
    await page.getByRole('link', { name: 'Node' }).click();
    await page.getByRole('heading', { name: 'Network exposure' }).waitFor();
    expect(await page.getByText('Engine', { exact: true }).count()).toBe(1);
    expect(await page.locator('.checks').textContent()).toMatch(/✓ Database healthy: postgres.*schema current/);
    expect(await page.getByLabel('Exposure report').textContent()).toContain('listener default');
    expect(await axeViolations(page)).toEqual([]);
    await page.screenshot({ path: join(SHOTS, 'node-1280x800.png') });
    expect(await page.getByRole('link', { name: 'Workflows' }).getAttribute('href')).toBe('/ui/workflows#gallery');
  });

  it('every admin screen is usable at 390×844', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    try {
      const p = await phone.newPage();
      await signIn(p, '/ui/admin/models');
      await p.getByRole('heading', { name: 'Pull a model' }).waitFor();
      for (const [link, heading] of [
        ['Models', 'Installed'],
        ['API keys', 'New API key'],
        ['Batch jobs', 'Batch jobs'],
        ['Node', 'Network exposure'],
      ] as const) {
        await p.getByRole('link', { name: link }).tap();
        await p.getByRole('heading', { name: heading, exact: true }).waitFor();
        expect(await sticksOut(p), `${link} scrolls sideways`).toEqual([]);
        expect(await axeViolations(p)).toEqual([]);
        // Touch targets: every button at least 44 px high.
        const heights = await p
          .locator('main button')
          .evaluateAll((els) => els.map((el) => (el as unknown as { offsetHeight: number }).offsetHeight));
        expect(Math.min(...heights, 44)).toBeGreaterThanOrEqual(44);
        await p.screenshot({ path: join(SHOTS, `${link.replace(/\W+/g, '-').toLowerCase()}-390x844.png`) });
      }
    } finally {
      await phone.close();
    }
  });
});
