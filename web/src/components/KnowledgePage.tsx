// The Knowledge page (/ui/knowledge), loaded on demand so the chat's first bundle does not grow:
// create a base, upload documents, watch their ingestion. Chats use a base with #name in the composer.
import { useCallback, useEffect, useState } from 'react';
import { type AddedFile, api, type KnowledgeBase, type KnowledgeDocument } from '../api';

export default function KnowledgePage(props: { onClose: () => void }) {
  const [bases, setBases] = useState<KnowledgeBase[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [error, setError] = useState('');
  const [name, setName] = useState('');
  const [model, setModel] = useState('');

  const refresh = useCallback(async () => {
    setBases(await api.knowledgeBases());
  }, []);

  useEffect(() => {
    refresh().catch((err: Error) => setError(err.message));
  }, [refresh]);

  const create = async () => {
    setError('');
    try {
      const made = await api.createKnowledgeBase({
        name,
        ...(model ? { embedding_model: model } : {}),
      });
      setName('');
      await refresh();
      setSelected(made.name);
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <main className="knowledge-page" aria-label="Knowledge">
      <header className="knowledge-head">
        <h1>Knowledge</h1>
        <button type="button" onClick={props.onClose}>
          Back to chat
        </button>
      </header>
      <p className="muted">
        Documents to answer from. In a chat, write <code>#name</code> to use a base; the reply cites its sources.
      </p>
      <form
        className="knowledge-create"
        onSubmit={(e) => {
          e.preventDefault();
          void create();
        }}
      >
        <input aria-label="New base name" placeholder="name" value={name} onChange={(e) => setName(e.target.value)} />
        <input
          aria-label="Embedding model"
          placeholder="embedding model (empty: the configured one)"
          value={model}
          onChange={(e) => setModel(e.target.value)}
        />
        <button type="submit" className="primary" disabled={!name}>
          Create
        </button>
      </form>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <ul className="knowledge-bases">
        {bases.map((b) => (
          <li key={b.id}>
            <button type="button" aria-pressed={selected === b.name} onClick={() => setSelected(b.name)}>
              #{b.name}
            </button>{' '}
            <span className="muted">
              {b.documents} documents · {b.chunks} chunks{b.sharing === 'shared' ? ' · shared' : ''}
            </span>
          </li>
        ))}
      </ul>
      {selected && <BaseDocuments key={selected} name={selected} onChanged={refresh} />}
    </main>
  );
}

function BaseDocuments(props: { name: string; onChanged: () => Promise<void> }) {
  const [documents, setDocuments] = useState<KnowledgeDocument[]>([]);
  const [results, setResults] = useState<AddedFile[]>([]);
  const [error, setError] = useState('');

  const load = useCallback(async () => {
    const documents = await api.knowledgeDocuments(props.name);
    setDocuments(documents);
    return documents;
  }, [props.name]);

  // Poll while anything is being ingested.
  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const tick = async () => {
      const docs = await load().catch(() => []);
      if (!stopped && docs.some((d) => d.state === 'pending')) timer = window.setTimeout(() => void tick(), 1000);
      else void props.onChanged();
    };
    void tick();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [load, props.onChanged]);

  const upload = async (files: FileList | null) => {
    if (!files?.length) return;
    setError('');
    try {
      setResults(await api.addKnowledgeFiles(props.name, [...files]));
      const docs = await load();
      if (docs.some((d) => d.state === 'pending')) {
        const poll = async () => {
          const next = await load().catch(() => []);
          if (next.some((d) => d.state === 'pending')) window.setTimeout(() => void poll(), 1000);
          else void props.onChanged();
        };
        window.setTimeout(() => void poll(), 1000);
      }
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <section className="knowledge-docs" aria-label={`Documents of ${props.name}`}>
      <h2>#{props.name}</h2>
      <label className="button">
        Upload documents
        <input type="file" multiple hidden onChange={(e) => void upload(e.target.files)} />
      </label>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {results
        .filter((r) => r.status !== 'added')
        .map((r) => (
          <p key={r.name} className={r.status === 'refused' ? 'error' : 'note'}>
            {r.status === 'refused' ? r.error : `${r.name}: already in this base`}
          </p>
        ))}
      <table>
        <thead>
          <tr>
            <th>Document</th>
            <th>State</th>
            <th>Chunks</th>
          </tr>
        </thead>
        <tbody>
          {documents.map((d) => (
            <tr key={d.id} data-state={d.state}>
              <td>{d.name}</td>
              <td>
                {d.state === 'pending'
                  ? `ingesting${d.embedded !== null ? ` (${d.embedded} chunks embedded)` : '…'}`
                  : d.state === 'failed'
                    ? `failed: ${d.error}`
                    : 'ready'}
              </td>
              <td>{d.chunks}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
