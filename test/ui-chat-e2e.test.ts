// The chat UI's dialogs, settings and Continue, end to end in real headless Chromium against a real
// hearth (in this process, on a real PostgreSQL Atlas, with the llama-server engine): accessible
// dialogs instead of prompt()/confirm() (focus kept inside, Esc closes), the Users table on a
// phone, 44 px touch targets, the theme kept with the account, every sampling option with the
// model's bounds, unique preset names, Continue on a stopped reply, and axe on every screen.
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { storeImages } from '../src/chat/attachments.js';
import { generateProjector } from './fixtures/gguf/index.js';
import { axeViolations, launchChromium } from './support/browser.js';
import { docx } from './support/docx.js';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { makeTestModels } from './support/models.js';
import { textPdf } from './support/pdf.js';
import { createTestDatabase } from './support/postgres.js';
import { importModel, LONG, PNG_1X1, UiClient } from './support/ui-client.js';

/** Screenshots for people to look at, in the temp folder (never in the repository). */
const ARTIFACTS = join(tmpdir(), 'hearth-ui-chat-e2e');

let dirs: HearthDirs;
let hearth: InProcessHearth;
let database: { url: string; drop(): Promise<void> };
let browser: Browser;
let page: Page;
/** a small picture (40×30) for the vision model, and how many tokens its projector makes of an image */
let picture: Buffer;
let imageTokens: number;

/** The element that has the focus, as a short description (runs in the page: self-contained). */
const focusInDialog = () => {
  const doc = (globalThis as unknown as { document: { activeElement: { closest(s: string): unknown } | null } })
    .document;
  return Boolean(doc.activeElement?.closest('[role="dialog"]'));
};

/** An image's width once it has loaded (0 if it has not within 5 s). */
async function loadedWidth(image: Locator): Promise<number> {
  await image.waitFor();
  const width = () => image.evaluate((el) => (el as unknown as { naturalWidth: number }).naturalWidth);
  for (let i = 0; i < 50 && (await width()) === 0; i++) await image.page().waitForTimeout(100);
  return width();
}

async function signIn(p: Page, username: string, password: string) {
  await p.goto(`${hearth.url}/ui/`);
  await p.getByLabel('User name').fill(username);
  await p.getByLabel('Password', { exact: true }).fill(password);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.getByRole('textbox', { name: 'Message' }).waitFor();
}

beforeAll(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  dirs = await hearthDirs('hearth-ui-chat-e2e-');
  await mkdir(join(dirs.root, 'models'), { recursive: true });
  const models = await makeTestModels(join(dirs.root, 'models'));
  const admin = inject('postgresUrl');
  if (!admin) throw new Error(`PostgreSQL is not running for the tests: ${inject('postgresUnavailable')}`);
  database = await createTestDatabase(admin);
  hearth = await startHearthInProcess(dirs, {
    atlas: { database: database.url },
    ui: { generateTitles: false },
  });
  // Greedy and without a repeat penalty, the test model writes the long prompt's reply for about 2 s.
  await importModel(hearth.url, 'chat', models.chat, { parameters: LONG.params });
  // A second model to compare with (another GGUF, so another engine instance), with short replies.
  await importModel(hearth.url, 'second', models.tools, { parameters: { num_predict: 40, temperature: 0 } });
  // A vision model: the chat model with a generated projector (llama.cpp's mmproj), so an image runs
  // through llama-server's real image path (random weights: the path is tested, not what is seen).
  const projector = await generateProjector({ path: join(dirs.root, 'models', 'mmproj.gguf'), textWidth: 64 });
  imageTokens = projector.imageTokens;
  await importModel(
    hearth.url,
    'seeing',
    models.chat,
    { parameters: { num_predict: 8, temperature: 0 } },
    projector.path,
  );
  picture = await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 200, g: 30, b: 90 } } })
    .png()
    .toBuffer();
  const alice = new UiClient(hearth.url);
  alice.csrf = 'x';
  const setup = await alice.post('/api/ui/setup', { username: 'alice', password: 'correct horse' });
  if (setup.status !== 201) throw new Error(`setup failed: ${setup.text}`);
  await alice.patch('/api/ui/me', { defaultModel: 'chat:latest' });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await signIn(page, 'alice', 'correct horse');
}, 300_000); // a fresh PostgreSQL database, a server and Chromium: slow on a busy 2-core machine

