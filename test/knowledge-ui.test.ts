// The Knowledge page and cited answers in real headless Chromium: create a base, upload a PDF the test
// writes, watch it ingest, ask in a chat with #name, open the numbered source to read its passage,
// reload and see the same sources (they are stored with the reply on Atlas).
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEB_DIST } from '../src/http/ui/app.js';
import { launchChromium } from './support/browser.js';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { createModel } from './support/jobs.js';
import { makeTestModels } from './support/models.js';
import { textPdf } from './support/pdf.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!existsSync(join(WEB_DIST, 'index.html'))) {
    throw new Error('web/dist is missing: run `npm run build` before these tests (`npm test` does)');
  }
  dirs = await hearthDirs('hearth-knowledge-ui-');
  await mkdir(join(dirs.root, 'models'), { recursive: true });
  const models = await makeTestModels(join(dirs.root, 'models'));
  hearth = await startHearthInProcess(dirs, {
    inference: { numCtx: 1024 },
    jobs: { pollInterval: '200ms' },
    ui: { generateTitles: false },
    knowledge: { topK: 2, chunkTokens: 64, chunkOverlap: 8 },
  });
  await createModel(hearth.url, 'chat', models.chat);
  await createModel(hearth.url, 'embed', models.embed);
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
});

afterAll(async () => {
  await browser?.close();
  await hearth?.close();
  await dirs?.cleanup();
});

describe('knowledge in the chat UI (Chromium)', () => {
  it('keeps the Knowledge page out of the chat’s first bundle', async () => {
    const assets = await readdir(join(WEB_DIST, 'assets'));
    const page = assets.find((a) => /^KnowledgePage-.*\.js$/.test(a));
    expect(page).toBeDefined();
    const index = assets.filter((a) => /^index-.*\.js$/.test(a));
    for (const file of index)
      expect(await readFile(join(WEB_DIST, 'assets', file), 'utf8')).not.toContain('Upload documents');
  });

  it('creates a base, uploads a PDF, shows its ingestion, and answers #name questions with sources', async () => {
    await page.goto(`${hearth.url}/ui/`);
    await page.getByLabel('User name').fill('alice');
    await page.getByLabel('Password', { exact: true }).fill('correct horse');
    await page.getByLabel('Password again').fill('correct horse');
    await page.getByRole('button', { name: 'Create admin account' }).click();
    await page.getByRole('textbox', { name: 'Message' }).waitFor();

    await page.getByRole('button', { name: 'Knowledge' }).click();
    await page.getByRole('heading', { name: 'Knowledge' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/ui/knowledge');
    await page.getByLabel('New base name').fill('boiler');
    await page.getByLabel('Embedding model').fill('embed');
    await page.getByRole('button', { name: 'Create' }).click();
    const docs = page.getByRole('region', { name: 'Documents of boiler' });
    await docs.waitFor();

    const pdf = textPdf([
      ['Boiler manual.', 'Bleed the radiators every October with the brass key.'],
      ['Warranty: ten years from installation.'],
    ]);
    await docs
      .locator('input[type=file]')
      .setInputFiles({ name: 'boiler.pdf', mimeType: 'application/pdf', buffer: pdf });
    // Progress: the row appears (pending, then ready with its chunk count).
    const row = docs.getByRole('row').filter({ hasText: 'boiler.pdf' });
    await row.waitFor();
    await row.filter({ hasText: 'ready' }).waitFor({ timeout: 60_000 });
    expect(Number(await row.getByRole('cell').nth(2).textContent())).toBeGreaterThan(0);
    await expect(page.getByRole('listitem').filter({ hasText: '#boiler' }).textContent()).resolves.toMatch(
      /1 documents · [1-9]\d* chunks/,
    );

    await page.getByRole('button', { name: 'Back to chat' }).click();
    const model = page.getByRole('combobox', { name: 'Model' });
    await model.locator('option[value="chat:latest"]').waitFor({ state: 'attached' });
    await model.selectOption('chat:latest');
    await page.getByRole('textbox', { name: 'Message' }).fill('#boiler when do I bleed the radiators?');
    await page.getByRole('button', { name: 'Send' }).click();
    const sources = page.getByRole('region', { name: 'Sources' });
    await sources.waitFor({ timeout: 60_000 });
    const first = sources.getByRole('button', { name: /^\[1\] boiler\.pdf/ });
    await first.click();
    const passage = page.getByRole('blockquote', { name: 'Source 1' });
    await expect(passage.textContent()).resolves.toContain('Bleed the radiators every October');

    // Stored with the reply on Atlas: a reload shows the same sources.
    await page.reload();
    await page
      .getByRole('region', { name: 'Sources' })
      .getByRole('button', { name: /^\[1\] boiler\.pdf/ })
      .click();
    await expect(page.getByRole('blockquote', { name: 'Source 1' }).textContent()).resolves.toContain(
      'Bleed the radiators every October',
    );
  });
});
