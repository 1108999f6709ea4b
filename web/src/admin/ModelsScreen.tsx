// Models: pull (a task on the server, followed by polling: closing the page does not stop it), the
// installed models with what they can do, the loaded ones with memory and keep-alive, copy, delete,
// import a GGUF already on Atlas, and create from a Modelfile.
import { useCallback, useRef, useState } from 'react';
import { Dialog } from '../components/Dialog';
import { type AdminModel, admin, bytes, duration, expiry, type LoadedModel, type Pull } from './client';
import { usePoll } from './poll';

const KEEP_ALIVE = [
  { value: '5m', label: '5 minutes' },
  { value: '30m', label: '30 minutes' },
  { value: '2h', label: '2 hours' },
  { value: '-1', label: 'forever' },
];

export function ModelsScreen() {
  const [models, setModels] = useState<AdminModel[] | null>(null);
  const [loaded, setLoaded] = useState<LoadedModel[]>([]);
  const [pulls, setPulls] = useState<Pull[]>([]);
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [source, setSource] = useState('');
  const [deleting, setDeleting] = useState<AdminModel | null>(null);
  const [copying, setCopying] = useState<AdminModel | null>(null);

  const refreshModels = useCallback(async () => {
    const out = await admin.models();
    setModels(out.models);
    setLoaded(out.loaded);
  }, []);
  const runningIds = useRef(new Set<string>());
  const refreshPulls = useCallback(async () => {
    const next = await admin.pulls();
    // A pull that just ended added a model: show it now.
    const ended = next.some((p) => p.state !== 'running' && runningIds.current.has(p.id));
    runningIds.current = new Set(next.filter((p) => p.state === 'running').map((p) => p.id));
    setPulls(next);
    if (ended) await refreshModels();
  }, [refreshModels]);
  const running = pulls.some((p) => p.state === 'running');
  usePoll(refreshPulls, running ? 700 : 4000, setError);
  usePoll(refreshModels, 5000, setError);

  const act = async (what: () => Promise<unknown>, done?: string) => {
    setNotice('');
    try {
      await what();
      if (done) setNotice(done);
      await Promise.all([refreshModels(), refreshPulls()]);
    } catch (err) {
      setError((err as Error).message);
    }
  };

  const shown = pulls.filter((p, i) => p.state === 'running' || i < 6);
  return (
    <>
      <section aria-labelledby="pull-title" className="admin-card">
        <h2 id="pull-title">Pull a model</h2>
        <form
          className="admin-form"
          onSubmit={(e) => {
            e.preventDefault();
            const s = source.trim();
            if (!s) return;
            void act(async () => {
              await admin.pull(s);
              setSource('');
            });
          }}
        >
          <label className="grow">
            Model to pull
            <input
              value={source}
              onChange={(e) => setSource(e.target.value)}
              placeholder="llama3.2, hf:owner/repo/model-Q4_K_M.gguf or https://…/model.gguf"
              autoComplete="off"
            />
          </label>
          <button type="submit" className="primary" disabled={!source.trim()}>
            Pull
          </button>
        </form>
        <p className="muted">
          The server downloads it to Atlas. Closing this page does not stop it; its progress shows here again from any
          node.
        </p>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        {notice && (
          <p className="muted" role="status">
            {notice}
          </p>
        )}
        {shown.length > 0 && (
          <ul className="pulls" aria-label="Pulls">
            {shown.map((p) => (
              <PullRow key={p.id} pull={p} onCancel={() => void act(() => admin.cancelPull(p.id))} />
            ))}
          </ul>
        )}
      </section>

      <section aria-labelledby="loaded-title" className="admin-card">
        <h2 id="loaded-title">Loaded now</h2>
        {loaded.length === 0 ? (
          <p className="muted">No model is loaded. A model loads when it is first asked something.</p>
        ) : (
          <ul className="admin-list" aria-label="Loaded models">
            {loaded.map((l) => (
              <LoadedRow
                key={`${l.digest}-${l.name}`}
                model={l}
                onUnload={() => void act(() => admin.unload(l.name), `${l.name} unloaded.`)}
                onKeepAlive={(value) => void act(() => admin.keepAlive(l.name, value), `${l.name}: keep-alive set.`)}
              />
            ))}
          </ul>
        )}
      </section>

      <section aria-labelledby="installed-title" className="admin-card">
        <h2 id="installed-title">Installed</h2>
        {models === null ? (
          <p className="muted">Loading…</p>
        ) : models.length === 0 ? (
          <p className="muted">No models yet: pull one above, or import a GGUF that is already on Atlas below.</p>
        ) : (
          <ul className="admin-list" aria-label="Installed models">
            {models.map((m) => (
              <ModelRow
                key={m.name}
                model={m}
                loaded={loaded.some((l) => l.digest === m.digest)}
                onLoad={() => void act(() => admin.keepAlive(m.name, '5m'), `${m.name} loaded.`)}
                onCopy={() => setCopying(m)}
                onDelete={() => setDeleting(m)}
              />
            ))}
          </ul>
        )}
      </section>

      <AddModel onDone={(text) => void act(async () => undefined, text)} onError={setError} />

      {deleting && models && (
        <ConfirmDelete
          model={deleting}
          sharing={models.filter((m) => m.digest === deleting.digest && m.name !== deleting.name).map((m) => m.name)}
          onClose={() => setDeleting(null)}
          onDelete={() => {
            const name = deleting.name;
            setDeleting(null);
            void act(() => admin.deleteModel(name), `${name} deleted.`);
          }}
        />
      )}
      {copying && (
        <CopyDialog
          model={copying}
          onClose={() => setCopying(null)}
          onCopy={(destination) => {
            const from = copying.name;
            setCopying(null);
            void act(() => admin.copyModel(from, destination), `${from} copied to ${destination}.`);
          }}
        />
      )}
    </>
  );
}

