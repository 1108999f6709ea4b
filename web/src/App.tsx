import { lazy, Suspense, useCallback, useEffect, useRef, useState } from 'react';
import {
  api,
  type ConversationSummary,
  type ImageModelInfo,
  type ModelInfo,
  type Preset,
  type SessionInfo,
  UNREACHABLE,
  type User,
} from './api';
import { AccountDialog, UsersDialog } from './components/Accounts';
import { AuthScreen } from './components/AuthScreen';
import { ChatView } from './components/ChatView';
import { SearchDialog } from './components/SearchDialog';
import { Sidebar } from './components/Sidebar';
import { type Toast, Toasts } from './components/Toasts';

// Pages other than the chat load on demand, so the chat's first bundle stays small.
const KnowledgePage = lazy(() => import('./components/KnowledgePage'));
const onKnowledgePage = () => window.location.pathname.startsWith('/ui/knowledge');
// The workflow editor (React Flow) loads only when its page is opened: the chat's bundle stays small.
const WorkflowsPage = lazy(() => import('./workflows/WorkflowsPage'));
// The admin screens (models, API keys, jobs, node) load on demand too.
const AdminPage = lazy(() => import('./admin/AdminPage'));

/** The conversation in the address: /ui/c/<id>; anything else under /ui/ is a new chat. */
function conversationFromPath(): string | null {
  const match = /^\/ui\/c\/([^/]+)/.exec(window.location.pathname);
  return match?.[1] ? decodeURIComponent(match[1]) : null;
}

export function App() {
  const [session, setSession] = useState<SessionInfo | null>(null);
  const [error, setError] = useState('');

  const load = useCallback(() => {
    api
      .session()
      .then(setSession)
      .catch((err: Error) => setError(err.message));
  }, []);

  useEffect(() => {
    load();
    const signedOut = () => load();
    window.addEventListener('hearth:signed-out', signedOut);
    return () => window.removeEventListener('hearth:signed-out', signedOut);
  }, [load]);

  // The theme a person chose (kept on Atlas with the account); "system" follows the device.
  const theme = session?.user?.theme ?? 'system';
  useEffect(() => {
    document.documentElement.dataset['theme'] = theme;
  }, [theme]);

  if (error) {
    return (
      <main className="auth">
        <p className="error" role="alert">
          hearth cannot be reached: {error}
        </p>
      </main>
    );
  }
  if (!session) return <main className="auth" aria-busy="true" />;
  if (!session.user) {
    return (
      <AuthScreen
        mode={session.setupRequired ? 'setup' : 'login'}
        onSignedIn={(user) => setSession({ user, csrfToken: null, setupRequired: false })}
      />
    );
  }
  if (window.location.pathname.startsWith('/ui/workflows')) {
    return (
      <Suspense fallback={<main className="auth" aria-busy="true" />}>
        <WorkflowsPage user={session.user} />
      </Suspense>
    );
  }
  if (window.location.pathname.startsWith('/ui/admin')) {
    return (
      <Suspense fallback={<main className="auth" aria-busy="true" />}>
        <AdminPage user={session.user} />
      </Suspense>
    );
  }
  return <Shell user={session.user} onUser={(user) => setSession({ ...session, user })} onSignedOut={load} />;
}

type Panel = 'search' | 'users' | 'account' | null;

