import { type UIEvent, useEffect, useRef, useState } from 'react';
import { api, type ConversationSummary, type User } from '../api';
import { Icon } from './Icon';

/** A row's height: 48 px on touch screens (44 px targets), 40 px with a mouse. */
const ROW = typeof matchMedia === 'function' && matchMedia('(pointer: coarse)').matches ? 48 : 40;
const OVERSCAN = 10;

interface SidebarProps {
  user: User;
  items: ConversationSummary[];
  hasMore: boolean;
  activeId: string | null;
  onLoadMore: () => void;
  onOpen: (id: string) => void;
  onNew: () => void;
  onSearch: () => void;
  onRename: (id: string, title: string) => Promise<void>;
  onPin: (id: string, pinned: boolean) => Promise<void>;
  onDelete: (id: string) => void;
  onImported: (conversations: Array<{ id: string; title: string }>) => Promise<void>;
  onError: (text: string) => void;
  onUsers: () => void;
  onAccount: () => void;
  onKnowledge: () => void;
  onSignOut: () => void;
  onClose: () => void;
}

const isMac = typeof navigator !== 'undefined' && /Mac|iPhone|iPad/.test(navigator.platform);
const MOD = isMac ? '⌘' : 'Ctrl+';

/**
 * The chat list: pinned first, then newest. Only the rows in view are in the page (the list can
 * hold thousands), and the next page loads as the end comes into view.
 */
export function Sidebar(props: SidebarProps) {
  const scroller = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  const [renaming, setRenaming] = useState<string | null>(null);
  const importer = useRef<HTMLInputElement>(null);
  const { items, hasMore, onLoadMore } = props;

  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const observer = new ResizeObserver(() => setHeight(el.clientHeight));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  const first = Math.max(0, Math.floor(scrollTop / ROW) - OVERSCAN);
  const last = Math.min(items.length, Math.ceil((scrollTop + height) / ROW) + OVERSCAN);
  const visible = items.slice(first, last);

  useEffect(() => {
    if (hasMore && last >= items.length - OVERSCAN) onLoadMore();
  }, [hasMore, last, items.length, onLoadMore]);

  const onScroll = (e: UIEvent<HTMLDivElement>) => setScrollTop(e.currentTarget.scrollTop);

  const importFile = async (file: File) => {
    try {
      const data: unknown = JSON.parse(await file.text());
      const result = await api.importChats(data);
      await props.onImported(result.conversations);
    } catch (err) {
      props.onError(err instanceof SyntaxError ? `${file.name} is not JSON` : (err as Error).message);
    }
  };

  return (
    <nav className="sidebar" aria-label="Chats">
      <div className="sidebar-head">
        <span className="brand">hearth</span>
        <button type="button" className="icon close-drawer" aria-label="Close the chat list" onClick={props.onClose}>
          <Icon name="close" />
        </button>
      </div>
      <div className="sidebar-actions">
        <button type="button" className="primary" onClick={props.onNew} title={`New chat (${MOD}Shift+O)`}>
          New chat
        </button>
        <button type="button" onClick={props.onSearch} title={`Search (${MOD}K)`}>
          Search <kbd>{MOD}K</kbd>
        </button>
      </div>
      <div className="chat-list" ref={scroller} onScroll={onScroll}>
        {items.length === 0 && <p className="muted pad">No chats yet.</p>}
        <div style={{ height: items.length * ROW, position: 'relative' }}>
          <ul style={{ transform: `translateY(${first * ROW}px)` }}>
            {visible.map((c) => (
              <li
                key={c.id}
                className={c.id === props.activeId ? 'chat-row active' : 'chat-row'}
                style={{ height: ROW }}
              >
                {renaming === c.id ? (
                  <RenameField
                    title={c.title}
                    onDone={async (title) => {
                      setRenaming(null);
                      if (title && title !== c.title)
                        await props.onRename(c.id, title).catch((e: Error) => props.onError(e.message));
                    }}
                  />
                ) : (
                  <a
                    href={`/ui/c/${encodeURIComponent(c.id)}`}
                    aria-current={c.id === props.activeId ? 'page' : undefined}
                    onClick={(e) => {
                      e.preventDefault();
                      props.onOpen(c.id);
                    }}
                  >
                    {c.pinned && (
                      <span className="pin-mark" role="img" aria-label="Pinned">
                        <Icon name="pin" />
                      </span>
                    )}
                    <span className="title">{c.title}</span>
                    {c.streaming && (
                      <span
                        className="live-mark"
                        role="img"
                        aria-label="A reply is being written"
                        title="A reply is being written"
                      />
                    )}
                  </a>
                )}
                <span className="row-actions">
                  <button
                    type="button"
                    className="icon"
                    aria-label={c.pinned ? `Unpin ${c.title}` : `Pin ${c.title}`}
                    onClick={() => props.onPin(c.id, !c.pinned).catch((e: Error) => props.onError(e.message))}
                  >
                    <Icon name={c.pinned ? 'unpin' : 'pin'} />
                  </button>
                  <button
                    type="button"
                    className="icon"
                    aria-label={`Rename ${c.title}`}
                    onClick={() => setRenaming(c.id)}
                  >
                    <Icon name="edit" />
                  </button>
                  <button
                    type="button"
                    className="icon"
                    aria-label={`Delete ${c.title}`}
                    onClick={() => props.onDelete(c.id)}
                  >
                    <Icon name="trash" />
                  </button>
                </span>
              </li>
            ))}
          </ul>
        </div>
      </div>
      <div className="sidebar-foot">
        <div className="who">
          Signed in as <strong>{props.user.username}</strong>
          {props.user.role === 'admin' && <span className="badge">admin</span>}
        </div>
        <div className="foot-actions">
          <button type="button" onClick={props.onKnowledge}>
            Knowledge
          </button>
          <button type="button" onClick={props.onAccount}>
            Account
          </button>
          {props.user.role === 'admin' && (
            <button type="button" onClick={props.onUsers}>
              Users
            </button>
          )}
          {props.user.role === 'admin' && (
            <a className="button" href="/ui/admin/models">
              Admin
            </a>
          )}
          <a className="button" href="/ui/workflows">
            Workflows
          </a>
          <a className="button" href="/api/ui/export" download>
            Export all
          </a>
          <button type="button" onClick={() => importer.current?.click()}>
            Import
          </button>
          <input
            ref={importer}
            type="file"
            accept="application/json,.json"
            hidden
            aria-label="Import chats (hearth or Open WebUI JSON)"
            onChange={(e) => {
              const file = e.target.files?.[0];
              e.target.value = '';
              if (file) void importFile(file);
            }}
          />
          <button type="button" onClick={props.onSignOut}>
            Sign out
          </button>
        </div>
      </div>
    </nav>
  );
}

function RenameField(props: { title: string; onDone: (title: string | null) => void }) {
  const [value, setValue] = useState(props.title);
  const ref = useRef<HTMLInputElement>(null);
  // Enter, then the blur of the field leaving the page: finish once.
  const finished = useRef(false);
  const finish = (title: string | null) => {
    if (finished.current) return;
    finished.current = true;
    props.onDone(title);
  };
  useEffect(() => {
    ref.current?.focus();
    ref.current?.select();
  }, []);
  return (
    <input
      ref={ref}
      className="rename"
      aria-label="Chat title"
      value={value}
      onChange={(e) => setValue(e.target.value)}
      onBlur={() => finish(value.trim() || null)}
      onKeyDown={(e) => {
        if (e.key === 'Enter') finish(value.trim() || null);
        if (e.key === 'Escape') {
          e.stopPropagation();
          finish(null);
        }
      }}
    />
  );
}
