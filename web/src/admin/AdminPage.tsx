// The admin screens (/ui/admin/...), loaded on demand so the chat's first bundle does not grow:
// models and pulls, API keys, batch jobs and the node. Their API (/api/ui/admin) answers admins on a
// client in the admin zones or loopback only; elsewhere each screen shows the server's reason.
import { useEffect, useState } from 'react';
import type { User } from '../api';
import './admin.css';
import { JobsScreen } from './JobsScreen';
import { KeysScreen } from './KeysScreen';
import { ModelsScreen } from './ModelsScreen';
import { NodeScreen } from './NodeScreen';

const SCREENS = [
  { path: 'models', label: 'Models' },
  { path: 'keys', label: 'API keys' },
  { path: 'jobs', label: 'Batch jobs' },
  { path: 'node', label: 'Node' },
] as const;
type Screen = (typeof SCREENS)[number]['path'];

function screenFromPath(): Screen {
  const name = /^\/ui\/admin\/([^/]+)/.exec(window.location.pathname)?.[1];
  return SCREENS.find((s) => s.path === name)?.path ?? 'models';
}

export default function AdminPage(props: { user: User }) {
  const [screen, setScreen] = useState<Screen>(screenFromPath);

  useEffect(() => {
    const onPop = () => setScreen(screenFromPath());
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);

  useEffect(() => {
    const label = SCREENS.find((s) => s.path === screen)?.label ?? '';
    document.title = `${label} · hearth`;
  }, [screen]);

  const go = (path: Screen) => {
    window.history.pushState(null, '', `/ui/admin/${path}`);
    setScreen(path);
  };

  return (
    <div className="admin">
      <header className="admin-head">
        <h1>Administration</h1>
        <nav aria-label="Admin screens" className="admin-nav">
          {SCREENS.map((s) => (
            <a
              key={s.path}
              href={`/ui/admin/${s.path}`}
              aria-current={screen === s.path ? 'page' : undefined}
              onClick={(e) => {
                e.preventDefault();
                go(s.path);
              }}
            >
              {s.label}
            </a>
          ))}
          <a href="/ui/workflows#gallery">Workflows</a>
          <a href="/ui/">Back to chat</a>
        </nav>
      </header>
      {props.user.role !== 'admin' ? (
        <main className="admin-main">
          <p className="error" role="alert">
            Only an admin may open these screens. Ask an admin to give your account the admin role.
          </p>
        </main>
      ) : (
        <main className="admin-main" aria-label={SCREENS.find((s) => s.path === screen)?.label}>
          {screen === 'models' && <ModelsScreen />}
          {screen === 'keys' && <KeysScreen />}
          {screen === 'jobs' && <JobsScreen />}
          {screen === 'node' && <NodeScreen />}
        </main>
      )}
    </div>
  );
}
