import { type MouseEvent, memo, useEffect, useMemo, useRef, useState } from 'react';
import type { Attachment, Message, Source } from '../api';
import { highlightWithin } from '../highlight';
import { renderMarkdown, splitReasoning } from '../markdown';
import { renderMathWithin } from '../math';
import { shortDate } from './Accounts';
import { Dialog } from './Dialog';
import { Icon } from './Icon';

interface MessageViewProps {
  message: Message;
  siblingIndex: number;
  siblingCount: number;
  /** a reply is being written (no regenerate or edit meanwhile) */
  busy: boolean;
  /** this is the reply being written */
  streaming: boolean;
  onPrevious: () => void;
  onNext: () => void;
  /** absent: the reply cannot be written again (a created image: create another instead) */
  onRegenerate?: (() => void) | undefined;
  /** continues a reply that ended early, appending to its text */
  onContinue: () => void;
  onEdit: (content: string) => void;
  onCopied: () => void;
  /** a column of a comparison: no actions under the reply (the column has its own) */
  compact?: boolean;
}

async function copy(text: string): Promise<void> {
  await navigator.clipboard.writeText(text);
}

export const MessageView = memo(function MessageView(props: MessageViewProps) {
  const { message: m } = props;
  const [editing, setEditing] = useState(false);
  const [showStats, setShowStats] = useState(false);
  // The image open in the viewer.
  const [viewing, setViewing] = useState<Attachment | null>(null);
  const body = useRef<HTMLDivElement>(null);
  // Everyone's messages are Markdown; a reply's leading <think> block is its reasoning, shown folded.
  const parts = useMemo(
    () =>
      m.role === 'assistant' ? splitReasoning(m.content) : { reasoning: null, thinking: false, answer: m.content },
    [m.role, m.content],
  );
  const html = useMemo(() => renderMarkdown(parts.answer, m.role === 'user'), [parts.answer, m.role]);
  const reasoningHtml = useMemo(() => (parts.reasoning ? renderMarkdown(parts.reasoning) : ''), [parts.reasoning]);
  const reasoningBody = useRef<HTMLDivElement>(null);

  useEffect(() => {
    // Highlighting and math wait for the end of a reply: a half-written block would be done twice.
    if (!html || props.streaming || !body.current) return;
    if (body.current.querySelector('pre code[class*="language-"]')) void highlightWithin(body.current);
    if (body.current.querySelector('.math')) void renderMathWithin(body.current);
  }, [html, props.streaming]);

  const onBodyClick = (e: MouseEvent<HTMLDivElement>) => {
    const button = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-copy]');
    const code = button?.closest('.code-block')?.querySelector('code');
    if (!button || !code) return;
    void copy(code.textContent ?? '').then(() => {
      button.textContent = 'Copied';
      window.setTimeout(() => {
        button.textContent = 'Copy';
      }, 1500);
    });
  };

  const who = m.role === 'user' ? 'You' : (m.model ?? 'Assistant');
  const stats = m.stats;

  return (
    <article
      className={`message ${m.role}`}
      aria-label={m.role === 'user' ? 'Your message' : `Reply from ${who}`}
      aria-busy={props.streaming}
      data-status={m.status}
    >
      <div className="message-head">
        <span className="who">{who}</span>
        <time className="when" dateTime={m.createdAt} title={new Date(m.createdAt).toLocaleString()}>
          {shortDate(m.createdAt)}
        </time>
        {props.siblingCount > 1 && (
          <nav
            className="siblings"
            aria-label={m.role === 'user' ? 'Versions of this message' : 'Versions of this reply'}
          >
            <button
              type="button"
              className="icon"
              aria-label="Previous version"
              disabled={props.siblingIndex === 0 || props.busy}
              onClick={props.onPrevious}
            >
              ‹
            </button>
            <span className="sibling-position">
              {props.siblingIndex + 1}/{props.siblingCount}
            </span>
            <button
              type="button"
              className="icon"
              aria-label="Next version"
              disabled={props.siblingIndex === props.siblingCount - 1 || props.busy}
              onClick={props.onNext}
            >
              ›
            </button>
          </nav>
        )}
      </div>
      {m.attachments.length > 0 && (
        <ul className="attachments" aria-label="Attached files">
          {m.attachments.map((a) =>
            a.image ? (
              <li key={a.name} className="attachment image">
                <button type="button" className="thumb-button" onClick={() => setViewing(a)}>
                  <img src={`/api/ui/images/${a.image}`} alt={a.name} className="thumb" loading="lazy" />
                  <span className="visually-hidden">Open {a.name}</span>
                </button>
              </li>
            ) : (
              <li key={a.name} className={a.truncated ? 'attachment cut' : 'attachment'}>
                <Icon name="file" /> {a.name}
                {a.truncated && <span className="warn"> (cut to fit the model’s context)</span>}
              </li>
            ),
          )}
        </ul>
      )}
      {viewing?.image && (
        <Dialog title={viewing.name} onClose={() => setViewing(null)} wide>
          <img src={`/api/ui/images/${viewing.image}`} alt={viewing.name} className="image-view" />
        </Dialog>
      )}
      {parts.reasoning !== null && !editing && (
        <details
          className="reasoning"
          onToggle={(e) => {
            if (e.currentTarget.open && reasoningBody.current?.querySelector('.math'))
              void renderMathWithin(reasoningBody.current);
          }}
        >
          <summary>
            {parts.thinking
              ? 'Thinking…'
              : stats?.reasoningMs !== undefined
                ? `Reasoning · ${(stats.reasoningMs / 1000).toFixed(1)} s`
                : 'Reasoning'}
          </summary>
          <div
            ref={reasoningBody}
            className="markdown"
            // biome-ignore lint/security/noDangerouslySetInnerHtml: markdown-it with raw HTML disabled escapes everything the model wrote
            dangerouslySetInnerHTML={{ __html: reasoningHtml }}
          />
        </details>
      )}
      {editing ? (
        <EditBox
          initial={m.content}
          onCancel={() => setEditing(false)}
          onSave={(text) => {
            setEditing(false);
            if (text.trim()) props.onEdit(text);
          }}
        />
      ) : (
        // biome-ignore lint/a11y/noStaticElementInteractions: delegates clicks to the copy buttons (real buttons) inside rendered markdown
        // biome-ignore lint/a11y/useKeyWithClickEvents: the copy buttons inside are focusable buttons; Enter on them clicks
        <div
          ref={body}
          className="markdown"
          onClick={onBodyClick}
          // biome-ignore lint/security/noDangerouslySetInnerHtml: markdown-it with raw HTML disabled escapes everything the model wrote
          dangerouslySetInnerHTML={{ __html: html }}
        />
      )}
      {props.streaming && m.content === '' && <p className="muted typing">Thinking…</p>}
      {m.status === 'stopped' && (
        <p className="note">
          Stopped.
          {m.content && (
            <button type="button" disabled={props.busy} onClick={props.onContinue}>
              Continue
            </button>
          )}
        </p>
      )}
      {m.status === 'done' && stats?.doneReason === 'length' && !props.streaming && (
        <p className="note">
          Cut at the length limit.
          <button type="button" disabled={props.busy} onClick={props.onContinue}>
            Continue
          </button>
        </p>
      )}
      {m.status === 'interrupted' && (
        <p className="note interrupted">
          <strong>Interrupted.</strong> {m.error}{' '}
          {m.content && (
            <button type="button" disabled={props.busy} onClick={props.onContinue}>
              Continue
            </button>
          )}
          <button type="button" disabled={props.busy} onClick={props.onRegenerate}>
            Regenerate
          </button>
        </p>
      )}
      {m.status === 'error' && (
        <p className="error" role="alert">
          {m.error ?? 'The reply failed.'}
          {m.content && (
            <button type="button" disabled={props.busy} onClick={props.onContinue}>
              Continue
            </button>
          )}
        </p>
      )}
      {!editing && !props.streaming && !props.compact && (
        <div className="message-actions">
          <button type="button" onClick={() => void copy(m.content).then(props.onCopied)}>
            Copy
          </button>
          {m.role === 'user' && (
            <button type="button" disabled={props.busy} onClick={() => setEditing(true)}>
              Edit
            </button>
          )}
          {m.role === 'assistant' && props.onRegenerate && (
            <button type="button" disabled={props.busy} onClick={props.onRegenerate}>
              Regenerate
            </button>
          )}
          {m.role === 'assistant' && stats && (
            <button type="button" aria-expanded={showStats} onClick={() => setShowStats((s) => !s)}>
              Stats
            </button>
          )}
        </div>
      )}
      {m.role === 'assistant' && stats?.sources && stats.sources.length > 0 && <Sources sources={stats.sources} />}
      {showStats && stats && (
        <p className="stats">
          {[
            stats.evalTokens !== undefined && `${stats.evalTokens} tokens`,
            stats.tokensPerSecond !== undefined && `${stats.tokensPerSecond} tokens/s`,
            stats.timeToFirstTokenMs !== undefined && `first token after ${stats.timeToFirstTokenMs} ms`,
            stats.promptTokens !== undefined && `prompt ${stats.promptTokens} tokens`,
            stats.totalMs !== undefined && `${(stats.totalMs / 1000).toFixed(1)} s in all`,
          ]
            .filter(Boolean)
            .join(' · ')}
        </p>
      )}
    </article>
  );
});