afterAll(async () => {
  await browser?.close();
  await hearth?.close();
  await database?.drop();
  await dirs?.cleanup();
});

describe('dialogs and accessibility', () => {
  it('Users: a password reset in a dialog (hidden, typed twice), a delete confirmed in one, Tab kept inside, Esc closes', async () => {
    await page.getByRole('button', { name: 'Users' }).click();
    const users = page.getByRole('dialog', { name: 'Users' });
    await users.getByRole('cell', { name: 'alice' }).waitFor();
    expect(await users.getByRole('columnheader').allTextContents()).toEqual([
      'User',
      'Role',
      'Created',
      'Last seen',
      'Actions',
    ]);
    await users.getByLabel('User name').fill('bob');
    await users.getByLabel('Password').fill('bob-password');
    await users.getByRole('button', { name: 'Add user' }).click();
    const bobRow = users.getByRole('row').filter({ hasText: 'bob' });
    await bobRow.waitFor();
    expect(await bobRow.getByRole('cell').nth(3).textContent()).toBe('never');
    expect(await axeViolations(page)).toEqual([]);

    // No prompt(): a dialog of its own, the password hidden as it is typed.
    page.on('dialog', (d) => {
      throw new Error(`a native ${d.type()} dialog opened: ${d.message()}`);
    });
    await bobRow.getByRole('button', { name: 'Reset password' }).click();
    const reset = page.getByRole('dialog', { name: 'New password for bob' });
    await reset.waitFor();
    const fields = reset.getByLabel(/New password/);
    expect(await fields.evaluateAll((els) => els.map((e) => (e as unknown as { type: string }).type))).toEqual([
      'password',
      'password',
    ]);
    expect(await page.evaluate(focusInDialog)).toBe(true);
    // Tab and Shift+Tab go round inside the dialog, never to the page behind it.
    for (let i = 0; i < 8; i++) {
      await page.keyboard.press(i % 3 === 2 ? 'Shift+Tab' : 'Tab');
      expect(await page.evaluate(focusInDialog)).toBe(true);
    }
    expect(await axeViolations(page)).toEqual([]);
    await fields.nth(0).fill('new-bob-password');
    await fields.nth(1).fill('not the same');
    await reset.getByRole('button', { name: 'Set password' }).click();
    await reset.getByRole('alert').filter({ hasText: 'differ' }).waitFor();
    await fields.nth(1).fill('new-bob-password');
    await reset.getByRole('button', { name: 'Set password' }).click();
    await reset.waitFor({ state: 'detached' });
    const bob = new UiClient(hearth.url);
    expect((await bob.login('bob', 'new-bob-password')).status).toBe(200);

    // No confirm(): the dialog says what is lost; Esc and Cancel keep bob.
    await bobRow.getByRole('button', { name: 'Delete' }).click();
    const confirm = page.getByRole('dialog', { name: 'Delete bob?' });
    await confirm.getByText('chats and presets are deleted for good').waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'confirm-delete-1280x800.png') });
    expect(await axeViolations(page)).toEqual([]);
    await page.keyboard.press('Escape');
    await confirm.waitFor({ state: 'detached' });
    expect(await users.isVisible()).toBe(true);
    await bobRow.getByRole('button', { name: 'Delete' }).click();
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    expect(await bobRow.count()).toBe(1);
    await bobRow.getByRole('button', { name: 'Delete' }).click();
    await confirm.getByRole('button', { name: 'Delete bob' }).click();
    await bobRow.waitFor({ state: 'detached' });
    expect((await bob.get('/api/ui/session')).json.user).toBeNull();
    await page.keyboard.press('Escape');
    await users.waitFor({ state: 'detached' });
  });

  it('Search: Tab stays inside the dialog; axe finds nothing', async () => {
    await page.keyboard.press('Control+K');
    const search = page.getByRole('dialog', { name: 'Search chats' });
    await search.waitFor();
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      expect(await page.evaluate(focusInDialog)).toBe(true);
    }
    expect(await axeViolations(page)).toEqual([]);
    await page.keyboard.press('Escape');
    await search.waitFor({ state: 'detached' });
  });

  it('the theme is kept with the account: dark after a reload, and in another browser', async () => {
    await page.getByRole('button', { name: 'Account' }).click();
    const account = page.getByRole('dialog', { name: 'Account' });
    await account.getByLabel('Theme').selectOption('dark');
    const theme = () =>
      page.evaluate(
        () =>
          (globalThis as unknown as { document: { documentElement: { dataset: Record<string, string> } } }).document
            .documentElement.dataset['theme'],
      );
    for (let i = 0; i < 50 && (await theme()) !== 'dark'; i++) await page.waitForTimeout(100);
    expect(await theme()).toBe('dark');
    expect(await axeViolations(page)).toEqual([]);
    await page.keyboard.press('Escape');
    await page.reload();
    await page.getByRole('textbox', { name: 'Message' }).waitFor();
    expect(await theme()).toBe('dark');
    const background = await page
      .locator('html')
      .evaluate(
        (el) =>
          (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }).getComputedStyle(el)
            .backgroundColor,
      );
    expect(background).toBe('rgb(27, 27, 26)');
    await page.screenshot({ path: join(ARTIFACTS, 'dark-1280x800.png') });
    expect(await axeViolations(page)).toEqual([]);
    await page.getByRole('button', { name: 'Account' }).click();
    await page.getByRole('dialog', { name: 'Account' }).getByLabel('Theme').selectOption('system');
    for (let i = 0; i < 50 && (await theme()) !== 'system'; i++) await page.waitForTimeout(100);
    await page.keyboard.press('Escape');
  });

  it('the knowledge page passes axe', async () => {
    await page.getByRole('button', { name: 'Knowledge' }).click();
    await page
      .getByRole('heading', { name: /Knowledge/ })
      .first()
      .waitFor();
    expect(await axeViolations(page)).toEqual([]);
    await page.goto(`${hearth.url}/ui/`);
    await page.getByRole('textbox', { name: 'Message' }).waitFor();
  });
});

