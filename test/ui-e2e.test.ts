// The chat UI end to end in real headless Chromium (Debian's package, driven by playwright-core),
// against a real `hearth serve` process on a real PostgreSQL Atlas:
// first-run admin setup, a streamed reply, stop, regenerate and edit branches with "< 2/2 >"
// navigation, reload, search, the keyboard, a second user who sees nothing of the first, the
// mobile drawer, screenshots (desktop and phone) and an axe check of the main screens.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type AtlasDb, openAtlasDb } from '../src/atlas/db/index.js';
import { WEB_DIST } from '../src/http/ui/app.js';
import { silentLogger } from '../src/log.js';
import { axeViolations, launchChromium } from './support/browser.js';
import { type HearthDirs, type HearthProcess, hearthDirs, REPO_ROOT, startHearthProcess } from './support/hearth.js';
import { makeTestModels } from './support/models.js';
import { createTestDatabase } from './support/postgres.js';
import { importModel, LONG, UiClient } from './support/ui-client.js';

/** Screenshots for people to look at; .hearth-test/ is git-ignored. */
const ARTIFACTS = join(REPO_ROOT, '.hearth-test', 'ui');

let dirs: HearthDirs;
let hearth: HearthProcess;
/** The same Atlas database the server uses (real PostgreSQL, so the test can read it while the server runs). */
let atlas: AtlasDb;
let database: { url: string; drop(): Promise<void> };
let browser: Browser;
let page: Page;
let conversationUrl = '';

/**
 * What page-side code (evaluate, waitForFunction) uses of the browser. The tests' tsconfig has no
 * DOM library; the callbacks reach the browser's globals through `globalThis` cast to this.
 */
interface InBrowser {
  document: { querySelector(selector: string): { textContent: string | null } | null };
  navigator: { clipboard: { readText(): Promise<string> } };
  KeyboardEvent: new (type: string, init: Record<string, unknown>) => object;
}

/** Whether the newest reply has more than `n` characters of text. Runs in the page: self-contained. */
const replyLongerThan = (n: number) =>
  ((globalThis as unknown as InBrowser).document.querySelector('.message.assistant .markdown')?.textContent ?? '')
    .length > n;

