// The node: engine and backend, GPU memory, the node cache, loaded models, Atlas health, and the
// exposure report `hearth doctor` prints (the same code makes both).
import { useCallback, useState } from 'react';
import { admin, bytes, type Check, expiry, type NodeState } from './client';
import { usePoll } from './poll';

export function NodeScreen() {
  const [state, setState] = useState<NodeState | null>(null);
  const [error, setError] = useState('');
  const refresh = useCallback(async () => setState(await admin.node()), []);
  usePoll(refresh, 5000, setError);

  if (!state) {
    return error ? (
      <p className="error" role="alert">
        {error}
      </p>
    ) : (
      <p className="muted">Loading…</p>
    );
  }
  const { engine, cache, vram } = state;
  return (
    <>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <section aria-labelledby="node-title" className="admin-card">
        <h2 id="node-title">
          {state.node.hostname}{' '}
          <span className="muted">
            ({state.node.id}, hearth {state.node.version})
          </span>
        </h2>
        <dl className="facts">
          <dt>Engine</dt>
          <dd>
            {engine.engine === 'server' ? 'llama-server' : 'in-process (node-llama-cpp)'} on {engine.backend}
            {engine.gpuHealthy ? '' : ' (GPU marked unhealthy: running on the CPU)'}{' '}
            <span className="muted">
              [inference.engine: {engine.setting}, node.gpu: {engine.gpuSetting}]
            </span>
          </dd>
          <dt>GPU memory</dt>
          <dd>{vram ? `${bytes(vram.used)} of ${bytes(vram.total)} used` : 'no GPU memory reported (CPU)'}</dd>
          <dt>Node cache</dt>
          <dd>
            {bytes(cache.bytes)} of {bytes(cache.maxBytes)} in {cache.entries} file{cache.entries === 1 ? '' : 's'}{' '}
            <span className="muted">({cache.dir}; disposable)</span>
          </dd>
          <dt>Loaded models</dt>
          <dd>
            {state.loaded.length === 0
              ? 'none'
              : state.loaded.map((l) => `${l.name} (${bytes(l.size)}, ${expiry(l.expiresAt)})`).join('; ')}
          </dd>
        </dl>
      </section>
      <section aria-labelledby="atlas-title" className="admin-card">
        <h2 id="atlas-title">Atlas</h2>
        <ul className="checks">
          <CheckLine name="Database" check={state.atlas.database} />
          <CheckLine name="Files" check={state.atlas.files} />
        </ul>
      </section>
      <section aria-labelledby="exposure-title" className="admin-card">
        <h2 id="exposure-title">Network exposure</h2>
        <p className="muted">What `hearth doctor` prints: who can reach which service, and how they sign in.</p>
        {state.exposure.problems.map((p) => (
          <p key={p} className="error">
            {p}
          </p>
        ))}
        {state.exposure.warnings.map((w) => (
          <p key={w} className="warn">
            warning: {w}
          </p>
        ))}
        {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must be reachable by keyboard */}
        <section className="scroll-box" aria-label="Exposure report" tabIndex={0}>
          <pre>{state.exposure.report.join('\n')}</pre>
        </section>
      </section>
    </>
  );
}

function CheckLine(props: { name: string; check: Check }) {
  return (
    <li className={props.check.ok ? 'ok' : 'failed'}>
      <span aria-hidden="true">{props.check.ok ? '✓' : '✗'}</span> <strong>{props.name}</strong>
      <span className="visually-hidden">{props.check.ok ? ' healthy:' : ' failing:'}</span> {props.check.detail}
    </li>
  );
}