describe('settings', () => {
  it('offers every sampling option, bounded by the model (context ≤ its 2048 tokens), and saves them with the chat', async () => {
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.fill('Hello there');
    await box.press('Enter');
    await page.locator('.message.assistant').waitFor();
    await page.getByRole('button', { name: 'Send' }).waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: 'Settings', exact: true }).click();
    const settings = page.getByRole('region', { name: 'Chat settings' });
    for (const label of [
      'Temperature',
      'Top P',
      'Top K',
      'Min P',
      'Typical P',
      'Repeat penalty',
      'Repeat window',
      'Presence penalty',
      'Frequency penalty',
      'Seed',
      'Max tokens',
      'Context length',
    ]) {
      await settings.getByLabel(label, { exact: true }).waitFor();
    }
    const context = settings.getByLabel('Context length', { exact: true });
    expect(await context.getAttribute('max')).toBe('2048');
    // The suggestion is what the model gets: never more than it was trained on.
    expect(Number(await context.getAttribute('placeholder'))).toBeLessThanOrEqual(2048);
    // The model's own Modelfile parameters are the placeholders.
    expect(await settings.getByLabel('Repeat penalty', { exact: true }).getAttribute('placeholder')).toBe('1');
    expect(await axeViolations(page)).toEqual([]);

    await context.fill('4096');
    await settings.getByRole('button', { name: 'Save settings' }).click();
    await settings
      .getByText('Context length must be from 16 to 2048 (chat:latest was trained on 2048 tokens).')
      .waitFor();
    expect(await context.getAttribute('aria-invalid')).toBe('true');
    await context.fill('1024');
    await settings.getByLabel('Top P', { exact: true }).fill('0.5');
    await settings.getByLabel('Top K', { exact: true }).fill('20');
    await settings.getByLabel('Seed', { exact: true }).fill('7');
    await settings.getByLabel('Stop sequences').fill('END');
    await settings.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Chat settings saved.').waitFor();
    const id = new URL(page.url()).pathname.split('/').at(-1) ?? '';
    const alice = new UiClient(hearth.url);
    await alice.login('alice', 'correct horse');
    const saved = await alice.get(`/api/ui/conversations/${id}`);
    expect(saved.json.conversation.params).toMatchObject({
      num_ctx: 1024,
      top_p: 0.5,
      top_k: 20,
      seed: 7,
      stop: ['END'],
    });
  });

  it('refuses a second preset of the same name, saying so', async () => {
    const settings = page.getByRole('region', { name: 'Chat settings' });
    await settings.getByLabel('New preset name').fill('Focused');
    await settings.getByRole('button', { name: 'Save preset' }).click();
    await page.getByText('Preset saved.').waitFor();
    await settings.getByLabel('New preset name').fill('focused');
    await settings.getByRole('button', { name: 'Save preset' }).click();
    await page.getByText('a preset named "Focused" already exists').waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'settings-1280x800.png') });
    await page.getByRole('button', { name: 'Settings', exact: true }).click();
  });
});