/** Text as a reader sees it: the random test model writes Markdown marks that the page renders away. */
const visibleText = (text: string) => text.replace(/[\s`*_~#>\\|-]+/g, '');

const assistantText = (p: Page, nth = -1) =>
  p
    .locator('.message.assistant .markdown')
    .nth(nth)
    .evaluate((el) => el.textContent ?? '');

beforeAll(async () => {
  if (!existsSync(join(WEB_DIST, 'index.html'))) {
    throw new Error('web/dist is missing: run `npm run build` before these tests (`npm test` does)');
  }
  await mkdir(ARTIFACTS, { recursive: true });
  dirs = await hearthDirs('hearth-ui-e2e-');
  await mkdir(join(dirs.root, 'models'), { recursive: true });
  const models = await makeTestModels(join(dirs.root, 'models'));
  // A real `hearth serve` process on a real PostgreSQL Atlas, as a house would run it.
  const admin = inject('postgresUrl');
  if (!admin) throw new Error(`PostgreSQL is not running for the tests: ${inject('postgresUnavailable')}`);
  database = await createTestDatabase(admin);
  hearth = await startHearthProcess({ dirs, database: database.url, env: { HEARTH_UI_GENERATE_TITLES: 'false' } });
  atlas = await openAtlasDb({ database: database.url, embeddedDir: '', log: silentLogger(), migrate: false });
  // Greedy and without a repeat penalty, the test model writes the long prompt's reply for about 2 s.
  await importModel(hearth.url, 'chat', models.chat, { parameters: LONG.params });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
}, 300_000); // a fresh PostgreSQL database, a server and Chromium: slow on a busy 2-core machine

afterAll(async () => {
  await browser?.close();
  await hearth?.stop();
  await atlas?.close();
  await database?.drop();
  await dirs?.cleanup();
});

const EDITED = 'Count to ten thousand';
const lettersOf = (text: string) => text.replace(/[^\p{L}\p{N}]+/gu, '');

describe('the chat UI in Chromium', () => {
  it('sends a browser at / to the first-run setup, which creates the admin', async () => {
    await page.goto(`${hearth.url}/`);
    expect(new URL(page.url()).pathname).toBe('/ui/');
    await page.getByRole('button', { name: 'Create admin account' }).waitFor();
    expect(await axeViolations(page)).toEqual([]);
    await page.getByLabel('User name').fill('alice');
    await page.getByLabel('Password', { exact: true }).fill('correct horse');
    await page.getByLabel('Password again').fill('correct horse');
    await page.getByRole('button', { name: 'Create admin account' }).click();
    await page.getByRole('textbox', { name: 'Message' }).waitFor();
    // The model list arrives after the first render.
    const model = page.getByRole('combobox', { name: 'Model' });
    for (let i = 0; i < 50 && (await model.inputValue()) !== 'chat:latest'; i++) await page.waitForTimeout(100);
    expect(await model.inputValue()).toBe('chat:latest');
  });

  it('Shift+Enter makes a new line; Enter while an IME composes sends nothing; Enter sends and the reply streams in', async () => {
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.fill('Count to');
    await box.press('Shift+Enter');
    await box.pressSequentially('a thousand');
    expect(await box.inputValue()).toBe('Count to\na thousand');
    await box.evaluate((el) =>
      el.dispatchEvent(
        new (globalThis as unknown as InBrowser).KeyboardEvent('keydown', {
          key: 'Enter',
          code: 'Enter',
          bubbles: true,
          isComposing: true,
        }) as Event,
      ),
    );
    expect(await page.locator('.message').count()).toBe(0);
    await box.fill(LONG.prompt);
    await box.press('Enter');
    await page.locator('.message.user', { hasText: LONG.prompt }).waitFor();
    expect(await box.inputValue()).toBe('');
    const stop = page.getByRole('button', { name: 'Stop' });
    await stop.waitFor();
    // Streamed: the text grows while the Stop button is up.
    await page.waitForFunction(replyLongerThan, 0);
    const early = (await assistantText(page)).length;
    await page.waitForFunction(replyLongerThan, early);
    expect(await stop.isVisible()).toBe(true);
    conversationUrl = page.url();
    expect(conversationUrl).toMatch(/\/ui\/c\/[\w-]+$/);
  });

  it('Esc stops the reply, which keeps its text', async () => {
    await page.keyboard.press('Escape');
    await page.locator('.message.assistant .note', { hasText: 'Stopped.' }).waitFor();
    await page.getByRole('button', { name: 'Send' }).waitFor();
    const kept = await assistantText(page);
    expect(kept.length).toBeGreaterThan(0);
    // What the page shows is what Atlas holds.
    const rows = await atlas.query<{ content: string; status: string }>(
      `select content, status from chat_messages where role = 'assistant'`,
    );
    expect(rows).toEqual([{ content: expect.any(String), status: 'stopped' }]);
    // The page renders markdown (random text has `*` and `_` pairs), so compare letters and digits.
    expect(lettersOf(kept)).toBe(lettersOf(rows[0]?.content ?? ''));
    expect(lettersOf(kept).length).toBeGreaterThan(0);
  });

  it('regenerate gives a branch to navigate: "< 2/2 >"', async () => {
    await page.getByRole('button', { name: 'Regenerate' }).click();
    await page.getByRole('button', { name: 'Stop' }).waitFor();
    await page.waitForFunction(replyLongerThan, 20);
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.getByRole('button', { name: 'Send' }).waitFor();
    const versions = page.getByRole('navigation', { name: 'Versions of this reply' });
    expect(await versions.locator('.sibling-position').textContent()).toBe('2/2');
    await versions.getByRole('button', { name: 'Previous version' }).click();
    expect(await versions.locator('.sibling-position').textContent()).toBe('1/2');
    await versions.getByRole('button', { name: 'Next version' }).click();
    expect(await versions.locator('.sibling-position').textContent()).toBe('2/2');
  });

  it('editing a message makes a sibling of it, and everything is there after a reload', async () => {
    await page.locator('.message.user').getByRole('button', { name: 'Edit' }).click();
    const edit = page.getByRole('textbox', { name: 'Edit your message' });
    // A prompt this random model answers at length ("Hello there" ends after 24 tokens, before Esc; and not a text that contains LONG.prompt).
    await edit.fill(EDITED);
    await edit.press('Enter');
    await page.locator('.message.user', { hasText: EDITED }).waitFor();
    await page.getByRole('button', { name: 'Stop' }).waitFor();
    await page.waitForFunction(replyLongerThan, 0);
    await page.keyboard.press('Escape');
    await page.getByRole('button', { name: 'Send' }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'chat-1280x800.png') });

    await page.reload();
    await page.locator('.message.user', { hasText: EDITED }).waitFor();
    expect(page.url()).toBe(conversationUrl);
    const mine = page.getByRole('navigation', { name: 'Versions of this message' });
    expect(await mine.locator('.sibling-position').textContent()).toBe('2/2');
    await mine.getByRole('button', { name: 'Previous version' }).click();
    await page.locator('.message.user', { hasText: LONG.prompt }).waitFor();
    // The first branch comes back as it was left: its second reply.
    const versions = page.getByRole('navigation', { name: 'Versions of this reply' });
    expect(await versions.locator('.sibling-position').textContent()).toBe('2/2');
    expect(await page.locator('.chat-row').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
  });

  it('Ctrl+K searches the chats; Ctrl+Shift+O starts a new one', async () => {
    await page.keyboard.press('Control+Shift+O');
    await page.getByRole('heading', { name: 'What shall we talk about?' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/ui/');
    await page.keyboard.press('Control+K');
    const search = page.getByRole('searchbox', { name: 'Search titles and messages' });
    await search.fill('thousand');
    await page.getByRole('list', { name: 'Results' }).getByRole('button').first().waitFor();
    await search.press('Enter');
    await page.locator('.message.user', { hasText: LONG.prompt }).waitFor();
    expect(page.url()).toBe(conversationUrl);
  });

  it('renders Markdown, highlights code once it is there (loaded on demand) and copies it', async () => {
    const alice = new UiClient(hearth.url);
    await alice.login('alice', 'correct horse');
    const at = new Date().toISOString();
    const imported = await alice.post('/api/ui/import', {
      format: 'hearth.chat',
      version: 1,
      conversations: [
        {
          title: 'Code sample',
          createdAt: at,
          updatedAt: at,
          messages: [
            { id: 'q', parentId: null, role: 'user', content: 'Show me Python', createdAt: at },
            {
              id: 'a',
              parentId: 'q',
              role: 'assistant',
              content: 'Here is **bold** text and code:\n\n```python\ndef answer():\n    return 42\n```\n',
              createdAt: at,
            },
          ],
        },
      ],
    });
    expect(imported.status, imported.text).toBe(200);
    const loaded: string[] = [];
    page.on('request', (r) => loaded.push(r.url()));
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
    await page.goto(`${hearth.url}/ui/c/${imported.json.conversations[0].id}`);
    await page.locator('.markdown strong', { hasText: 'bold' }).waitFor();
    await page.locator('.markdown code.language-python .hljs-keyword', { hasText: 'def' }).waitFor();
    expect(loaded.some((u) => /\/assets\/python-[\w-]+\.js$/.test(u))).toBe(true);
    await page.getByRole('button', { name: 'Copy code' }).click();
    await page.getByRole('button', { name: 'Copy code' }).filter({ hasText: 'Copied' }).waitFor();
    expect(await page.evaluate(() => (globalThis as unknown as InBrowser).navigator.clipboard.readText())).toBe(
      'def answer():\n    return 42\n',
    );

    // Per-chat settings are saved with the chat.
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByLabel('System prompt').fill('Answer in French.');
    await page.getByLabel('Temperature').fill('0.3');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Chat settings saved.').waitFor();
    const saved = await alice.get(`/api/ui/conversations/${imported.json.conversations[0].id}`);
    expect(saved.json.conversation).toMatchObject({ systemPrompt: 'Answer in French.', params: { temperature: 0.3 } });
    await page.screenshot({ path: join(ARTIFACTS, 'markdown-settings-1280x800.png') });
  });

  it('shows a second user none of the first user’s chats', async () => {
    const admin = new UiClient(hearth.url);
    await admin.login('alice', 'correct horse');
    expect((await admin.post('/api/ui/users', { username: 'bob', password: 'bob-password' })).status).toBe(201);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const bob = await context.newPage();
      await bob.goto(`${hearth.url}/ui/`);
      await bob.getByLabel('User name').fill('bob');
      await bob.getByLabel('Password', { exact: true }).fill('bob-password');
      await bob.getByRole('button', { name: 'Sign in' }).click();
      await bob.getByText('No chats yet.').waitFor();
      await bob.goto(conversationUrl);
      await bob.getByRole('alert').filter({ hasText: 'no conversation' }).waitFor();
      expect(await bob.locator('.message').count()).toBe(0);
    } finally {
      await context.close();
    }
  });

  it('on a phone the chat list is a drawer', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    try {
      const p = await phone.newPage();
      await p.goto(`${hearth.url}/ui/`);
      await p.getByLabel('User name').fill('alice');
      await p.getByLabel('Password', { exact: true }).fill('correct horse');
      await p.getByRole('button', { name: 'Sign in' }).click();
      await p.getByRole('textbox', { name: 'Message' }).waitFor();
      await p.goto(conversationUrl);
      await p.locator('.message.user').first().waitFor();
      expect(await p.getByRole('navigation', { name: 'Chats' }).isVisible()).toBe(false);
      await p.screenshot({ path: join(ARTIFACTS, 'chat-390x844.png') });
      await p.getByRole('button', { name: 'Open the chat list' }).click();
      await p.getByRole('navigation', { name: 'Chats' }).waitFor({ state: 'visible' });
      await p.waitForTimeout(300); // the drawer slides in
      await p.screenshot({ path: join(ARTIFACTS, 'drawer-390x844.png') });
      await p.keyboard.press('Escape');
      await p.getByRole('navigation', { name: 'Chats' }).waitFor({ state: 'hidden' });
    } finally {
      await phone.close();
    }
  });

  it('renders rich messages: tables with borders, blockquotes, math (KaTeX on demand), Markdown from people, folded reasoning', async () => {
    const alice = new UiClient(hearth.url);
    await alice.login('alice', 'correct horse');
    const at = new Date().toISOString();
    const message = (
      id: string,
      parentId: string | null,
      role: string,
      content: string,
      stats: object | null = null,
    ) => ({
      id,
      parentId,
      role,
      content,
      attachments: [],
      model: role === 'assistant' ? 'chat' : null,
      status: 'done',
      error: null,
      stats,
      createdAt: at,
    });
    const imported = await alice.post('/api/ui/import', {
      format: 'hearth.chat',
      version: 1,
      exportedAt: at,
      conversations: [
        {
          title: 'Rich messages',
          model: 'chat',
          systemPrompt: null,
          params: {},
          pinned: false,
          createdAt: at,
          updatedAt: at,
          currentLeafId: 'a',
          messages: [
            message('q', null, 'user', 'Show me **bold** and\na second line'),
            message(
              'a',
              'q',
              'assistant',
              '<think>The person wants a table.</think>\n\n| x | y |\n| - | - |\n| 1 | 2 |\n\n> quoted\n\nEuler: $e^{i\\pi} + 1 = 0$, and $$\\int_0^1 x\\,dx = \\frac12$$ for $5 and $10.',
              { reasoningMs: 1500 },
            ),
          ],
        },
      ],
    });
    expect(imported.status, imported.text).toBe(200);
    await page.goto(`${hearth.url}/ui/c/${imported.json.conversations[0].id}`);
    const reply = page.locator('.message.assistant').last();
    await reply.locator('.markdown table td', { hasText: '2' }).waitFor();
    expect(
      await reply
        .locator('.markdown td')
        .first()
        .evaluate(
          (el) =>
            (globalThis as unknown as { getComputedStyle(e: unknown): { borderTopStyle: string } }).getComputedStyle(el)
              .borderTopStyle,
        ),
    ).toBe('solid');
    await reply.locator('.markdown blockquote', { hasText: 'quoted' }).waitFor();
    // KaTeX is fetched on demand and renders both formulas; prices stay text.
    await reply.locator('.katex').nth(1).waitFor();
    expect(await reply.locator('.katex-display').count()).toBe(1);
    expect(await reply.locator('.markdown').last().textContent()).toContain('for $5 and $10.');
    // The reasoning is folded, with its duration.
    const reasoning = reply.locator('details.reasoning');
    expect(await reasoning.locator('summary').textContent()).toBe('Reasoning · 1.5 s');
    expect(await reasoning.getAttribute('open')).toBeNull();
    expect(await reply.locator('.markdown').last().textContent()).not.toContain('The person wants');
    // A person's message is Markdown too, with its line breaks kept.
    const asked = page.locator('.message.user').last();
    await asked.locator('strong', { hasText: 'bold' }).waitFor();
    expect(await asked.locator('br').count()).toBe(1);
    await page.screenshot({ path: join(ARTIFACTS, 'rich-messages-1280x800.png') });
    expect(await axeViolations(page)).toEqual([]);
  });

  it('a reply goes on while another chat is open; the sidebar marks it and the page re-attaches to it', async () => {
    await page.goto(conversationUrl);
    await page.locator('.message.user').first().waitFor();
    await page.getByRole('button', { name: 'New chat' }).click();
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.fill(LONG.prompt);
    await box.press('Enter');
    await page.waitForFunction(replyLongerThan, 20);
    const longChat = page.url();
    // Open the first chat: the reply is not stopped; the list marks the chat that is still being written.
    await page.goto(conversationUrl);
    await page.locator('.message.user').first().waitFor();
    await page.getByRole('img', { name: 'A reply is being written' }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'reply-in-background-1280x800.png') });
    // Back: the page follows the reply from where the saved text ends, to its end.
    await page.goto(longChat);
    await page.getByRole('button', { name: 'Stop' }).waitFor();
    await page.getByRole('button', { name: 'Send' }).waitFor({ timeout: 60_000 });
    const shown = await assistantText(page);
    const [row] = await atlas.query<{ content: string; status: string }>(
      `select content, status from chat_messages where role = 'assistant' order by created_at desc limit 1`,
    );
    expect(row?.status).toBe('done');
    expect(visibleText(shown)).toBe(visibleText(row?.content ?? ''));
    await page.getByRole('img', { name: 'A reply is being written' }).waitFor({ state: 'detached' });
  });

  it('SIGKILL mid-reply: a banner while the server is away, the draft kept, then exactly the saved text, marked interrupted', async () => {
    await page.getByRole('button', { name: 'New chat' }).click();
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.fill(LONG.prompt);
    await box.press('Enter');
    await page.waitForFunction(replyLongerThan, 200);
    // At least one write to Atlas (every 250 ms) before the kill.
    await page.waitForTimeout(600);
    const port = new URL(hearth.url).port;
    await hearth.stop('SIGKILL');
    await page.getByRole('alert').filter({ hasText: 'Server unreachable' }).waitFor();
    await box.fill('a draft written while the server is away');
    await page.screenshot({ path: join(ARTIFACTS, 'server-unreachable-1280x800.png') });
    hearth = await startHearthProcess({
      dirs,
      database: database.url,
      env: { HEARTH_UI_GENERATE_TITLES: 'false', HEARTH_HOST: `127.0.0.1:${port}` },
    });
    // The page finds the server again by itself and reads the chat from Atlas.
    await page.getByRole('alert').filter({ hasText: 'Server unreachable' }).waitFor({ state: 'detached' });
    await page.locator('.message.assistant .note.interrupted').waitFor();
    const [row] = await atlas.query<{ content: string; status: string }>(
      `select content, status from chat_messages where role = 'assistant' order by created_at desc limit 1`,
    );
    expect(row?.status).toBe('interrupted');
    expect(row?.content.length).toBeGreaterThan(0);
    expect(visibleText(await assistantText(page))).toBe(visibleText(row?.content ?? ''));
    expect(await box.inputValue()).toBe('a draft written while the server is away');
    await page.getByRole('button', { name: 'Regenerate' }).first().waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'interrupted-1280x800.png') });
  });
});
