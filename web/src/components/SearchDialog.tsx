import { useEffect, useState } from 'react';
import { api, type SearchHit } from '../api';
import { Dialog } from './Dialog';

/** Ctrl/Cmd+K: full-text search over titles and messages (done by the database). */
export function SearchDialog(props: { onClose: () => void; onOpen: (id: string) => void }) {
  const [query, setQuery] = useState('');
  const [results, setResults] = useState<SearchHit[]>([]);
  const [active, setActive] = useState(0);
  const [error, setError] = useState('');

  useEffect(() => {
    if (!query.trim()) {
      setResults([]);
      return;
    }
    let current = true;
    const timer = window.setTimeout(() => {
      api
        .search(query)
        .then((hits) => {
          if (!current) return;
          setResults(hits);
          setActive(0);
          setError('');
        })
        .catch((err: Error) => current && setError(err.message));
    }, 150);
    return () => {
      current = false;
      window.clearTimeout(timer);
    };
  }, [query]);

  return (
    <Dialog title="Search chats" onClose={props.onClose}>
      <input
        type="search"
        className="search-input"
        aria-label="Search titles and messages"
        placeholder="Search titles and messages"
        value={query}
        onChange={(e) => setQuery(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'ArrowDown') {
            e.preventDefault();
            setActive((a) => Math.min(a + 1, results.length - 1));
          } else if (e.key === 'ArrowUp') {
            e.preventDefault();
            setActive((a) => Math.max(a - 1, 0));
          } else if (e.key === 'Enter' && results[active]) {
            e.preventDefault();
            props.onOpen(results[active].id);
          }
        }}
      />
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <ul className="search-results" aria-label="Results">
        {results.map((hit, i) => (
          <li key={hit.id}>
            <button
              type="button"
              className={i === active ? 'result active' : 'result'}
              onClick={() => props.onOpen(hit.id)}
            >
              <strong>
                <Highlighted text={hit.title} query={query} />
              </strong>
              {hit.snippet && (
                <span className="snippet">
                  <Highlighted text={hit.snippet} query={query} />
                </span>
              )}
            </button>
          </li>
        ))}
      </ul>
      {query.trim() && results.length === 0 && !error && <p className="muted">No chat matches.</p>}
    </Dialog>
  );
}

/** `text` with the words that match the query (as prefixes, as the search does) marked. */
export function Highlighted(props: { text: string; query: string }) {
  const words = props.query
    .split(/\s+/)
    .map((w) => w.replace(/[^\p{L}\p{N}]+/gu, ''))
    .filter(Boolean);
  if (words.length === 0) return <>{props.text}</>;
  const pattern = new RegExp(`(?<![\\p{L}\\p{N}])(${words.join('|')})[\\p{L}\\p{N}]*`, 'giu');
  const parts: Array<string | { mark: string }> = [];
  let at = 0;
  for (const match of props.text.matchAll(pattern)) {
    parts.push(props.text.slice(at, match.index), { mark: match[0] });
    at = match.index + match[0].length;
  }
  parts.push(props.text.slice(at));
  return (
    <>
      {parts.map((p, i) =>
        // biome-ignore lint/suspicious/noArrayIndexKey: the parts of one string, in order, never reordered
        typeof p === 'string' ? p : <mark key={i}>{p.mark}</mark>,
      )}
    </>
  );
}
