// Code highlighting, loaded only when a message has code: highlight.js's core first, then each
// language as its own chunk the first time it appears.
import type { HLJSApi, LanguageFn } from 'highlight.js';

type LanguageLoader = () => Promise<{ default: LanguageFn }>;

const LANGUAGES: Record<string, LanguageLoader> = {
  bash: () => import('highlight.js/lib/languages/bash'),
  c: () => import('highlight.js/lib/languages/c'),
  cpp: () => import('highlight.js/lib/languages/cpp'),
  csharp: () => import('highlight.js/lib/languages/csharp'),
  css: () => import('highlight.js/lib/languages/css'),
  diff: () => import('highlight.js/lib/languages/diff'),
  dockerfile: () => import('highlight.js/lib/languages/dockerfile'),
  go: () => import('highlight.js/lib/languages/go'),
  ini: () => import('highlight.js/lib/languages/ini'),
  java: () => import('highlight.js/lib/languages/java'),
  javascript: () => import('highlight.js/lib/languages/javascript'),
  json: () => import('highlight.js/lib/languages/json'),
  kotlin: () => import('highlight.js/lib/languages/kotlin'),
  lua: () => import('highlight.js/lib/languages/lua'),
  makefile: () => import('highlight.js/lib/languages/makefile'),
  markdown: () => import('highlight.js/lib/languages/markdown'),
  nginx: () => import('highlight.js/lib/languages/nginx'),
  php: () => import('highlight.js/lib/languages/php'),
  python: () => import('highlight.js/lib/languages/python'),
  ruby: () => import('highlight.js/lib/languages/ruby'),
  rust: () => import('highlight.js/lib/languages/rust'),
  sql: () => import('highlight.js/lib/languages/sql'),
  swift: () => import('highlight.js/lib/languages/swift'),
  typescript: () => import('highlight.js/lib/languages/typescript'),
  xml: () => import('highlight.js/lib/languages/xml'),
  yaml: () => import('highlight.js/lib/languages/yaml'),
};

const ALIASES: Record<string, string> = {
  sh: 'bash',
  shell: 'bash',
  zsh: 'bash',
  console: 'bash',
  'c++': 'cpp',
  cs: 'csharp',
  docker: 'dockerfile',
  golang: 'go',
  toml: 'ini',
  js: 'javascript',
  jsx: 'javascript',
  mjs: 'javascript',
  md: 'markdown',
  py: 'python',
  rb: 'ruby',
  rs: 'rust',
  ts: 'typescript',
  tsx: 'typescript',
  html: 'xml',
  svg: 'xml',
  yml: 'yaml',
  kt: 'kotlin',
};

let core: Promise<HLJSApi> | undefined;
const loaded = new Map<string, Promise<boolean>>();

function language(name: string): Promise<boolean> {
  const canonical = ALIASES[name] ?? name;
  const loader = LANGUAGES[canonical];
  if (!loader) return Promise.resolve(false);
  let ready = loaded.get(canonical);
  if (!ready) {
    core ??= import('highlight.js/lib/core').then((m) => m.default);
    ready = Promise.all([core, loader()]).then(([hljs, lang]) => {
      hljs.registerLanguage(canonical, lang.default);
      for (const [alias, target] of Object.entries(ALIASES)) {
        if (target === canonical) hljs.registerAliases(alias, { languageName: canonical });
      }
      return true;
    });
    loaded.set(canonical, ready);
  }
  return ready;
}

/** Highlights the code blocks inside `root` that name a known language. */
export async function highlightWithin(root: HTMLElement): Promise<void> {
  const blocks = [...root.querySelectorAll<HTMLElement>('pre code[class*="language-"]:not([data-highlighted])')];
  for (const block of blocks) {
    const name = /language-([\w+#-]+)/.exec(block.className)?.[1] ?? '';
    if (!(await language(name))) continue;
    const hljs = await (core as Promise<HLJSApi>);
    if (!block.isConnected) continue;
    hljs.highlightElement(block);
  }
}
