// The chat UI at data scale (issue 6): one account with 10,000 conversations, one of them 2,000
// messages long. A benchmark, not a test: it prints how long the API and the page take.
//
//   npm run build && npx tsx bench/ui-scale.ts [--conversations 10000] [--messages 2000]
//
// Needs Debian's chromium (or HEARTH_CHROMIUM). The data is written straight into a fresh
// embedded Atlas, then `hearth serve` (dist/) is started on it and driven with playwright-core.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { openAtlasDb } from '../src/atlas/db/index.js';
import { UserStore } from '../src/chat/index.js';
import { silentLogger } from '../src/log.js';

const REPO = new URL('../', import.meta.url).pathname;
const { values } = parseArgs({
  options: { conversations: { type: 'string', default: '10000' }, messages: { type: 'string', default: '2000' } },
});
const CONVERSATIONS = Number(values.conversations);
const MESSAGES = Number(values.messages);
const CHROMIUM = process.env['HEARTH_CHROMIUM'] ?? '/usr/bin/chromium';

/** The browser's globals as page-side code here uses them (this tsconfig has no DOM library). */
interface InBrowser {
  document: {
    querySelector(selector: string): {
      scrollTop: number;
      scrollHeight: number;
      querySelector(selector: string): { textContent: string | null } | null;
    } | null;
    querySelectorAll(selector: string): { length: number };
  };
}

const ms = (t0: number) => `${Math.round(performance.now() - t0)} ms`;
const out = (line: string) => process.stdout.write(`${line}\n`);