/**
 * The numbered passages a reply was given; each opens to show the passage as retrieved, with its
 * retrieval score (fused) and the reranker's score when the retrieval was reranked.
 */
function Sources(props: { sources: Source[] }) {
  const [open, setOpen] = useState<number | null>(null);
  const shown = props.sources.find((s) => s.n === open);
  return (
    <section className="sources" aria-label="Sources">
      {props.sources.map((s) => (
        <button
          key={s.n}
          type="button"
          className="citation"
          aria-expanded={open === s.n}
          onClick={() => setOpen(open === s.n ? null : s.n)}
        >
          [{s.n}] {s.document}
          {s.heading ? ` › ${s.heading}` : ''}
        </button>
      ))}
      {shown && (
        <blockquote className="source-passage" aria-label={`Source ${shown.n}`}>
          <p className="muted">
            #{shown.base} · {shown.document}
            {shown.heading ? ` › ${shown.heading}` : ''}
          </p>
          <p className="source-scores muted">
            score {shown.score.toFixed(3)}
            {shown.rerank_score === undefined ? '' : ` · rerank ${shown.rerank_score.toFixed(3)}`}
          </p>
          <p>{shown.text}</p>
        </blockquote>
      )}
    </section>
  );
}

function EditBox(props: { initial: string; onSave: (text: string) => void; onCancel: () => void }) {
  const [text, setText] = useState(props.initial);
  const ref = useRef<HTMLTextAreaElement>(null);
  useEffect(() => ref.current?.focus(), []);
  return (
    <div className="edit-box">
      <textarea
        ref={ref}
        aria-label="Edit your message"
        value={text}
        rows={Math.min(12, text.split('\n').length + 1)}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
            e.preventDefault();
            props.onSave(text);
          } else if (e.key === 'Escape') {
            e.stopPropagation();
            props.onCancel();
          }
        }}
      />
      <div className="message-actions">
        <button type="button" className="primary" onClick={() => props.onSave(text)}>
          Save and send
        </button>
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </div>
  );
}