describe('Continue', () => {
  it('continues a stopped reply in one click: the new text follows the saved text, in the same message', async () => {
    await page.getByRole('button', { name: 'New chat' }).click();
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.fill(LONG.prompt);
    await box.press('Enter');
    await page.getByRole('button', { name: 'Stop' }).waitFor();
    await page.waitForFunction(
      () =>
        ((
          globalThis as unknown as { document: { querySelector(s: string): { textContent: string } | null } }
        ).document.querySelector('.message.assistant .markdown')?.textContent.length ?? 0) > 30,
    );
    await page.getByRole('button', { name: 'Stop' }).click();
    const reply = page.locator('.message.assistant');
    await reply.getByRole('button', { name: 'Continue' }).waitFor();
    const id = new URL(page.url()).pathname.split('/').at(-1) ?? '';
    const alice = new UiClient(hearth.url);
    await alice.login('alice', 'correct horse');
    const before = (await alice.get(`/api/ui/conversations/${id}`)).json.messages[1];
    expect(before.status).toBe('stopped');

    const shownBefore = await reply.locator('.markdown').evaluate((el) => (el.textContent ?? '').length);
    await reply.getByRole('button', { name: 'Continue' }).click();
    // The text grows in place (the model goes on from the saved text, and may end by itself soon).
    await page.waitForFunction(
      (n) =>
        ((
          globalThis as unknown as { document: { querySelector(s: string): { textContent: string } | null } }
        ).document.querySelector('.message.assistant .markdown')?.textContent.length ?? 0) > n,
      shownBefore,
    );
    // Greedy, it ends by itself within the model's num_predict (a few seconds at most).
    await page.getByRole('button', { name: 'Send' }).waitFor({ timeout: 60_000 });
    await page.locator('.message.assistant[aria-busy="false"]').waitFor({ timeout: 60_000 });
    const after = (await alice.get(`/api/ui/conversations/${id}`)).json.messages;
    expect(after).toHaveLength(2);
    expect(after[1].id).toBe(before.id);
    expect(after[1].content.startsWith(before.content)).toBe(true);
    expect(after[1].content.length).toBeGreaterThan(before.content.length);
    expect(await page.locator('.message.assistant').count()).toBe(1);
    await page.screenshot({ path: join(ARTIFACTS, 'continued-1280x800.png') });
  });
});