const root = await mkdtemp(join(tmpdir(), 'hearth-ui-scale-'));
const atlas = join(root, 'atlas');
let child: ChildProcess | undefined;
try {
  // ---- data, straight into the database
  let t0 = performance.now();
  const db = await openAtlasDb({
    database: 'embedded',
    embeddedDir: join(atlas, '.hearth', 'db'),
    log: silentLogger(),
  });
  const user = await new UserStore({ db }).create({ username: 'alice', password: 'correct horse', role: 'admin' });
  await db.query(
    `insert into conversations (id, user_id, title, model, current_leaf_id, updated_at)
     select 'c' || i, $1, 'Conversation number ' || i || ' about ' || (array['boats','bread','linux','tax','garden'])[1 + i % 5],
            'chat:latest', 'c' || i || '-a', now() - (i * interval '1 minute')
     from generate_series(1, $2::int) i`,
    [user.id, CONVERSATIONS],
  );
  await db.query(
    `insert into chat_messages (id, conversation_id, parent_id, role, content)
     select 'c' || i || '-' || r, 'c' || i, case when r = 'u' then null else 'c' || i || '-u' end,
            case when r = 'u' then 'user' else 'assistant' end, 'Message ' || r || ' of conversation ' || i
     from generate_series(1, $1::int) i, unnest(array['u', 'a']) r`,
    [CONVERSATIONS],
  );
  const text = 'A paragraph with **bold** words, a [link](https://example.org) and `inline code`. '.repeat(4);
  const code = '\n\n```python\ndef answer(question):\n    return 42  # always\n```\n';
  await db.query(
    `insert into conversations (id, user_id, title, model, current_leaf_id, updated_at)
     values ('long', $1, 'The long one', 'chat:latest', 'long-' || $2::int, now())`,
    [user.id, MESSAGES],
  );
  await db.query(
    `insert into chat_messages (id, conversation_id, parent_id, role, content, stats)
     select 'long-' || i, 'long', case when i = 1 then null else 'long-' || (i - 1) end,
            case when i % 2 = 1 then 'user' else 'assistant' end,
            $2 || case when i % 20 = 0 then $3 else '' end,
            case when i % 2 = 0 then '{"evalTokens": 120, "tokensPerSecond": 40.5}'::jsonb end
     from generate_series(1, $1::int) i order by i`,
    [MESSAGES, text, code],
  );
  await db.close();
  out(
    `data: ${CONVERSATIONS.toLocaleString('en')} conversations + one of ${MESSAGES.toLocaleString('en')} messages, written in ${ms(t0)}`,
  );

  // ---- hearth serve on that Atlas
  child = spawn(process.execPath, [join(REPO, 'bin', 'hearth.js'), 'serve'], {
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: join(root, 'home'),
      HEARTH_ATLAS_FILES: atlas,
      HEARTH_NODE_CACHE_DIR: join(root, 'cache'),
      HEARTH_HOST: '127.0.0.1:0',
      HEARTH_LOG_LEVEL: 'info',
      NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let logs = '';
    const timer = setTimeout(() => reject(new Error(`hearth did not start:\n${logs}`)), 120_000);
    child!.stderr!.on('data', (chunk: Buffer) => {
      if (logs.length < 100_000) logs += chunk.toString();
      const m = /"urls":\["(http:\/\/[^"]+)"/.exec(logs);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child!.once('exit', () => reject(new Error(`hearth exited:\n${logs}`)));
  });

  // ---- the API
  const login = await fetch(`${url}/api/ui/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-hearth-csrf': 'x' },
    body: JSON.stringify({ username: 'alice', password: 'correct horse' }),
  });
  const cookie = /hearth_session=[^;]+/.exec(login.headers.get('set-cookie') ?? '')?.[0] ?? '';
  const get = async (path: string) => {
    const t = performance.now();
    const res = await fetch(`${url}${path}`, { headers: { cookie } });
    const body = await res.text();
    return { ms: performance.now() - t, bytes: body.length, json: JSON.parse(body) };
  };
  await get('/api/ui/conversations?limit=100'); // warm-up
  const first = await get('/api/ui/conversations?limit=100');
  out(`API: first sidebar page (100 of ${CONVERSATIONS + 1}): ${Math.round(first.ms)} ms`);
  t0 = performance.now();
  let pages = 0;
  for (let after: string | null = null, guard = 0; guard < 1000; guard++) {
    const page = await get(`/api/ui/conversations?limit=100${after ? `&after=${after}` : ''}`);
    pages++;
    after = page.json.next;
    if (!after) break;
  }
  out(`API: every page of the sidebar (${pages} pages of 100): ${ms(t0)}`);
  const long = await get('/api/ui/conversations/long');
  out(`API: the ${MESSAGES}-message conversation: ${Math.round(long.ms)} ms, ${(long.bytes / 1024).toFixed(0)} KiB`);
  const search = await get('/api/ui/search?q=garden');
  out(
    `API: search "garden" over ${CONVERSATIONS + 1} titles and ${2 * CONVERSATIONS + MESSAGES} messages: ${Math.round(search.ms)} ms`,
  );

  // ---- the page
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.addCookies([{ name: 'hearth_session', value: cookie.split('=')[1] ?? '', url }]);
    const page = await context.newPage();
    await page.goto(`${url}/ui/`); // warm the HTTP cache of the app itself
    await page.locator('.chat-row').first().waitFor();
    t0 = performance.now();
    await page.goto(`${url}/ui/`);
    await page.locator('.chat-row').first().waitFor();
    out(`page: sidebar shown (first page, ${await page.locator('.chat-row').count()} rows in the DOM): ${ms(t0)}`);
    t0 = performance.now();
    for (let guard = 0; guard < 2000; guard++) {
      // Done when the oldest conversation is the last row.
      const done = await page.evaluate((oldest) => {
        const list = (globalThis as unknown as InBrowser).document.querySelector('.chat-list');
        if (!list) return true;
        list.scrollTop = list.scrollHeight;
        return list.querySelector('li:last-child .title')?.textContent?.startsWith(oldest) ?? false;
      }, `Conversation number ${CONVERSATIONS} `);
      if (done) break;
      await page.waitForTimeout(20);
    }
    out(
      `page: sidebar scrolled to the end, all ${CONVERSATIONS + 1} loaded (${await page.locator('.chat-row').count()} rows in the DOM): ${ms(t0)}`,
    );

    t0 = performance.now();
    await page.goto(`${url}/ui/c/long`);
    await page.locator('.message').last().waitFor();
    out(`page: the ${MESSAGES}-message conversation shown (latest 200 rendered): ${ms(t0)}`);
    t0 = performance.now();
    await page.getByRole('button', { name: /earlier messages/ }).click();
    await page.waitForFunction(
      (n) => (globalThis as unknown as InBrowser).document.querySelectorAll('.message').length >= n,
      MESSAGES,
    );
    out(`page: all ${MESSAGES} messages rendered after "Show earlier": ${ms(t0)}`);
    const chunks = await page.evaluate(
      () =>
        performance
          .getEntriesByType('resource')
          .map((e) => e.name)
          .filter((n) => /assets\/(core|python)-/.test(n)).length,
    );
    out(`page: highlighting chunks loaded on demand for the code blocks: ${chunks}`);
  } finally {
    await browser.close();
  }
} finally {
  child?.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  await rm(root, { recursive: true, force: true });
}
