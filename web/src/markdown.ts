// Markdown for messages: markdown-it with raw HTML off (a model's output is never trusted as HTML),
// code blocks with a language label and a copy button, math marked for KaTeX. Highlighting and math
// are applied afterwards, each loaded on demand (./highlight.ts, ./math.ts), so the first page load
// carries neither.
import MarkdownIt from 'markdown-it';

const md = new MarkdownIt({ html: false, linkify: true, breaks: false });

md.renderer.rules.fence = (tokens, idx) => {
  const token = tokens[idx];
  if (!token) return '';
  const lang = (token.info.trim().split(/\s+/)[0] ?? '').toLowerCase();
  const safeLang = lang.replace(/[^a-z0-9+#_-]/g, '');
  const code = md.utils.escapeHtml(token.content);
  const cls = safeLang ? ` class="language-${safeLang}"` : '';
  return (
    `<div class="code-block"><div class="code-head"><span>${safeLang || 'text'}</span>` +
    `<button type="button" class="copy" data-copy aria-label="Copy code">Copy</button></div>` +
    `<pre><code${cls}>${code}</code></pre></div>\n`
  );
};

const defaultLink =
  md.renderer.rules.link_open ?? ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  const token = tokens[idx];
  token?.attrSet('target', '_blank');
  token?.attrSet('rel', 'noopener noreferrer');
  return defaultLink(tokens, idx, options, env, self);
};

// Math: `$$…$$` and `\[…\]` (display), `$…$` and `\(…\)` (inline). A `$` followed by a space or
// a digit after the closing one (prices: "$5 and $10") is text.
const MATH_OPENERS: Array<[string, string, boolean]> = [
  ['$$', '$$', true],
  ['\\[', '\\]', true],
  ['\\(', '\\)', false],
  ['$', '$', false],
];

md.inline.ruler.before('escape', 'math', (state, silent) => {
  const src = state.src;
  const at = state.pos;
  for (const [open, close, display] of MATH_OPENERS) {
    if (!src.startsWith(open, at)) continue;
    const from = at + open.length;
    let end = src.indexOf(close, from);
    while (end > 0 && src[end - 1] === '\\' && close === '$') end = src.indexOf(close, end + 1);
    if (end < 0) continue;
    const tex = src.slice(from, end);
    if (!tex.trim()) continue;
    if (open === '$' && (/^\s|\s$/.test(tex) || /\d/.test(src[end + 1] ?? '') || tex.includes('\n\n'))) continue;
    if (!silent) {
      const token = state.push('math', 'span', 0);
      token.content = tex;
      token.markup = open;
      token.meta = { display };
    }
    state.pos = end + close.length;
    return true;
  }
  return false;
});

md.renderer.rules['math'] = (tokens, idx) => {
  const token = tokens[idx];
  if (!token) return '';
  const display = (token.meta as { display: boolean }).display;
  const tex = md.utils.escapeHtml(token.content);
  const source = md.utils.escapeHtml(`${token.markup}${token.content}${closerOf(token.markup)}`);
  return `<span class="math${display ? ' math-display' : ''}" data-tex="${tex}">${source}</span>`;
};

function closerOf(open: string): string {
  return MATH_OPENERS.find(([o]) => o === open)?.[1] ?? open;
}

/** Renders Markdown; `breaks` keeps single line breaks (what people mean when they type them). */
export function renderMarkdown(text: string, breaks = false): string {
  md.options.breaks = breaks;
  try {
    return md.render(text);
  } finally {
    md.options.breaks = false;
  }
}

/** A reply split into its reasoning (`<think>…</think>` at its start) and its answer. */
export interface Reasoned {
  /** the reasoning, or null when the reply has none */
  reasoning: string | null;
  /** true while the reasoning is still being written (no `</think>` yet) */
  thinking: boolean;
  answer: string;
}

/** Splits off a leading `<think>` block (the form reasoning models write it in). */
export function splitReasoning(text: string): Reasoned {
  const start = /^\s*<think>/.exec(text);
  if (!start) return { reasoning: null, thinking: false, answer: text };
  const rest = text.slice(start[0].length);
  const end = rest.indexOf('</think>');
  if (end < 0) return { reasoning: rest.trim(), thinking: true, answer: '' };
  return {
    reasoning: rest.slice(0, end).trim(),
    thinking: false,
    answer: rest.slice(end + '</think>'.length).trimStart(),
  };
}