describe('Compare', () => {
  it('sends one message to two models, streams both replies side by side, and goes on with the one picked', async () => {
    await page.getByRole('button', { name: 'New chat' }).click();
    await page.getByRole('button', { name: 'Compare' }).click();
    const picker = page.getByRole('group', { name: /Compare/ });
    await picker.getByLabel('chat:latest').check();
    await picker.getByLabel('second:latest').check();
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.fill('Hello there');
    await box.press('Enter');
    const columns = page.getByRole('region', { name: 'Replies side by side' });
    await columns.waitFor();
    // Both stream at once, each in its own column.
    await page.waitForFunction(() => {
      const doc = (
        globalThis as unknown as { document: { querySelectorAll(s: string): Array<{ textContent: string }> } }
      ).document;
      const texts = Array.from(doc.querySelectorAll('.compare-column .markdown'));
      return texts.length === 2 && texts.every((t) => t.textContent.length > 0);
    });
    const pickSecond = columns.getByRole('button', { name: 'Continue with second:latest' });
    await pickSecond.waitFor();
    for (let i = 0; i < 600 && (await pickSecond.isDisabled()); i++) await page.waitForTimeout(100);
    await columns.getByRole('button', { name: 'Continue with chat:latest' }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'compare-1280x800.png') });
    expect(await axeViolations(page)).toEqual([]);
    await page.getByRole('button', { name: 'Send' }).waitFor({ timeout: 60_000 });
    await pickSecond.click();
    await columns.waitFor({ state: 'detached' });
    const versions = page.getByRole('navigation', { name: 'Versions of this reply' });
    expect(await versions.locator('.sibling-position').textContent()).toBe('2/2');
    expect(await page.locator('.message.assistant').count()).toBe(1);

    const id = new URL(page.url()).pathname.split('/').at(-1) ?? '';
    const alice = new UiClient(hearth.url);
    await alice.login('alice', 'correct horse');
    const saved = (await alice.get(`/api/ui/conversations/${id}`)).json;
    const [asked, ...replies] = saved.messages;
    expect(replies.map((m: { model: string; parentId: string }) => [m.model, m.parentId])).toEqual([
      ['chat:latest', asked.id],
      ['second:latest', asked.id],
    ]);
    expect(saved.conversation).toMatchObject({ model: 'second:latest', currentLeafId: replies[1].id });
    await page.getByRole('button', { name: 'Compare' }).click();
  });
});

const WORD = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';

