// API keys: create one (shown once, with Copy), list them with their last use, revoke.
import { useCallback, useState } from 'react';
import { Dialog } from '../components/Dialog';
import { type ApiKey, admin, type KeyScope, when } from './client';
import { usePoll } from './poll';

const SCOPES = ['inference', 'workflows', 'jobs', 'admin'] as const satisfies readonly KeyScope[];

export function KeysScreen() {
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [error, setError] = useState('');
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<KeyScope[]>(['inference']);
  const [expires, setExpires] = useState('');
  const [created, setCreated] = useState<{ name: string; key: string } | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const [copied, setCopied] = useState(false);

  const refresh = useCallback(async () => setKeys(await admin.keys()), []);
  usePoll(refresh, 15_000, setError);

  const create = async () => {
    setError('');
    try {
      const out = await admin.createKey({
        name: name.trim(),
        scopes,
        ...(expires.trim() ? { expires: expires.trim() } : {}),
      });
      setCreated({ name: out.info.name, key: out.key });
      setCopied(false);
      setName('');
      setExpires('');
      await refresh();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  const revoke = async (key: ApiKey) => {
    setRevoking(null);
    try {
      await admin.revokeKey(key.name);
      await refresh();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  const active = keys?.filter((k) => !k.revoked_at) ?? [];
  const revoked = keys?.filter((k) => k.revoked_at) ?? [];
  return (
    <>
      <section aria-labelledby="new-key-title" className="admin-card">
        <h2 id="new-key-title">New API key</h2>
        <form
          className="admin-form"
          onSubmit={(e) => {
            e.preventDefault();
            void create();
          }}
        >
          <label>
            Key name
            <input value={name} onChange={(e) => setName(e.target.value)} placeholder="home-assistant" />
          </label>
          <fieldset className="scopes">
            <legend>May use</legend>
            {SCOPES.map((s) => (
              <label key={s} className="inline">
                <input
                  type="checkbox"
                  checked={scopes.includes(s)}
                  onChange={(e) => setScopes((all) => (e.target.checked ? [...all, s] : all.filter((x) => x !== s)))}
                />
                {s}
              </label>
            ))}
          </fieldset>
          <label>
            Expires after
            <input value={expires} onChange={(e) => setExpires(e.target.value)} placeholder="90d (empty: never)" />
          </label>
          <button type="submit" className="primary" disabled={!name.trim() || scopes.length === 0}>
            Create key
          </button>
        </form>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
      </section>

      <section aria-labelledby="keys-title" className="admin-card">
        <h2 id="keys-title">Keys</h2>
        {keys === null ? (
          <p className="muted">Loading…</p>
        ) : active.length === 0 ? (
          <p className="muted">No keys. Clients on loopback need none; others need one for each service they use.</p>
        ) : (
          <ul className="admin-list" aria-label="API keys">
            {active.map((k) => (
              <li key={k.id} className="admin-item">
                <div className="item-main">
                  <strong className="break">{k.name}</strong>
                  <span className="muted">
                    {k.scopes.join(', ')} · created {when(k.created_at)} · last used {when(k.last_used_at)}
                    {k.expires_at ? ` · expires ${when(k.expires_at)}` : ''}
                  </span>
                </div>
                <div className="item-actions">
                  <button type="button" className="danger" onClick={() => setRevoking(k)}>
                    Revoke {k.name}
                  </button>
                </div>
              </li>
            ))}
          </ul>
        )}
        {revoked.length > 0 && (
          <details>
            <summary>Revoked ({revoked.length})</summary>
            <ul className="admin-list" aria-label="Revoked keys">
              {revoked.map((k) => (
                <li key={k.id} className="admin-item">
                  <span className="break">{k.name}</span>
                  <span className="muted">revoked {when(k.revoked_at)}</span>
                </li>
              ))}
            </ul>
          </details>
        )}
      </section>

      {created && (
        <Dialog title={`Key ${created.name} created`} onClose={() => setCreated(null)}>
          <div className="pad">
            <p>Copy it now: it is shown this once. Atlas keeps only its hash.</p>
            <label>
              The new key
              <input className="secret" readOnly value={created.key} onFocus={(e) => e.target.select()} />
            </label>
            <div className="dialog-actions">
              <button
                type="button"
                className="primary"
                onClick={() => {
                  void navigator.clipboard
                    .writeText(created.key)
                    .then(() => setCopied(true))
                    .catch(() => setError('the browser did not allow copying: select the key and copy it'));
                }}
              >
                {copied ? 'Copied' : 'Copy key'}
              </button>
              <button type="button" onClick={() => setCreated(null)}>
                Done
              </button>
            </div>
          </div>
        </Dialog>
      )}
      {revoking && (
        <Dialog title={`Revoke ${revoking.name}?`} onClose={() => setRevoking(null)}>
          <div className="pad">
            <p>
              Clients using it ({revoking.scopes.join(', ')}) are refused from their next request. This cannot be
              undone: they need a new key.
            </p>
            <div className="dialog-actions">
              <button type="button" onClick={() => setRevoking(null)}>
                Keep it
              </button>
              <button type="button" className="danger" onClick={() => void revoke(revoking)}>
                Revoke {revoking.name}
              </button>
            </div>
          </div>
        </Dialog>
      )}
    </>
  );
}
