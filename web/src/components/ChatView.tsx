import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import {
  ApiError,
  api,
  type ChatParams,
  type Conversation,
  type Drawing,
  type ImageEvent,
  type ImageModelInfo,
  type Message,
  type ModelInfo,
  type Preset,
  type ReplyEvent,
  type User,
} from '../api';
import { branchTo, buildTree, initialLeaf, moveAmongSiblings, siblingsOf } from '../tree';
import { ChatSettings } from './ChatSettings';
import { Composer, type Draft, type ImageDraft } from './Composer';
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
  /** image models, for "Create image" in the composer */
  imageModels: ImageModelInfo[];
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
  knowledge?: string[];
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
  // A comparison: the extra replies being written, and the message whose replies are shown side by side.
  const compareRuns = useRef<Streaming[]>([]);
  const [comparing, setComparing] = useState<{ userId: string; models: string[] } | null>(null);
  const [compareModels, setCompareModels] = useState<string[]>([]);
  const [showCompare, setShowCompare] = useState(false);
  const pendingText = useRef(new Map<string, string>());
  const frame = useRef(0);
  const bottom = useRef<HTMLDivElement>(null);
  const stickToBottom = useRef(true);
  // The reader scrolled up: a button takes them back down.
  const [atBottom, setAtBottom] = useState(true);
  // An image being drawn ("Create image"): its prompt and sampling step, shown until it is stored.
  const [drawing, setDrawing] = useState<{ prompt: string; model: string; step: number; total: number } | null>(null);
  // Following a picture drawn before this page loaded (a reload, another tab): ends the following only.
  const drawFollow = useRef<AbortController | null>(null);
  const followDrawRef = useRef<(id: string, d: Drawing) => Promise<void>>(async () => undefined);
  const stopDrawing = useRef<() => void>(() => undefined);
  // The chat this view created itself (on its first message): already loaded, not to be fetched.
  const created = useRef<string | null>(null);

  // The chat as Atlas holds it; a reply being written (on any node) is followed from where its saved text ends.
  const [reloads, setReloads] = useState(0);
  const attachRef = useRef<(id: string, message: Message) => Promise<void>>(async () => undefined);
  useEffect(() => {
    const id = conversationId;
    if (!id || (reloads === 0 && id === created.current)) return;
    let current = true;
    api
      .conversation(id)
      .then(({ conversation: c, messages: ms, drawing: d }) => {
        if (!current) return;
        setConversation(c);
        setMessages(ms);
        setMissing('');
        setLeafId(initialLeaf(buildTree(ms), c.currentLeafId, ms));
        const live = ms.filter((m) => m.role === 'assistant' && m.status === 'streaming').at(-1);
        if (live && !streamingRef.current) void attachRef.current(c.id, live);
        // A picture being drawn (on the node that answered): shown and followed until it is stored or stopped.
        if (d && !drawFollow.current) void followDrawRef.current(c.id, d);
      })
      .catch((err: Error) => current && !(err instanceof ApiError && err.status === 0) && setMissing(err.message))
      .finally(() => current && setLoading(false));
    return () => {
      current = false;
    };
  }, [conversationId, reloads]);

  // The server came back after a lost connection: read the chat again (and follow its reply, if one is still written).
  const lost = useRef(false);
  useEffect(() => {
    const onBack = () => {
      if (!lost.current) return;
      lost.current = false;
      setReloads((n) => n + 1);
    };
    window.addEventListener('hearth:reachable', onBack);
    return () => window.removeEventListener('hearth:reachable', onBack);
  }, []);

  // Leaving the chat only closes the connection: the server goes on writing the reply (or drawing).
  useEffect(
    () => () => {
      streamingRef.current?.controller.abort();
      drawFollow.current?.abort();
    },
    [],
  );

  const model = conversation?.model ?? setup.model ?? user.defaultModel ?? models[0]?.name ?? null;
  // The same object until the chat's settings change: the settings panel resets its fields when it changes.
  const settings: ChatSetup = useMemo(
    () =>
      conversation
        ? {
            model: conversation.model,
            systemPrompt: conversation.systemPrompt,
            params: conversation.params,
            knowledge: conversation.knowledge ?? [],
          }
        : setup,
    [conversation, setup],
  );

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

  /**
   * What to do with the events of one reply being written: its text goes to its own message (a
   * comparison writes several at once). `leaf`: the page shows each stored message as it comes.
   */
  const eventsFor = useCallback(
    (run: Streaming, leaf = true) =>
      (event: ReplyEvent) => {
        if (event.type === 'message' || event.type === 'done') {
          if (event.type === 'done') {
            pendingText.current.delete(event.message.id);
            if (frame.current) cancelAnimationFrame(frame.current);
            flushText();
          }
          upsert(event.message);
          if (leaf) setLeafId(event.message.id);
          // The user's message is on Atlas: the chat list can show this chat now.
          if (event.type === 'message' && event.message.role === 'user') onChanged();
          if (event.message.role === 'assistant') {
            run.assistantId = event.message.id;
            if (streamingRef.current === run) setStreaming({ ...run });
          }
        } else if (event.type === 'text') {
          const id = run.assistantId;
          if (!id) return;
          pendingText.current.set(id, (pendingText.current.get(id) ?? '') + event.text);
          frame.current ||= requestAnimationFrame(flushText);
        } else if (event.type === 'notice') {
          toast({ text: event.text });
        }
      },
    [flushText, toast, upsert, onChanged],
  );

  /** Runs one reply's request (follow, continue) as the reply being written: Stop and the busy state follow it. */
  const track = async (run: Streaming, request: (onEvent: (event: ReplyEvent) => void) => Promise<void>) => {
    streamingRef.current = run;
    setStreaming(run);
    try {
      await request(eventsFor(run));
    } catch (err) {
      if (err instanceof ApiError && err.status === 0) lost.current = true;
      else if (!run.controller.signal.aborted) toast({ text: (err as Error).message, kind: 'error' });
    } finally {
      if (streamingRef.current === run) {
        streamingRef.current = null;
        setStreaming(null);
        onChanged();
      }
    }
  };

  /** Follows a reply being written, from where the page's text of it ends. */
  const attach = async (id: string, message: Message) => {
    const run: Streaming = { controller: new AbortController(), conversationId: id, assistantId: message.id };
    await track(run, (onEvent) => api.follow(id, message.id, message.content.length, onEvent, run.controller.signal));
  };

  attachRef.current = attach;

  /** The chat's id, made on Atlas with its first message (null: no model to make it with). */
  const ensureConversation = async (needsModel = true): Promise<string | null> => {
    if (conversation) return conversation.id;
    if (!model && needsModel) {
      toast({ text: 'No model yet: import one (see the README); the list updates by itself.', kind: 'error' });
      return null;
    }
    const made = await api.createConversation({
      model,
      systemPrompt: setup.systemPrompt,
      params: setup.params,
      knowledge: setup.knowledge ?? [],
    });
    created.current = made.id;
    setConversation(made);
    props.onCreated(made.id);
    return made.id;
  };

  /** Writes a reply; resolves false when nothing was stored (so the composer can give the text back). */
  const runReply = async (body: {
    parentId: string | null;
    content?: string;
    attachments?: Draft['attachments'];
  }): Promise<boolean> => {
    if (streamingRef.current) return false;
    const firstExchange = messages.length === 0;
    const run: Streaming = { controller: new AbortController(), conversationId: '', assistantId: null };
    try {
      const id = await ensureConversation();
      if (!id) return false;
      run.conversationId = id;
      streamingRef.current = run;
      setStreaming(run);
      stickToBottom.current = true;
      setComparing(null);
      await api.reply(
        id,
        { ...body, ...(model && model !== conversation?.model ? { model } : {}) },
        eventsFor(run),
        run.controller.signal,
      );
    } catch (err) {
      if (!noteFailure(run, err)) return false;
    } finally {
      if (streamingRef.current === run) {
        streamingRef.current = null;
        setStreaming(null);
      }
      onChanged();
      // The model names a new chat in the background, a moment after its first reply.
      if (firstExchange) window.setTimeout(onChanged, 5000);
    }
    return true;
  };

  /**
   * "Create image": an image model draws the prompt on the server; the page shows its steps, then
   * the prompt and the picture as they are stored on Atlas. Resolves false when nothing was stored.
   */
  const runImage = async (draft: ImageDraft): Promise<boolean> => {
    if (streamingRef.current || drawing) return false;
    const firstExchange = messages.length === 0;
    setDrawing({ prompt: draft.prompt, model: draft.model, step: 0, total: draft.steps });
    stickToBottom.current = true;
    let stored = false;
    try {
      const id = await ensureConversation(false);
      if (!id) return false;
      await api.createImage(id, { parentId: last?.id ?? null, ...draft }, (event) => {
        if (drawEvent(event)) stored = true;
      });
    } catch (err) {
      if (err instanceof ApiError && err.status === 0) lost.current = true;
      else toast({ text: (err as Error).message, kind: 'error' });
    } finally {
      setDrawing(null);
      onChanged();
      if (firstExchange) window.setTimeout(onChanged, 1000);
    }
    return stored;
  };

  /** Shows one event of a picture being drawn; true when it stored a message. */
  const drawEvent = (event: ImageEvent): boolean => {
    if (event.type === 'progress') setDrawing((d) => d && { ...d, step: event.step, total: event.total });
    else if (event.type === 'message' || event.type === 'done') {
      upsert(event.message);
      setLeafId(event.message.id);
      return true;
    }
    return false;
  };

  /** Follows a picture being drawn that this page did not start (it was reloaded meanwhile). */
  const followDraw = async (id: string, d: Drawing) => {
    const controller = new AbortController();
    drawFollow.current = controller;
    setDrawing({ prompt: d.prompt, model: d.model, step: d.step, total: d.total });
    let stopped = false;
    try {
      await api.followImage(
        id,
        (event) => {
          if (event.type === 'stopped') stopped = true;
          else drawEvent(event);
        },
        controller.signal,
      );
      if (stopped) toast({ text: `Stopped: nothing of “${d.prompt}” was stored.` });
    } catch (err) {
      if (err instanceof ApiError && err.status === 0) lost.current = true;
      else if (!controller.signal.aborted) toast({ text: (err as Error).message, kind: 'error' });
    } finally {
      if (drawFollow.current === controller) {
        drawFollow.current = null;
        setDrawing(null);
        onChanged();
      }
    }
  };

  followDrawRef.current = followDraw;

  /** Stops the picture being drawn: its stream then ends as stopped (the prompt comes back to the box). */
  const stopImage = async () => {
    if (!conversation) return;
    try {
      await api.stopImage(conversation.id);
    } catch (err) {
      toast({ text: (err as Error).message, kind: 'error' });
    }
  };

  stopDrawing.current = () => void stopImage();

  /** After a failed request: says so (unless the view went away); false when nothing was stored. */
  const noteFailure = (run: Streaming, err: unknown): boolean => {
    if (run.controller.signal.aborted) return true; // the view went away: the server goes on writing
    if (err instanceof ApiError && err.status === 0) {
      // The banner says so; once the server answers again the chat is read again from Atlas.
      lost.current = true;
    } else {
      toast({ text: (err as Error).message, kind: 'error' });
    }
    return run.assistantId !== null;
  };

  /**
   * Compare: one message to 2-4 models at once. The first model answers the new message; the others
   * answer it again (regenerate with their model) as soon as it is stored, so every reply is a
   * sibling in the tree, written on the server like any other. The person then picks one to go on with.
   */
  const runCompare = async (draft: Draft, models: string[]): Promise<boolean> => {
    if (streamingRef.current) return false;
    const primary: Streaming = { controller: new AbortController(), conversationId: '', assistantId: null };
    const others: Array<Promise<void>> = [];
    try {
      const id = await ensureConversation();
      if (!id) return false;
      primary.conversationId = id;
      streamingRef.current = primary;
      setStreaming(primary);
      stickToBottom.current = true;
      const primaryEvents = eventsFor(primary, false);
      await api.reply(
        id,
        { parentId: last?.id ?? null, content: draft.text, attachments: draft.attachments, model: models[0] },
        (event) => {
          primaryEvents(event);
          if (event.type !== 'message' || event.message.role !== 'user') return;
          const asked = event.message;
          setLeafId(asked.id);
          setComparing({ userId: asked.id, models });
          for (const other of models.slice(1)) {
            const run: Streaming = { controller: new AbortController(), conversationId: id, assistantId: null };
            compareRuns.current.push(run);
            others.push(
              api
                .reply(id, { parentId: asked.id, model: other }, eventsFor(run, false), run.controller.signal)
                .catch((err: unknown) => void noteFailure(run, err)),
            );
          }
        },
        primary.controller.signal,
      );
      await Promise.all(others);
    } catch (err) {
      await Promise.all(others);
      if (!noteFailure(primary, err)) return false;
    } finally {
      compareRuns.current = [];
      if (streamingRef.current === primary) {
        streamingRef.current = null;
        setStreaming(null);
      }
      onChanged();
    }
    return true;
  };

  /** Goes on with one of the compared replies: it becomes the shown branch, its model the chat's. */
  const pick = async (reply: Message) => {
    setComparing(null);
    setLeafId(reply.id);
    if (!conversation) return;
    try {
      setConversation(
        await api.updateConversation(conversation.id, {
          currentLeafId: reply.id,
          ...(reply.model ? { model: reply.model } : {}),
        }),
      );
    } catch (err) {
      toast({ text: (err as Error).message, kind: 'error' });
    }
  };

  /** Continues a reply that ended early: its text stays and the new text is appended to it. */
  const runContinue = async (message: Message): Promise<void> => {
    if (streamingRef.current || !conversation) return;
    const id = conversation.id;
    const run: Streaming = { controller: new AbortController(), conversationId: id, assistantId: null };
    stickToBottom.current = true;
    await track(run, (onEvent) => api.continueReply(id, message.id, onEvent, run.controller.signal));
  };

  // Stop is explicit: the server stops the reply (on whichever node writes it) and the stream ends with it.
  const stop = useCallback(async () => {
    const runs = [streamingRef.current, ...compareRuns.current];
    await Promise.all(
      runs.map(async (run) => {
        if (!run?.assistantId) return;
        try {
          await api.stop(run.conversationId, run.assistantId);
        } catch (err) {
          toast({ text: (err as Error).message, kind: 'error' });
        }
      }),
    );
  }, [toast]);

  // Esc stops a reply, or the picture being drawn (unless a dialog has it).
  const isDrawing = drawing !== null;
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== 'Escape' || props.panelOpen || !(streamingRef.current || isDrawing)) return;
      e.preventDefault();
      if (streamingRef.current) void stop();
      else stopDrawing.current();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [stop, props.panelOpen, isDrawing]);

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
  const modelInfo = models.find((m) => m.name === model);
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
          aria-expanded={showCompare}
          aria-controls="compare-picker"
          onClick={() => setShowCompare((s) => !s)}
          disabled={models.length < 2}
        >
          Compare
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
      {showCompare && (
        <fieldset id="compare-picker" className="compare-picker">
          <legend>Compare: your next message goes to each model checked (2 to 4), side by side</legend>
          {models.map((m) => {
            const checked = compareModels.includes(m.name);
            return (
              <label key={m.name} className="inline">
                <input
                  type="checkbox"
                  checked={checked}
                  disabled={!checked && compareModels.length >= 4}
                  onChange={() =>
                    setCompareModels((all) => (checked ? all.filter((x) => x !== m.name) : [...all, m.name]))
                  }
                />{' '}
                {m.name}
              </label>
            );
          })}
        </fieldset>
      )}
      <section
        className="messages"
        aria-label="Messages"
        onScroll={(e) => {
          const el = e.currentTarget;
          stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
          if (stickToBottom.current !== atBottom) setAtBottom(stickToBottom.current);
        }}
      >
        {missing && (
          <p className="error pad" role="alert">
            {missing}
          </p>
        )}
        {!loading && !missing && branch.length === 0 && !drawing && (
          <div className="empty">
            <h2>What shall we talk about?</h2>
            <p className="muted">
              {model ? `Model: ${model}.` : 'No model yet.'}{' '}
              <span className="keyboard-hint">Enter sends, Shift+Enter adds a line, Esc stops a reply.</span>
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
              onRegenerate={
                // A created image is not a model's reply: Create image again instead.
                m.role === 'assistant' && m.attachments.some((a) => a.image)
                  ? undefined
                  : () => void runReply({ parentId: m.parentId })
              }
              onContinue={() => void runContinue(m)}
              onEdit={(content) => void runReply({ parentId: m.parentId, content })}
              onCopied={() => toast({ text: 'Copied.' })}
            />
          );
        })}
        {drawing && (
          <article className="message assistant drawing" aria-label={`Image from ${drawing.model}`} aria-busy="true">
            <div className="message-head">
              <span className="who">{drawing.model}</span>
            </div>
            <p role="status">
              Creating “{drawing.prompt}”… {drawing.step > 0 ? `step ${drawing.step} of ${drawing.total}` : 'starting'}
            </p>
            <progress max={drawing.total} value={drawing.step} aria-label="Image progress" />
          </article>
        )}
        {comparing && last?.id === comparing.userId && (
          <section className="compare" aria-label="Replies side by side">
            {(tree.children.get(comparing.userId) ?? []).map((m) => (
              <div key={m.id} className="compare-column">
                <MessageView
                  message={m}
                  siblingIndex={0}
                  siblingCount={1}
                  busy={streaming !== null}
                  streaming={m.status === 'streaming'}
                  onPrevious={() => undefined}
                  onNext={() => undefined}
                  onRegenerate={() => undefined}
                  onContinue={() => undefined}
                  onEdit={() => undefined}
                  onCopied={() => toast({ text: 'Copied.' })}
                  compact
                />
                <button
                  type="button"
                  className="primary"
                  disabled={m.status === 'streaming'}
                  onClick={() => void pick(m)}
                >
                  Continue with {m.model}
                </button>
              </div>
            ))}
          </section>
        )}
        <div ref={bottom} />
      </section>
      {!atBottom && branch.length > 0 && (
        <button
          type="button"
          className="to-bottom"
          onClick={() => {
            stickToBottom.current = true;
            setAtBottom(true);
            bottom.current?.scrollIntoView({ block: 'end', behavior: 'smooth' });
          }}
        >
          ↓<span className="visually-hidden">Scroll to the latest message</span>
        </button>
      )}
      <Composer
        noImages={
          modelInfo && !modelInfo.capabilities?.includes('vision')
            ? `${modelInfo.name} cannot see images (it has no vision capability): pick a vision model, or remove the image.`
            : null
        }
        busy={streaming !== null || drawing !== null}
        disabled={Boolean(missing)}
        imageModels={props.imageModels}
        onCreateImage={runImage}
        onSend={(draft) =>
          compareModels.length >= 2 && showCompare
            ? runCompare(draft, compareModels)
            : runReply({ parentId: last?.id ?? null, content: draft.text, attachments: draft.attachments })
        }
        onStop={drawing ? () => void stopImage() : () => void stop()}
        onError={(text) => toast({ text, kind: 'error' })}
      />
    </main>
  );
}