function Shell(props: { user: User; onUser: (user: User) => void; onSignedOut: () => void }) {
  const { user } = props;
  const [conversationId, setConversationId] = useState<string | null>(conversationFromPath);
  const [models, setModels] = useState<ModelInfo[]>([]);
  const [imageModels, setImageModels] = useState<ImageModelInfo[]>([]);
  const setModelLists = useCallback((lists: { models: ModelInfo[]; imageModels?: ImageModelInfo[] }) => {
    setModels(lists.models);
    setImageModels(lists.imageModels ?? []);
  }, []);
  const [presets, setPresets] = useState<Preset[]>([]);
  const [list, setList] = useState<ConversationSummary[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [drawerOpen, setDrawerOpen] = useState(false);
  const [panel, setPanel] = useState<Panel>(null);
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [knowledgeOpen, setKnowledgeOpen] = useState(onKnowledgePage);
  // The chat view is replaced when the person opens another chat, not when a new chat gets its id.
  const [viewKey, setViewKey] = useState(() => conversationFromPath() ?? 'new-0');
  const loadingMore = useRef(false);
  const [unreachable, setUnreachable] = useState(false);

  const toast = useCallback((t: Omit<Toast, 'id'>) => {
    const id = Math.random().toString(36).slice(2);
    setToasts((all) => [...all, { ...t, id }]);
    window.setTimeout(() => setToasts((all) => all.filter((x) => x.id !== id)), t.action ? 8000 : 5000);
  }, []);

  const refreshList = useCallback(async () => {
    const page = await api.conversations(undefined, 100);
    setList(page.conversations);
    setNext(page.next);
  }, []);

  const loadMore = useCallback(async () => {
    if (!next || loadingMore.current) return;
    loadingMore.current = true;
    try {
      const page = await api.conversations(next, 100);
      setList((all) => [...all, ...page.conversations.filter((c) => !all.some((a) => a.id === c.id))]);
      setNext(page.next);
    } finally {
      loadingMore.current = false;
    }
  }, [next]);

  const refreshPresets = useCallback(() => {
    api
      .presets()
      .then(setPresets)
      .catch(() => undefined);
  }, []);

  useEffect(() => {
    refreshList().catch((err: Error) => toast({ text: err.message, kind: 'error' }));
    api
      .models()
      .then(setModelLists)
      .catch((err: Error) => toast({ text: err.message, kind: 'error' }));
    refreshPresets();
  }, [refreshList, refreshPresets, toast, setModelLists]);

  // "Server unreachable" is a banner, not an error per request; the page asks again every 2 s until hearth answers.
  useEffect(() => {
    const down = () => setUnreachable(true);
    const up = () => setUnreachable(false);
    window.addEventListener('hearth:unreachable', down);
    window.addEventListener('hearth:reachable', up);
    return () => {
      window.removeEventListener('hearth:unreachable', down);
      window.removeEventListener('hearth:reachable', up);
    };
  }, []);
  useEffect(() => {
    if (!unreachable) return;
    const timer = window.setInterval(() => void api.session().catch(() => undefined), 2000);
    return () => window.clearInterval(timer);
  }, [unreachable]);

  // Live without a reload: the model picker every 10 s, the chat list's "writing" marks every 3 s while any shows.
  const anyStreaming = list.some((c) => c.streaming);
  useEffect(() => {
    const timer = window.setInterval(() => {
      if (document.hidden) return;
      api
        .models()
        .then(setModelLists)
        .catch(() => undefined);
    }, 10_000);
    return () => window.clearInterval(timer);
  }, [setModelLists]);
  useEffect(() => {
    if (!anyStreaming) return;
    const timer = window.setInterval(() => void refreshList().catch(() => undefined), 3000);
    return () => window.clearInterval(timer);
  }, [anyStreaming, refreshList]);

  const open = useCallback((id: string | null, replace = false) => {
    const path = id ? `/ui/c/${encodeURIComponent(id)}` : '/ui/';
    if (window.location.pathname !== path) window.history[replace ? 'replaceState' : 'pushState'](null, '', path);
    setConversationId(id);
    setViewKey(id ?? `new-${Date.now()}`);
    setDrawerOpen(false);
    setKnowledgeOpen(false);
  }, []);

  const created = useCallback((id: string) => {
    window.history.replaceState(null, '', `/ui/c/${encodeURIComponent(id)}`);
    setConversationId(id);
  }, []);

  useEffect(() => {
    const onPop = () => {
      const id = conversationFromPath();
      setConversationId(id);
      setViewKey(id ?? `new-${Date.now()}`);
      setKnowledgeOpen(onKnowledgePage());
    };
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);

  // Ctrl/Cmd+Shift+O: new chat; Ctrl/Cmd+K: search.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const mod = e.ctrlKey || e.metaKey;
      if (mod && e.shiftKey && e.key.toLowerCase() === 'o') {
        e.preventDefault();
        open(null);
        document.querySelector<HTMLTextAreaElement>('#composer-input')?.focus();
      } else if (mod && !e.shiftKey && e.key.toLowerCase() === 'k') {
        e.preventDefault();
        setPanel('search');
      } else if (e.key === 'Escape' && drawerOpen) {
        setDrawerOpen(false);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [open, drawerOpen]);

  const remove = useCallback(
    async (id: string) => {
      await api.deleteConversation(id);
      setList((all) => all.filter((c) => c.id !== id));
      const wasOpen = id === conversationId;
      if (wasOpen) open(null, true);
      toast({
        text: 'Chat deleted.',
        action: {
          label: 'Undo',
          run: async () => {
            await api.restoreConversation(id);
            await refreshList();
            // The chat that was open when it was deleted opens again.
            if (wasOpen) open(id);
          },
        },
      });
    },
    [conversationId, open, refreshList, toast],
  );

  const signOut = async () => {
    await api.logout().catch(() => undefined);
    props.onSignedOut();
  };

  return (
    <div className={drawerOpen ? 'shell drawer-open' : 'shell'}>
      {unreachable && (
        <div className="banner" role="alert">
          {UNREACHABLE}
        </div>
      )}
      <Sidebar
        user={user}
        items={list}
        hasMore={next !== null}
        activeId={conversationId}
        onLoadMore={loadMore}
        onOpen={(id) => open(id)}
        onNew={() => open(null)}
        onSearch={() => setPanel('search')}
        onRename={async (id, title) => {
          await api.updateConversation(id, { title });
          await refreshList();
        }}
        onPin={async (id, pinned) => {
          await api.updateConversation(id, { pinned });
          await refreshList();
        }}
        onDelete={(id) => remove(id).catch((err: Error) => toast({ text: err.message, kind: 'error' }))}
        onImported={async (imported) => {
          await refreshList();
          toast({ text: `Imported ${imported.length} chat${imported.length === 1 ? '' : 's'}.` });
          // The (first) imported chat opens.
          if (imported[0]) open(imported[0].id);
        }}
        onError={(text) => toast({ text, kind: 'error' })}
        onUsers={() => setPanel('users')}
        onAccount={() => setPanel('account')}
        onKnowledge={() => {
          window.history.pushState(null, '', '/ui/knowledge');
          setKnowledgeOpen(true);
          setDrawerOpen(false);
        }}
        onSignOut={signOut}
        onClose={() => setDrawerOpen(false)}
      />
      {drawerOpen && (
        <button
          type="button"
          className="drawer-backdrop"
          aria-label="Close the chat list"
          onClick={() => setDrawerOpen(false)}
        />
      )}
      {knowledgeOpen ? (
        <Suspense fallback={<main aria-busy="true" />}>
          <KnowledgePage onClose={() => open(conversationId)} />
        </Suspense>
      ) : (
        <ChatView
          key={viewKey}
          conversationId={conversationId}
          title={list.find((c) => c.id === conversationId)?.title}
          user={user}
          models={models}
          imageModels={imageModels}
          presets={presets}
          panelOpen={panel !== null}
          onOpenDrawer={() => setDrawerOpen(true)}
          onCreated={created}
          onChanged={() => refreshList().catch(() => undefined)}
          onUser={props.onUser}
          onPresetsChanged={refreshPresets}
          toast={toast}
        />
      )}
      {panel === 'search' && (
        <SearchDialog
          onClose={() => setPanel(null)}
          onOpen={(id) => {
            setPanel(null);
            open(id);
          }}
        />
      )}
      {panel === 'users' && user.role === 'admin' && <UsersDialog me={user} onClose={() => setPanel(null)} />}
      {panel === 'account' && (
        <AccountDialog user={user} models={models} onUser={props.onUser} onClose={() => setPanel(null)} toast={toast} />
      )}
      <Toasts toasts={toasts} onDismiss={(id) => setToasts((all) => all.filter((t) => t.id !== id))} />
    </div>
  );
}