describe('attachments', () => {
  it('reads an attached PDF and Word document into the message; refuses an image dropped for a model that cannot see, saying why', async () => {
    await page.getByRole('button', { name: 'New chat' }).click();
    await page.getByLabel('Attach files (text, Markdown, code, PDF, Word, images)').setInputFiles([
      { name: 'report.pdf', mimeType: 'application/pdf', buffer: textPdf([['Quarterly report']]) },
      {
        name: 'notes.docx',
        mimeType: WORD,
        buffer: docx([{ text: 'Meeting notes', heading: 1 }, { text: 'Ship on Friday.' }]),
      },
    ]);
    await page.getByRole('list', { name: 'Files to send' }).getByText('report.pdf').waitFor();
    await page.getByRole('list', { name: 'Files to send' }).getByText('notes.docx').waitFor();
    // Dropped on the message box: chat:latest has no vision, so the image is refused at once, with the reason.
    await page.evaluate((png) => {
      const web = globalThis as unknown as {
        document: { querySelector(s: string): { dispatchEvent(e: unknown): void } };
        DataTransfer: new () => { items: { add(f: unknown): void } };
        File: new (parts: unknown[], name: string, init: object) => unknown;
        DragEvent: new (type: string, init: object) => unknown;
        atob(s: string): string;
      };
      const bytes = Uint8Array.from(web.atob(png), (c) => c.charCodeAt(0));
      const transfer = new web.DataTransfer();
      transfer.items.add(new web.File([bytes], 'dot.png', { type: 'image/png' }));
      web.document
        .querySelector('form.composer')
        .dispatchEvent(new web.DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    }, PNG_1X1);
    await page.getByText('dot.png: chat:latest cannot see images (it has no vision capability)').waitFor();
    expect(await page.getByRole('list', { name: 'Files to send' }).getByRole('listitem').count()).toBe(2);
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.fill('Hello there');
    await box.press('Enter');
    await page.locator('.message.user').getByText('report.pdf').waitFor();
    await page.getByRole('button', { name: 'Send' }).waitFor({ timeout: 60_000 });
    const id = new URL(page.url()).pathname.split('/').at(-1) ?? '';
    const alice = new UiClient(hearth.url);
    await alice.login('alice', 'correct horse');
    const [asked] = (await alice.get(`/api/ui/conversations/${id}`)).json.messages;
    // Both files' text is in the message the model was given (the Word document's heading as Markdown).
    expect(asked.attachments).toMatchObject([
      { name: 'report.pdf', text: expect.stringContaining('Quarterly report') },
      { name: 'notes.docx', text: expect.stringMatching(/# Meeting notes[\s\S]*Ship on Friday\./) },
    ]);
  });

  it('shows a message’s images as thumbnails that open in a viewer', async () => {
    const alice = new UiClient(hearth.url);
    await alice.login('alice', 'correct horse');
    const me = (await alice.get('/api/ui/session')).json.user;
    const bytes = Buffer.from(PNG_1X1, 'base64');
    const [image] = await storeImages(hearth.ctx.atlas.files, me.id, [{ name: 'dot.png', bytes, type: 'image/png' }]);
    const at = new Date().toISOString();
    const imported = await alice.post('/api/ui/import', {
      format: 'hearth.chat',
      version: 1,
      conversations: [
        {
          title: 'A picture',
          createdAt: at,
          updatedAt: at,
          messages: [
            { id: 'q', parentId: null, role: 'user', content: 'What is this?', attachments: [image], createdAt: at },
            { id: 'a', parentId: 'q', role: 'assistant', content: 'A dot.', createdAt: at },
          ],
        },
      ],
    });
    expect(imported.status, imported.text).toBe(200);
    await page.goto(`${hearth.url}/ui/c/${imported.json.conversations[0].id}`);
    expect(await loadedWidth(page.locator('.message.user img.thumb'))).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
    await page.getByRole('button', { name: 'Open dot.png' }).click();
    const viewer = page.getByRole('dialog', { name: 'dot.png' });
    await viewer.getByRole('img', { name: 'dot.png' }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'image-viewer-1280x800.png') });
    expect(await axeViolations(page)).toEqual([]);
    await page.keyboard.press('Escape');
    await viewer.waitFor({ state: 'detached' });
  });
});

describe('citations', () => {
  it('show a source’s score, and the reranker’s when the retrieval was reranked', async () => {
    const alice = new UiClient(hearth.url);
    await alice.login('alice', 'correct horse');
    const at = new Date().toISOString();
    const source = { base: 'home', document_id: 'd1', heading: 'Radiators', text: 'Bleed them in October.' };
    const imported = await alice.post('/api/ui/import', {
      format: 'hearth.chat',
      version: 1,
      conversations: [
        {
          title: 'Cited',
          createdAt: at,
          updatedAt: at,
          messages: [
            { id: 'q', parentId: null, role: 'user', content: 'When?', createdAt: at },
            {
              id: 'a',
              parentId: 'q',
              role: 'assistant',
              content: 'In October [1].',
              createdAt: at,
              stats: {
                sources: [
                  { n: 1, document: 'boiler.docx', chunk_id: 0, score: 0.0328, rerank_score: 0.8712, ...source },
                  { n: 2, document: 'notes.md', chunk_id: 1, score: 0.0161, ...source },
                ],
              },
            },
          ],
        },
      ],
    });
    expect(imported.status, imported.text).toBe(200);
    await page.goto(`${hearth.url}/ui/c/${imported.json.conversations[0].id}`);
    const sources = page.getByRole('region', { name: 'Sources' });
    await sources.getByRole('button', { name: /^\[1\] boiler\.docx/ }).click();
    const first = page.getByRole('blockquote', { name: 'Source 1' });
    await first.getByText('score 0.033 · rerank 0.871').waitFor();
    expect(await axeViolations(page)).toEqual([]);
    await sources.getByRole('button', { name: /^\[2\] notes\.md/ }).click();
    const second = page.getByRole('blockquote', { name: 'Source 2' });
    await second.getByText('score 0.016', { exact: true }).waitFor();
  });
});

describe('images for a vision model', () => {
  it('sends an attached image to a vision model, keeps it on Atlas and shows it; refuses it for a model without vision, saying why', async () => {
    await page.getByRole('button', { name: 'New chat' }).click();
    const model = page.getByRole('combobox', { name: 'Model' });
    await model.selectOption('seeing:latest');
    const attach = page.getByLabel('Attach files (text, Markdown, code, PDF, Word, images)');
    await attach.setInputFiles({ name: 'red.png', mimeType: 'image/png', buffer: picture });
    const toSend = page.getByRole('list', { name: 'Files to send' });
    await toSend.getByText('red.png').waitFor();
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.fill('What is in this picture?');
    await box.press('Enter');
    await page.locator('.message.user img.thumb').waitFor();
    await page.getByRole('button', { name: 'Send' }).waitFor({ timeout: 60_000 });
    await page.locator('.message.assistant[aria-busy="false"]').waitFor({ timeout: 60_000 });

    // On Atlas: the image is kept with the message (a file on Atlas), and the model was given it:
    // the reply's prompt counts the image's tokens besides the words.
    const id = new URL(page.url()).pathname.split('/').at(-1) ?? '';
    const alice = new UiClient(hearth.url);
    await alice.login('alice', 'correct horse');
    const [asked, answer] = (await alice.get(`/api/ui/conversations/${id}`)).json.messages;
    expect(asked.attachments).toEqual([
      expect.objectContaining({ name: 'red.png', image: expect.stringMatching(/^[0-9a-f]{64}\.png$/) }),
    ]);
    const stored = await fetch(`${hearth.url}/api/ui/images/${asked.attachments[0].image}`, {
      headers: { cookie: alice.cookie ?? '' },
    });
    expect(Buffer.from(await stored.arrayBuffer()).equals(picture)).toBe(true);
    expect(answer).toMatchObject({ role: 'assistant', model: 'seeing:latest', status: 'done' });
    expect(answer.stats.promptTokens).toBeGreaterThan(imageTokens);

    // The thumbnail shows the picture as stored (40 px wide), and opens in the viewer.
    expect(await loadedWidth(page.locator('.message.user img.thumb'))).toBe(40);
    await page.screenshot({ path: join(ARTIFACTS, 'vision-reply-1280x800.png') });
    expect(await axeViolations(page)).toEqual([]);

    // The same image, then a model without vision chosen before sending: the server refuses it and says
    // why, nothing is stored, and the draft comes back to the box.
    await attach.setInputFiles({ name: 'red.png', mimeType: 'image/png', buffer: picture });
    await toSend.getByText('red.png').waitFor();
    await model.selectOption('chat:latest');
    await box.fill('And this one?');
    await box.press('Enter');
    await page
      .getByText(
        'chat:latest cannot see images (it has no vision capability): pick a vision model for "red.png", or remove the image',
      )
      .waitFor();
    await toSend.getByText('red.png').waitFor();
    expect(await box.inputValue()).toBe('And this one?');
    expect((await alice.get(`/api/ui/conversations/${id}`)).json.messages).toHaveLength(2);
    await page.screenshot({ path: join(ARTIFACTS, 'vision-refused-1280x800.png') });
    await page.getByRole('button', { name: 'Remove red.png' }).click();
    await box.fill('');
  });
});

describe('smaller things', () => {
  it('an import opens the imported chat; timestamps; scroll-to-bottom; search marks matches; Undo reopens a deleted open chat', async () => {
    const at = new Date().toISOString();
    const messages = Array.from({ length: 40 }, (_, i) => ({
      id: `m${i}`,
      parentId: i === 0 ? null : `m${i - 1}`,
      role: i % 2 === 0 ? 'user' : 'assistant',
      content: `Line ${i} of a long talk about lighthouses.\n\nAnd another paragraph to make it tall.`,
      createdAt: at,
    }));
    const file = JSON.stringify({
      format: 'hearth.chat',
      version: 1,
      conversations: [{ title: 'Lighthouse keepers', createdAt: at, updatedAt: at, messages }],
    });
    await page.goto(`${hearth.url}/ui/`);
    await page
      .getByLabel('Import chats (hearth or Open WebUI JSON)')
      .setInputFiles({ name: 'chats.json', mimeType: 'application/json', buffer: Buffer.from(file) });
    await page.getByRole('heading', { name: 'Lighthouse keepers', level: 1 }).waitFor();
    expect(new URL(page.url()).pathname).toMatch(/^\/ui\/c\/[\w-]+$/);
    const chatUrl = page.url();
    // Every message says when it was written.
    expect(await page.locator('.message time.when').first().getAttribute('datetime')).toBe(at);

    // Scrolled up, a button takes the reader back to the latest message.
    await page.locator('.message').last().waitFor();
    await page.locator('section.messages').evaluate((el) => {
      (el as unknown as { scrollTop: number }).scrollTop = 0;
    });
    const down = page.getByRole('button', { name: 'Scroll to the latest message' });
    await down.waitFor();
    await down.click();
    await down.waitFor({ state: 'detached' });

    await page.keyboard.press('Control+K');
    await page.getByRole('searchbox', { name: 'Search titles and messages' }).fill('lighthouse');
    const results = page.getByRole('list', { name: 'Results' });
    await results.locator('mark').first().waitFor();
    expect((await results.locator('mark').allTextContents()).every((t) => /^lighthouses?$/i.test(t))).toBe(true);
    expect(await axeViolations(page)).toEqual([]);
    await page.keyboard.press('Escape');

    await page.locator('.chat-row', { hasText: 'Lighthouse keepers' }).hover();
    await page.getByRole('button', { name: 'Delete Lighthouse keepers' }).click();
    await page.getByRole('heading', { name: 'What shall we talk about?' }).waitFor();
    await page.getByRole('button', { name: 'Undo' }).click();
    await page.getByRole('heading', { name: 'Lighthouse keepers', level: 1 }).waitFor();
    expect(page.url()).toBe(chatUrl);
  });
});

describe('on a phone (390×844)', () => {
  it('the Users table fits without scrolling sideways, touch targets are 44 px, and axe passes', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    try {
      const p = await phone.newPage();
      await signIn(p, 'alice', 'correct horse');
      // Every visible control is at least 44 px tall.
      const small = await p
        .locator('button:visible, a.button:visible, select:visible, input:visible')
        .evaluateAll((els) =>
          els
            .map((el) => {
              const box = (
                el as unknown as { getBoundingClientRect(): { height: number; width: number } }
              ).getBoundingClientRect();
              return {
                name: (el as unknown as { outerHTML: string }).outerHTML.slice(0, 80),
                height: box.height,
                width: box.width,
              };
            })
            .filter((b) => b.height < 44 || b.width < 44),
        );
      expect(small).toEqual([]);
      expect(await axeViolations(p)).toEqual([]);
      await p.getByRole('button', { name: 'Open the chat list' }).click();
      await p.getByRole('button', { name: 'Users' }).click();
      const users = p.getByRole('dialog', { name: 'Users' });
      await users.getByText('alice').first().waitFor();
      const overflow = await users.evaluate((el) => {
        const d = el as unknown as { scrollWidth: number; clientWidth: number };
        return d.scrollWidth - d.clientWidth;
      });
      expect(overflow).toBeLessThanOrEqual(0);
      await users.getByText('Last seen').first().waitFor();
      await p.screenshot({ path: join(ARTIFACTS, 'users-390x844.png') });
      expect(await axeViolations(p)).toEqual([]);
    } finally {
      await phone.close();
    }
  });
});
