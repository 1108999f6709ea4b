import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import {
  api,
  type ChatParams,
  type Conversation,
  type Message,
  type ModelInfo,
  type Preset,
  type ReplyEvent,
  type User,
} from '../api';
import { branchTo, buildTree, initialLeaf, moveAmongSiblings, siblingsOf } from '../tree';
import { ChatSettings } from './ChatSettings';
import { Composer, type Draft } from './Composer';
import { Icon } from './Icon';
import { MessageView } from './MessageView';
import type { Toast } from './Toasts';

/** Long chats show their latest messages first; earlier ones on request. */
const SHOWN_AT_ONCE = 200;

interface ChatViewProps {
  conversationId: string | null;
  /** the title as the chat list knows it (kept fresh there: renames, generated titles) */
  title: string | undefined;
  user: User;
  models: ModelInfo[];
  presets: Preset[];
  /** a dialog is open: Esc belongs to it */
  panelOpen: boolean;
  onOpenDrawer: () => void;
  onCreated: (id: string) => void;
  onChanged: () => void;
  onUser: (user: User) => void;
  onPresetsChanged: () => void;
  toast: (t: Omit<Toast, 'id'>) => void;
}

interface Streaming {
  controller: AbortController;
  conversationId: string;
  assistantId: string | null;
}

/** Settings of a chat not yet sent (it exists on the server from its first message on). */
interface ChatSetup {
  model: string | null;
  systemPrompt: string | null;
  params: ChatParams;
}

