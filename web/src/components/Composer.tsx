import { type KeyboardEvent, useRef, useState } from 'react';
import { Icon } from './Icon';

/** A file for a message: text read here, or the bytes (base64) of a PDF or an image, which the server reads. */
export type DraftFile = { name: string; text: string } | { name: string; data: string; preview?: string };

export interface Draft {
  text: string;
  attachments: DraftFile[];
}

/** Files the server reads from their bytes: PDF (its text layer) and images (for vision models). */
const AS_BYTES = /\.(pdf|png|jpe?g|gif|webp)$/i;
const IMAGE = /\.(png|jpe?g|gif|webp)$/i;
/** Neither text nor read by hearth: refused at once, with what is read. */
const NOT_READ = /\.(bmp|heic|heif|tiff?|svg|ico|zip|gz|tgz|7z|rar|docx?|xlsx?|pptx?|odt|mp3|wav|mp4|mov|gguf|bin)$/i;
const MAX_FILE_BYTES = 10 * 1024 * 1024;

/** A file's bytes as base64 (what the reply request carries). */
function base64Of(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ''));
    reader.onerror = () => reject(reader.error ?? new Error(`${file.name} could not be read`));
    reader.readAsDataURL(file);
  });
}

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
  /** Why the chosen model takes no images (null: it sees them) */
  noImages: string | null;
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

  const attach = async (list: FileList | File[]) => {
    for (const file of Array.from(list)) {
      // A pasted screenshot has a generic name: give it one that says what it is.
      const name = file.name && file.name !== 'image.png' ? file.name : `pasted-${Date.now()}.png`;
      const image = file.type.startsWith('image/') || IMAGE.test(name);
      if (NOT_READ.test(name) || (image && !IMAGE.test(name) && !/^image\/(png|jpeg|gif|webp)$/.test(file.type))) {
        props.onError(
          `${name}: this kind of file is not read. Attach text, Markdown, code, PDF or images (PNG, JPEG, GIF, WebP).`,
        );
        continue;
      }
      if (image && props.noImages) {
        props.onError(`${name}: ${props.noImages}`);
        continue;
      }
      if (file.size > MAX_FILE_BYTES) {
        props.onError(`${name} is larger than 10 MB: attach a smaller file.`);
        continue;
      }
      let added: DraftFile;
      if (image || AS_BYTES.test(name) || file.type === 'application/pdf') {
        added = { name, data: await base64Of(file), ...(image ? { preview: URL.createObjectURL(file) } : {}) };
      } else {
        const content = await file.text();
        if (content.includes('\u0000')) {
          props.onError(`${name} is not a text file.`);
          continue;
        }
        added = { name, text: content };
      }
      setAttachments((all) => [...all.filter((a) => a.name !== name), added]);
    }
  };

  return (
    <form
      className="composer"
      onSubmit={(e) => {
        e.preventDefault();
        send();
      }}
      // Files dropped on the message box, or pasted into it (a screenshot), are attached.
      onDragOver={(e) => {
        if (e.dataTransfer.types.includes('Files')) e.preventDefault();
      }}
      onDrop={(e) => {
        if (e.dataTransfer.files.length === 0) return;
        e.preventDefault();
        void attach(e.dataTransfer.files);
      }}
    >
      {attachments.length > 0 && (
        <ul className="attachments" aria-label="Files to send">
          {attachments.map((a) => (
            <li key={a.name} className="attachment">
              {'preview' in a && a.preview ? <img src={a.preview} alt="" className="thumb" /> : <Icon name="file" />}{' '}
              {a.name}
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
        <button type="button" className="icon attach" aria-label="Attach files" onClick={() => files.current?.click()}>
          <Icon name="attach" />
        </button>
        <input
          ref={files}
          type="file"
          multiple
          hidden
          aria-label="Attach files (text, Markdown, code, PDF, images)"
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
          onPaste={(e) => {
            if (e.clipboardData.files.length === 0) return;
            e.preventDefault();
            void attach(e.clipboardData.files);
          }}
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