function PullRow(props: { pull: Pull; onCancel: () => void }) {
  const p = props.pull;
  const speed = p.bytesPerSecond ?? 0;
  const left = p.total !== null && speed > 0 ? (p.total - p.completed) / speed : null;
  const percent = p.total ? Math.floor((p.completed / p.total) * 100) : null;
  return (
    <li className={`pull ${p.state}`}>
      <div className="pull-head">
        <strong className="break">{p.model ?? p.source}</strong>
        <span className={`state ${p.state}`}>{p.state}</span>
      </div>
      {p.model && p.model !== p.source && <div className="muted break">{p.source}</div>}
      {p.state === 'running' && (
        <>
          <progress
            aria-label={`Pulling ${p.model ?? p.source}`}
            max={p.total ?? undefined}
            value={p.total ? p.completed : undefined}
          />
          <div className="pull-figures" aria-live="polite">
            {percent !== null && <span>{percent}%</span>}
            <span className="pull-bytes">
              {bytes(p.completed)}
              {p.total !== null && ` of ${bytes(p.total)}`}
            </span>
            {speed > 0 && <span className="pull-speed">{bytes(speed)}/s</span>}
            {left !== null && <span className="pull-eta">{duration(left)} left</span>}
            <span className="muted">{p.status}</span>
          </div>
          <button type="button" onClick={props.onCancel}>
            Cancel pull
          </button>
        </>
      )}
      {p.state === 'done' && <div className="muted">Pulled {bytes(p.completed)}.</div>}
      {p.error && p.state !== 'done' && <div className="muted">{p.error}</div>}
    </li>
  );
}

