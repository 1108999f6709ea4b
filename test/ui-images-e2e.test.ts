// "Create image" end to end in real headless Chromium on a phone (390×844, touch) against a real
// hearth (in this process, embedded PGlite Atlas) with a generated diffusers-layout ONNX model: the
// composer's action, the busy state, the picture as a thumbnail with the viewer, still there after
// a reload (it is on Atlas), 44 px touch targets and axe. Kept short: a tiny size and two steps. Then
// Stop: a long draw stopped from the composer (the prompt comes back, nothing is stored), and a draw
// that a reload finds still running, shown, followed and stopped.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { axeViolations, launchChromium } from './support/browser.js';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { addImageModel } from './support/models.js';
import { UiClient } from './support/ui-client.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;
let browser: Browser;
let phone: BrowserContext;
let page: Page;
/** Screenshots for people to look at (a temporary folder; its path is logged). */
let shots: string;

/** The decoded width of an image in the page (0 until it has loaded). */
const naturalWidth = (img: Locator) => img.evaluate((el) => (el as unknown as { naturalWidth: number }).naturalWidth);

async function loadedWidth(img: Locator): Promise<number> {
  await img.waitFor();
  for (let i = 0; i < 50 && (await naturalWidth(img)) === 0; i++) await page.waitForTimeout(100);
  return naturalWidth(img);
}

/** "Create image" mode (a reload leaves it) for a long draw: 1024×1024, 100 steps, seconds on the tiny model. */
async function startImageMode(): Promise<void> {
  const toggle = page.getByRole('button', { name: 'Create image' });
  await toggle.click();
  expect(await toggle.getAttribute('aria-pressed')).toBe('true');
  await page.getByLabel('Size').selectOption('1024x1024');
  await page.getByLabel('Steps').fill('100');
}

beforeAll(async () => {
  shots = await mkdtemp(join(tmpdir(), 'hearth-ui-images-e2e-'));
  console.log(`screenshots: ${shots}`);
  dirs = await hearthDirs('hearth-ui-images-e2e-');
  hearth = await startHearthInProcess(dirs, { images: { executionProvider: 'cpu' }, ui: { generateTitles: false } });
  await addImageModel(hearth.url, dirs.atlas);
  const alice = new UiClient(hearth.url);
  alice.csrf = 'x';
  const setup = await alice.post('/api/ui/setup', { username: 'alice', password: 'correct horse' });
  if (setup.status !== 201) throw new Error(`setup failed: ${setup.text}`);
  browser = await launchChromium();
  phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  page = await phone.newPage();
  await page.goto(`${hearth.url}/ui/`);
  await page.getByLabel('User name').fill('alice');
  await page.getByLabel('Password', { exact: true }).fill('correct horse');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('textbox', { name: 'Message' }).waitFor();
}, 300_000); // an ONNX fixture, a server and Chromium: slow on a busy 2-core machine

afterAll(async () => {
  await phone?.close();
  await browser?.close();
  await hearth?.close();
  await dirs?.cleanup();
});

