import { type KeyboardEvent, useRef, useState } from 'react';
import { Icon } from './Icon';

export interface Draft {
  text: string;
  attachments: Array<{ name: string; text: string }>;
}

/** Later issues read these; for now they are refused with a clear message. */
const NOT_TEXT =
  /\.(pdf|png|jpe?g|gif|webp|bmp|heic|heif|tiff?|svg|ico|zip|gz|tgz|7z|rar|docx?|xlsx?|pptx?|odt|mp3|wav|mp4|mov|gguf|bin)$/i;
const MAX_FILE_BYTES = 2 * 1024 * 1024;

/**
 * The message box. Enter sends, Shift+Enter makes a new line, and Enter while an input method is
 * composing (Japanese, Chinese, ...) does neither: it belongs to the input method.
 */
export function Composer(props: {
  busy: boolean;
  disabled: boolean;
  /** Resolves false when the message was not taken (an error): the text comes back to the box. */
  onSend: (draft: Draft) => Promise<boolean>;
  onStop: () => void;
  onError: (text: string) => void;
}) {
  const [text, setText] = useState('');
  const [attachments, setAttachments] = useState<Draft['attachments']>([]);
  const files = useRef<HTMLInputElement>(null);

  const send = () => {
    if (props.busy || props.disabled || (!text.trim() && attachments.length === 0)) return;
    const draft = { text, attachments };
    setText('');
    setAttachments([]);
    void props.onSend(draft).then((taken) => {
      if (taken) return;
      setText((now) => now || draft.text);
      setAttachments((now) => (now.length ? now : draft.attachments));
    });
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    // keyCode 229: some browsers report the composition's Enter this way instead of isComposing.
    if (e.key !== 'Enter' || e.shiftKey || e.nativeEvent.isComposing || e.keyCode === 229) return;
    e.preventDefault();
    send();
  };

  const attach = async (list: FileList) => {
    for (const file of Array.from(list)) {
      if (NOT_TEXT.test(file.name) || file.type.startsWith('image/') || file.type === 'application/pdf') {
        const kind =
          file.type === 'application/pdf' || /\.pdf$/i.test(file.name)
            ? 'PDF files are'
            : file.type.startsWith('image/')
              ? 'Images are'
              : 'Binary files are';
        props.onError(`${file.name}: ${kind} not supported yet. Attach text, Markdown or code files.`);
        continue;
      }
      if (file.size > MAX_FILE_BYTES) {
        props.onError(`${file.name} is larger than 2 MB: attach a smaller text file.`);
        continue;
      }
      const content = await file.text();
      if (content.includes('\u0000')) {
        props.onError(`${file.name} is not a text file.`);
        continue;
      }
      setAttachments((all) => [...all.filter((a) => a.name !== file.name), { name: file.name, text: content }]);
    }
  };

  return (
    <form
      className="composer"
      onSubmit={(e) => {
        e.preventDefault();
        send();
      }}
    >
      {attachments.length > 0 && (
        <ul className="attachments" aria-label="Files to send">
          {attachments.map((a) => (
            <li key={a.name} className="attachment">
              <Icon name="file" /> {a.name}
              <button
                type="button"
                className="icon"
                aria-label={`Remove ${a.name}`}
                onClick={() => setAttachments((all) => all.filter((x) => x.name !== a.name))}
              >
                <Icon name="close" />
              </button>
            </li>
          ))}
        </ul>
      )}
      <div className="composer-row">
        <button
          type="button"
          className="icon attach"
          aria-label="Attach text files"
          onClick={() => files.current?.click()}
        >
          <Icon name="attach" />
        </button>
        <input
          ref={files}
          type="file"
          multiple
          hidden
          aria-label="Attach text files"
          onChange={(e) => {
            if (e.target.files) void attach(e.target.files);
            e.target.value = '';
          }}
        />
        <textarea
          id="composer-input"
          aria-label="Message"
          placeholder="Send a message"
          rows={Math.min(10, Math.max(1, text.split('\n').length))}
          value={text}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={onKeyDown}
          disabled={props.disabled}
        />
        {props.busy ? (
          <button type="button" className="stop" onClick={props.onStop} aria-keyshortcuts="Escape">
            Stop
          </button>
        ) : (
          <button
            type="submit"
            className="primary send"
            disabled={props.disabled || (!text.trim() && attachments.length === 0)}
          >
            Send
          </button>
        )}
      </div>
    </form>
  );
}
