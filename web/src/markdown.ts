// Markdown for replies: markdown-it with raw HTML off (a model's output is never trusted as HTML),
// code blocks with a language label and a copy button. Highlighting is applied afterwards, loaded
// on demand (./highlight.ts), so the first page load carries no highlighter.
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

export function renderMarkdown(text: string): string {
  return md.render(text);
}
