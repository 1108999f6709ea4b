/// <reference types="vite/client" />
// Math, loaded only when a message has some: KaTeX (its script and its stylesheet with fonts) is a
// chunk of its own, fetched the first time a `$…$`, `$$…$$`, `\(…\)` or `\[…\]` is shown.
// KaTeX (https://katex.org) renders TeX to HTML with no browser plugins and no eval, so it runs
// under the page's Content-Security-Policy; `trust: false` keeps \href and friends off.
type Katex = typeof import('katex').default;

let katex: Promise<Katex> | undefined;

function loadKatex(): Promise<Katex> {
  katex ??= Promise.all([import('katex'), import('katex/dist/katex.min.css')]).then(([m]) => m.default);
  return katex;
}

/** Renders every `.math[data-tex]` inside `root` (left as its TeX source when it does not parse). */
export async function renderMathWithin(root: HTMLElement): Promise<void> {
  const spans = [...root.querySelectorAll<HTMLElement>('.math[data-tex]')];
  if (spans.length === 0) return;
  const k = await loadKatex();
  for (const span of spans) {
    const tex = span.dataset['tex'] ?? '';
    k.render(tex, span, {
      displayMode: span.classList.contains('math-display'),
      throwOnError: false,
      trust: false,
      output: 'htmlAndMathml',
    });
    span.removeAttribute('data-tex');
  }
}
