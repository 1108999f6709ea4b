// Real headless Chromium (Debian's package, driven by playwright-core) for the UI's end-to-end tests,
// and axe's accessibility check of a page. Never `npx playwright install`: the browser is the system's.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { type Browser, chromium, type Page } from 'playwright-core';

export const CHROMIUM = process.env['HEARTH_CHROMIUM'] ?? '/usr/bin/chromium';

/** Starts headless Chromium, or says how to get it. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: install Debian's chromium package (scripts/ensure-test-deps.sh does) or set HEARTH_CHROMIUM`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

interface AxeInPage {
  axe: {
    run(
      context: unknown,
      options: object,
    ): Promise<{ violations: Array<{ id: string; impact: string; nodes: Array<{ target: unknown }> }> }>;
  };
  document: unknown;
}

/** axe's violations on the page as it is now, one line each (rule, impact, where). */
export async function axeViolations(p: Page): Promise<string[]> {
  const source = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  // evaluate() is not subject to the page's Content-Security-Policy (which refuses inline scripts).
  await p.evaluate(source);
  const result = await p.evaluate(async () => {
    const web = globalThis as unknown as AxeInPage;
    return web.axe.run(web.document, { resultTypes: ['violations'] });
  });
  return result.violations.map(
    (v) =>
      `${v.id} (${v.impact}, ${v.nodes.length} nodes: ${JSON.stringify(v.nodes.slice(0, 3).map((n) => n.target))})`,
  );
}