export function ChatView(props: ChatViewProps) {
  const { conversationId, user, models, toast, onChanged } = props;
  const [conversation, setConversation] = useState<Conversation | null>(null);
  const [messages, setMessages] = useState<Message[]>([]);
  const [leafId, setLeafId] = useState<string | null>(null);
  const [loading, setLoading] = useState(conversationId !== null);
  const [missing, setMissing] = useState('');
  const [setup, setSetup] = useState<ChatSetup>({ model: null, systemPrompt: null, params: {} });
  const [streaming, setStreaming] = useState<Streaming | null>(null);
  const [showSettings, setShowSettings] = useState(false);
  const [showAll, setShowAll] = useState(false);
  const streamingRef = useRef<Streaming | null>(null);
  const pendingText = useRef(new Map<string, string>());
  const frame = useRef(0);
  const bottom = useRef<HTMLDivElement>(null);
  const stickToBottom = useRef(true);
  // The chat this view created itself (on its first message): already loaded, not to be fetched.
  const created = useRef<string | null>(null);

  useEffect(() => {
    if (!conversationId || conversationId === created.current) return;
    let current = true;
    api
      .conversation(conversationId)
      .then(({ conversation: c, messages: ms }) => {
        if (!current) return;
        setConversation(c);
        setMessages(ms);
        setLeafId(initialLeaf(buildTree(ms), c.currentLeafId, ms));
      })
      .catch((err: Error) => current && setMissing(err.message))
      .finally(() => current && setLoading(false));
    return () => {
      current = false;
    };
  }, [conversationId]);

  // A reply in flight when the view goes away is cut: the server keeps its text as "stopped".
  useEffect(() => () => streamingRef.current?.controller.abort(), []);

  const model = conversation?.model ?? setup.model ?? user.defaultModel ?? models[0]?.name ?? null;
  const settings: ChatSetup = conversation
    ? { model: conversation.model, systemPrompt: conversation.systemPrompt, params: conversation.params }
    : setup;

  const tree = useMemo(() => buildTree(messages), [messages]);
  const branch = useMemo(() => branchTo(tree, leafId), [tree, leafId]);
  const shown = showAll || branch.length <= SHOWN_AT_ONCE ? branch : branch.slice(-SHOWN_AT_ONCE);

  // Follow the reply as it grows, unless the reader scrolled up.
  useEffect(() => {
    if (stickToBottom.current && branch.length) bottom.current?.scrollIntoView({ block: 'end' });
  }, [branch]);

  const upsert = useCallback((message: Message) => {
    setMessages((all) => {
      const at = all.findIndex((m) => m.id === message.id);
      if (at < 0) return [...all, message];
      const copy = all.slice();
      copy[at] = message;
      return copy;
    });
  }, []);

  // Text arrives token by token; the page takes it once per frame.
  const flushText = useCallback(() => {
    frame.current = 0;
    const pending = pendingText.current;
    if (pending.size === 0) return;
    const chunks = new Map(pending);
    pending.clear();
    setMessages((all) =>
      all.map((m) => {
        const more = chunks.get(m.id);
        return more ? { ...m, content: m.content + more } : m;
      }),
    );
  }, []);

  const onEvent = useCallback(
    (event: ReplyEvent) => {
      if (event.type === 'message' || event.type === 'done') {
        if (event.type === 'done') {
          pendingText.current.delete(event.message.id);
          if (frame.current) cancelAnimationFrame(frame.current);
          flushText();
        }
        upsert(event.message);
        setLeafId(event.message.id);
        // The user's message is on Atlas: the chat list can show this chat now.
        if (event.type === 'message' && event.message.role === 'user') onChanged();
        if (event.message.role === 'assistant' && streamingRef.current) {
          streamingRef.current.assistantId = event.message.id;
          setStreaming({ ...streamingRef.current });
        }
      } else if (event.type === 'text') {
        const id = streamingRef.current?.assistantId;
        if (!id) return;
        pendingText.current.set(id, (pendingText.current.get(id) ?? '') + event.text);
        frame.current ||= requestAnimationFrame(flushText);
      } else if (event.type === 'notice') {
        toast({ text: event.text });
      }
    },
    [flushText, toast, upsert, onChanged],
  );

  /** Writes a reply; resolves false when nothing was stored (so the composer can give the text back). */
  const runReply = async (body: {
    parentId: string | null;
    content?: string;
    attachments?: Draft['attachments'];
  }): Promise<boolean> => {
    if (streamingRef.current) return false;
    if (!model) {
      toast({ text: 'No model yet: import one (see the README), then reload.', kind: 'error' });
      return false;
    }
    let id = conversation?.id;
    const firstExchange = messages.length === 0;
    try {
      if (!id) {
        const made = await api.createConversation({ model, systemPrompt: setup.systemPrompt, params: setup.params });
        created.current = made.id;
        setConversation(made);
        id = made.id;
        props.onCreated(made.id);
      }
      const run: Streaming = { controller: new AbortController(), conversationId: id, assistantId: null };
      streamingRef.current = run;
      setStreaming(run);
      stickToBottom.current = true;
      await api.reply(
        id,
        { ...body, ...(model !== conversation?.model ? { model } : {}) },
        onEvent,
        run.controller.signal,
      );
    } catch (err) {
      const run = streamingRef.current;
      if (run?.controller.signal.aborted && run.assistantId) {
        // Cut by the browser: the server saved the text as stopped; show the same.
        const assistantId = run.assistantId;
        flushText();
        setMessages((all) => all.map((m) => (m.id === assistantId ? { ...m, status: 'stopped' } : m)));
      } else {
        toast({ text: (err as Error).message, kind: 'error' });
        if (!run?.assistantId) return false;
      }
    } finally {
      streamingRef.current = null;
      setStreaming(null);
      onChanged();
      // The model names a new chat in the background, a moment after its first reply.
      if (firstExchange) window.setTimeout(onChanged, 5000);
    }
    return true;
  };

  const stop = useCallback(async () => {
    const run = streamingRef.current;
    if (!run) return;
    if (run.assistantId) {
      try {
        const answer = await api.stop(run.conversationId, run.assistantId);
        // Stopped here: the stream ends with the saved message. Elsewhere: it stops within a second.
        if (answer.message || answer.requested) return;
      } catch {
        // fall through: cut the connection instead
      }
    }
    run.controller.abort();
  }, []);

  // Esc stops a reply (unless a dialog has it).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && streamingRef.current && !props.panelOpen) {
        e.preventDefault();
        void stop();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [stop, props.panelOpen]);

  const showBranch = (message: Message, by: number) => {
    const leaf = moveAmongSiblings(tree, message, by);
    if (!leaf) return;
    setLeafId(leaf);
    if (conversation) {
      api
        .updateConversation(conversation.id, { currentLeafId: leaf })
        .catch((err: Error) => toast({ text: err.message, kind: 'error' }));
    }
  };

  const changeSettings = async (next: Partial<ChatSetup>) => {
    if (!conversation) {
      setSetup((s) => ({ ...s, ...next }));
      return;
    }
    try {
      setConversation(await api.updateConversation(conversation.id, next));
    } catch (err) {
      toast({ text: (err as Error).message, kind: 'error' });
    }
  };

  const last = branch[branch.length - 1];
  const title = (conversation && props.title) || conversation?.title || 'New chat';

  return (
    <main className="chat" aria-busy={loading}>
      <header className="chat-head">
        <button
          type="button"
          className="icon drawer-button"
          aria-label="Open the chat list"
          onClick={props.onOpenDrawer}
        >
          <Icon name="menu" />
        </button>
        <h1 className="chat-title">{title}</h1>
        <label className="model-picker">
          <span className="visually-hidden">Model</span>
          <select
            value={model ?? ''}
            onChange={(e) => void changeSettings({ model: e.target.value })}
            aria-label="Model"
            disabled={models.length === 0}
          >
            {models.length === 0 && <option value="">no models yet</option>}
            {model && !models.some((m) => m.name === model) && <option value={model}>{model} (not installed)</option>}
            {models.map((m) => (
              <option key={m.name} value={m.name}>
                {m.name}
                {m.parameterSize ? ` · ${m.parameterSize}` : ''}
              </option>
            ))}
          </select>
        </label>
        <button
          type="button"
          className="icon"
          aria-label={
            model && model === user.defaultModel ? 'This is your default model' : 'Make this my default model'
          }
          aria-pressed={model !== null && model === user.defaultModel}
          disabled={!model}
          onClick={async () => {
            if (!model) return;
            try {
              props.onUser(await api.updateMe({ defaultModel: model }));
              toast({ text: `${model} is now your default model.` });
            } catch (err) {
              toast({ text: (err as Error).message, kind: 'error' });
            }
          }}
        >
          <Icon name="star" filled={model !== null && model === user.defaultModel} />
        </button>
        <button
          type="button"
          aria-expanded={showSettings}
          aria-controls="chat-settings"
          onClick={() => setShowSettings((s) => !s)}
        >
          Settings
        </button>
        {conversation && (
          <span className="exports">
            <a className="button" href={`/api/ui/conversations/${encodeURIComponent(conversation.id)}/export`} download>
              JSON
            </a>
            <a
              className="button"
              href={`/api/ui/conversations/${encodeURIComponent(conversation.id)}/export?format=md`}
              download
            >
              Markdown
            </a>
          </span>
        )}
      </header>
      {showSettings && (
        <ChatSettings
          id="chat-settings"
          user={user}
          model={model}
          settings={settings}
          presets={props.presets}
          models={models}
          onChange={changeSettings}
          onPresetsChanged={props.onPresetsChanged}
          toast={toast}
        />
      )}
      <section
        className="messages"
        aria-label="Messages"
        onScroll={(e) => {
          const el = e.currentTarget;
          stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
        }}
      >
        {missing && (
          <p className="error pad" role="alert">
            {missing}
          </p>
        )}
        {!loading && !missing && branch.length === 0 && (
          <div className="empty">
            <h2>What shall we talk about?</h2>
            <p className="muted">
              {model ? `Model: ${model}.` : 'No model yet.'} Enter sends, Shift+Enter adds a line, Esc stops a reply.
            </p>
          </div>
        )}
        {shown.length < branch.length && (
          <button type="button" className="show-earlier" onClick={() => setShowAll(true)}>
            Show {branch.length - shown.length} earlier messages
          </button>
        )}
        {shown.map((m) => {
          const { siblings, index } = siblingsOf(tree, m);
          return (
            <MessageView
              key={m.id}
              message={m}
              siblingIndex={index}
              siblingCount={siblings.length}
              busy={streaming !== null}
              streaming={streaming?.assistantId === m.id}
              onPrevious={() => showBranch(m, -1)}
              onNext={() => showBranch(m, +1)}
              onRegenerate={() => void runReply({ parentId: m.parentId })}
              onEdit={(content) => void runReply({ parentId: m.parentId, content })}
              onCopied={() => toast({ text: 'Copied.' })}
            />
          );
        })}
        <div ref={bottom} />
      </section>
      <Composer
        busy={streaming !== null}
        disabled={Boolean(missing)}
        onSend={(draft) =>
          runReply({ parentId: last?.id ?? null, content: draft.text, attachments: draft.attachments })
        }
        onStop={() => void stop()}
        onError={(text) => toast({ text, kind: 'error' })}
      />
    </main>
  );
}