function LoadedRow(props: { model: LoadedModel; onUnload: () => void; onKeepAlive: (value: string) => void }) {
  const l = props.model;
  const [keep, setKeep] = useState('5m');
  return (
    <li className="admin-item">
      <div className="item-main">
        <strong className="break">{l.name}</strong>
        <span className="muted">
          {bytes(l.size)} in memory{l.sizeVram > 0 ? ` (${bytes(l.sizeVram)} on the GPU)` : ''} · context{' '}
          {l.contextLength} · {expiry(l.expiresAt)}
        </span>
      </div>
      <div className="item-actions">
        <label className="inline">
          Keep loaded for
          <select value={keep} onChange={(e) => setKeep(e.target.value)}>
            {KEEP_ALIVE.map((k) => (
              <option key={k.value} value={k.value}>
                {k.label}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => props.onKeepAlive(keep)}>
          Set keep-alive
        </button>
        <button type="button" onClick={props.onUnload}>
          Unload {l.name}
        </button>
      </div>
    </li>
  );
}

function ModelRow(props: {
  model: AdminModel;
  loaded: boolean;
  onLoad: () => void;
  onCopy: () => void;
  onDelete: () => void;
}) {
  const m = props.model;
  const facts = [
    bytes(m.size),
    m.family,
    m.parameterSize,
    m.quantization,
    m.contextLength ? `context ${m.contextLength}` : '',
  ].filter(Boolean);
  return (
    <li className="admin-item">
      <div className="item-main">
        <strong className="break">{m.name}</strong>
        <span className="muted">{facts.join(' · ')}</span>
        <span className="caps">
          <span className="visually-hidden">Capabilities: </span>
          {m.capabilities.map((c) => (
            <span key={c} className="badge">
              {c}
            </span>
          ))}
          {props.loaded && <span className="badge loaded">loaded</span>}
        </span>
        {m.license && (
          <details className="license">
            <summary>License</summary>
            {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must be reachable by keyboard */}
            <pre tabIndex={0}>{m.license}</pre>
          </details>
        )}
      </div>
      <div className="item-actions">
        {!props.loaded && (
          <button type="button" onClick={props.onLoad}>
            Load
          </button>
        )}
        <button type="button" onClick={props.onCopy}>
          Copy
        </button>
        <button type="button" className="danger" onClick={props.onDelete}>
          Delete {m.name}
        </button>
      </div>
    </li>
  );
}

function ConfirmDelete(props: { model: AdminModel; sharing: string[]; onClose: () => void; onDelete: () => void }) {
  const m = props.model;
  return (
    <Dialog title={`Delete ${m.name}?`} onClose={props.onClose}>
      <div className="pad">
        <p>This removes from Atlas:</p>
        <ul>
          <li>the model {m.name}: its parameters, system prompt and template;</li>
          <li>
            {props.sharing.length
              ? `not its file (${bytes(m.size)}): ${props.sharing.join(', ')} use${props.sharing.length === 1 ? 's' : ''} it too;`
              : `its GGUF file (${bytes(m.size)}), unless it was imported in place from elsewhere on Atlas;`}
          </li>
          <li>chats that use it keep their messages, but need another model to go on.</li>
        </ul>
        <div className="dialog-actions">
          <button type="button" onClick={props.onClose}>
            Keep it
          </button>
          <button type="button" className="danger" onClick={props.onDelete}>
            Delete {m.name}
          </button>
        </div>
      </div>
    </Dialog>
  );
}

function CopyDialog(props: { model: AdminModel; onClose: () => void; onCopy: (destination: string) => void }) {
  const [name, setName] = useState(`${props.model.name.replace(/:latest$/, '')}-copy`);
  return (
    <Dialog title={`Copy ${props.model.name}`} onClose={props.onClose}>
      <form
        className="pad"
        onSubmit={(e) => {
          e.preventDefault();
          if (name.trim()) props.onCopy(name.trim());
        }}
      >
        <label>
          New name
          <input value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <p className="muted">The copy shares the file on Atlas: it takes no space.</p>
        <div className="dialog-actions">
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={!name.trim()}>
            Copy
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function AddModel(props: { onDone: (text: string) => void; onError: (text: string) => void }) {
  const [importName, setImportName] = useState('');
  const [path, setPath] = useState('');
  const [createName, setCreateName] = useState('');
  const [modelfile, setModelfile] = useState('FROM \nPARAMETER temperature 0.7\nSYSTEM ');
  const run = async (what: () => Promise<unknown>, text: string, reset: () => void) => {
    try {
      await what();
      reset();
      props.onDone(text);
    } catch (err) {
      props.onError((err as Error).message);
    }
  };
  return (
    <section aria-labelledby="add-title" className="admin-card">
      <h2 id="add-title">Add a model another way</h2>
      <form
        className="admin-form"
        onSubmit={(e) => {
          e.preventDefault();
          void run(
            () => admin.createModel({ name: importName.trim(), atlasPath: path.trim() }),
            `${importName.trim()} imported.`,
            () => {
              setImportName('');
              setPath('');
            },
          );
        }}
      >
        <h3>Import a GGUF already on Atlas</h3>
        <p className="muted">Registered where it is (nothing is copied): a path in the Atlas file store.</p>
        <label>
          Name
          <input value={importName} onChange={(e) => setImportName(e.target.value)} placeholder="mymodel" />
        </label>
        <label className="grow">
          Path on Atlas
          <input value={path} onChange={(e) => setPath(e.target.value)} placeholder="models/imports/model.gguf" />
        </label>
        <button type="submit" disabled={!importName.trim() || !path.trim()}>
          Import
        </button>
      </form>
      <form
        className="admin-form column"
        onSubmit={(e) => {
          e.preventDefault();
          void run(
            () => admin.createModel({ name: createName.trim(), modelfile }),
            `${createName.trim()} created.`,
            () => setCreateName(''),
          );
        }}
      >
        <h3>Create from a Modelfile</h3>
        <label>
          Name
          <input value={createName} onChange={(e) => setCreateName(e.target.value)} placeholder="assistant" />
        </label>
        <label>
          Modelfile
          <textarea rows={5} value={modelfile} onChange={(e) => setModelfile(e.target.value)} />
        </label>
        <button type="submit" disabled={!createName.trim()}>
          Create
        </button>
      </form>
    </section>
  );
}