describe('Create image in the chat', () => {
  it('draws the prompt, shows it as a thumbnail with the viewer, and keeps it after a reload', async () => {
    const toggle = page.getByRole('button', { name: 'Create image' });
    await toggle.click();
    expect(await toggle.getAttribute('aria-pressed')).toBe('true');
    await page.getByLabel('Image model').waitFor();
    expect(await page.getByLabel('Image model').inputValue()).toBe('tiny-sd:latest');
    await page.getByLabel('Size').selectOption('256x256');
    await page.getByLabel('Steps').fill('2');
    await page.getByRole('textbox', { name: 'Image prompt' }).fill('a red house');

    // Every control of the composer is a 44 px touch target, and axe passes in this mode.
    const small = await page.locator('form.composer').evaluate((form) =>
      Array.from(
        (form as unknown as { querySelectorAll(s: string): ArrayLike<unknown> }).querySelectorAll(
          'button, select, input:not([hidden]), textarea',
        ),
      )
        .map((el) => {
          const e = el as { getBoundingClientRect(): { height: number; width: number }; outerHTML: string };
          const box = e.getBoundingClientRect();
          return { name: e.outerHTML.slice(0, 60), height: box.height, width: box.width };
        })
        .filter((b) => b.height > 0 && (b.height < 44 || b.width < 44)),
    );
    expect(small).toEqual([]);
    expect(await axeViolations(page)).toEqual([]);
    await page.screenshot({ path: join(shots, 'create-image-390x844.png') });

    // The answer is held back until the page's busy state is seen (a tiny image is drawn too fast to watch).
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    await page.route('**/api/ui/conversations/*/images', async (route) => {
      const response = await route.fetch();
      await held;
      await route.fulfill({ response });
    });
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    await page.getByRole('status').getByText('Creating “a red house”…').waitFor();
    // Busy: the composer offers Stop instead of Create.
    await page.getByRole('button', { name: 'Stop' }).waitFor();
    expect(await page.getByRole('button', { name: 'Create', exact: true }).count()).toBe(0);
    await page.getByRole('progressbar', { name: 'Image progress' }).waitFor();
    await page.screenshot({ path: join(shots, 'creating-390x844.png') });
    expect(await axeViolations(page)).toEqual([]);
    release();
    const reply = page.getByRole('article', { name: 'Reply from tiny-sd:latest' });
    const thumb = reply.getByRole('img', { name: 'a red house.png' });
    expect(await loadedWidth(thumb)).toBe(256);
    await page.getByRole('article', { name: 'Your message' }).getByText('a red house').waitFor();
    await reply.getByText(/256×256 · 2 steps · seed \d+/).waitFor();
    // A created image is not a model's reply: no Regenerate under it (Create image makes another).
    expect(await reply.getByRole('button', { name: 'Regenerate' }).count()).toBe(0);
    // The new chat is named by the prompt and has its own address.
    expect(new URL(page.url()).pathname).toMatch(/^\/ui\/c\/[\w-]+$/);
    await page.screenshot({ path: join(shots, 'created-390x844.png') });
    expect(await axeViolations(page)).toEqual([]);

    // On Atlas: after a reload the picture is still there, and opens in the viewer.
    await page.reload();
    const again = page.getByRole('article', { name: 'Reply from tiny-sd:latest' }).getByRole('img', {
      name: 'a red house.png',
    });
    expect(await loadedWidth(again)).toBe(256);
    await page.getByRole('button', { name: 'Open a red house.png' }).click();
    const viewer = page.getByRole('dialog', { name: 'a red house.png' });
    await viewer.getByRole('img', { name: 'a red house.png' }).waitFor();
    await page.screenshot({ path: join(shots, 'viewer-390x844.png') });
    expect(await axeViolations(page)).toEqual([]);
    await page.keyboard.press('Escape');
    await viewer.waitFor({ state: 'detached' });
    // Its answer was delivered long ago: the next draws stream as they come.
    await page.unroute('**/api/ui/conversations/*/images');
  });

  it('stops a long draw from the composer: the prompt comes back and nothing is stored', async () => {
    const answers = page.getByRole('article', { name: 'Reply from tiny-sd:latest' });
    const before = await answers.count();
    await startImageMode();
    const prompt = page.getByRole('textbox', { name: 'Image prompt' });
    await prompt.fill('a slow green field');
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    // Stopped once it is drawing (a step shown), between two of its 100 steps.
    await page
      .getByRole('status')
      .getByText(/Creating “a slow green field”… step \d+ of 100/)
      .waitFor();
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.getByRole('progressbar', { name: 'Image progress' }).waitFor({ state: 'detached' });
    expect(await prompt.inputValue()).toBe('a slow green field');
    await page.getByRole('button', { name: 'Create', exact: true }).waitFor();
    expect(await answers.count()).toBe(before);
    await page.reload();
    await page.getByRole('article', { name: 'Your message' }).first().waitFor();
    expect(await page.getByText('a slow green field').count()).toBe(0);
  });

  it('shows a draw still running after a reload, follows it, and stops it', async () => {
    await startImageMode();
    const prompt = page.getByRole('textbox', { name: 'Image prompt' });
    await prompt.fill('a field after a reload');
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    await page
      .getByRole('status')
      .getByText(/step \d+ of 100/)
      .waitFor();
    await page.reload();
    // The reloaded page shows the picture being drawn, its steps going on, and offers Stop.
    await page
      .getByRole('status')
      .getByText(/Creating “a field after a reload”… step \d+ of 100/)
      .waitFor();
    await page.getByRole('progressbar', { name: 'Image progress' }).waitFor();
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.getByText('Stopped: nothing of “a field after a reload” was stored.').waitFor();
    await page.getByRole('progressbar', { name: 'Image progress' }).waitFor({ state: 'detached' });
    expect(await page.getByRole('article', { name: 'Your message' }).getByText('a field after a reload').count()).toBe(
      0,
    );
  });
});
