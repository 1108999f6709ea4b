import { type KeyboardEvent, useRef, useState } from 'react';
import type { ByteAttachment, ImageModelInfo, UnreadAttachment } from '../api';
import { Icon } from './Icon';

/** A file for a message: text read here, or the bytes (base64) of a PDF, a Word document or an image, which the server reads. */
export type DraftFile = { name: string; text: string } | { name: string; data: string; preview?: string };

export interface Draft {
  text: string;
  attachments: DraftFile[];
}

/** What "Create image" sends: the prompt and the image options. */
export interface ImageDraft {
  prompt: string;
  model: string;
  size: string;
  steps: number;
}

/** Sizes offered for "Create image" (the server takes any multiple of 8 from 64 to 4096). */
const IMAGE_SIZES = [
  ['256x256', 'Small square, 256×256'],
  ['512x512', 'Square, 512×512'],
  ['768x512', 'Landscape, 768×512'],
  ['512x768', 'Portrait, 512×768'],
  ['768x768', 'Square, 768×768'],
  ['1024x1024', 'Large square, 1024×1024'],
] as const;
/** An image model's own size: SDXL draws 1024×1024, SD 1.x/2.x 512×512. */
const nativeSize = (model: ImageModelInfo | undefined) => (model?.family === 'sdxl' ? '1024x1024' : '512x512');

/**
 * Files sent as their bytes, which the server reads: PDF and Word (.docx) for their text, images for
 * vision models. Typed with the contract's list (src/chat/vocabulary.ts): a missing or extra entry
 * fails the type check, so the composer and the server accept the same files.
 */
const AS_BYTES = {
  '.pdf': true,
  '.docx': true,
  '.png': true,
  '.jpg': true,
  '.jpeg': true,
  '.gif': true,
  '.webp': true,
} as const satisfies Record<ByteAttachment, true>;
const IMAGE = /\.(png|jpe?g|gif|webp)$/i;
/** Neither text nor read by hearth: refused at once, with what is read (the server's list, as above). */
const NOT_READ = {
  '.doc': true,
  '.xls': true,
  '.xlsx': true,
  '.ppt': true,
  '.pptx': true,
  '.odt': true,
  '.bmp': true,
  '.heic': true,
  '.heif': true,
  '.tif': true,
  '.tiff': true,
  '.svg': true,
  '.ico': true,
  '.zip': true,
  '.gz': true,
  '.tgz': true,
  '.7z': true,
  '.rar': true,
  '.mp3': true,
  '.wav': true,
  '.mp4': true,
  '.mov': true,
  '.gguf': true,
  '.bin': true,
} as const satisfies Record<UnreadAttachment, true>;
const extension = (name: string) => name.slice(name.lastIndexOf('.')).toLowerCase();
const listed = (list: Record<string, true>, name: string) => Object.hasOwn(list, extension(name));
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
  /** Stops the reply being written or the picture being drawn. */
  onStop: () => void;
  onError: (text: string) => void;
  /** Why the chosen model takes no images (null: it sees them) */
  noImages: string | null;
  /** The image models: with any, "Create image" is offered. */
  imageModels: ImageModelInfo[];
  /** Resolves false when the image was not made (an error): the prompt comes back to the box. */
  onCreateImage: (draft: ImageDraft) => Promise<boolean>;
}) {
  const [text, setText] = useState('');
  const [attachments, setAttachments] = useState<Draft['attachments']>([]);
  const files = useRef<HTMLInputElement>(null);
  // "Create image" mode: the text is a prompt for an image model.
  const [imageMode, setImageMode] = useState(false);
  const [imageModel, setImageModel] = useState('');
  const [size, setSize] = useState('');
  const [steps, setSteps] = useState(20);
  const drawing = imageMode && props.imageModels.length > 0;
  const chosen = props.imageModels.find((m) => m.name === imageModel) ?? props.imageModels[0];

  const createImage = () => {
    if (props.busy || props.disabled || !text.trim() || !chosen) return;
    const prompt = text;
    setText('');
    void props.onCreateImage({ prompt, model: chosen.name, size: size || nativeSize(chosen), steps }).then((taken) => {
      if (!taken) setText((now) => now || prompt);
    });
  };

  const send = () => {
    if (drawing) return createImage();
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
      if (listed(NOT_READ, name) || (image && !IMAGE.test(name) && !/^image\/(png|jpeg|gif|webp)$/.test(file.type))) {
        props.onError(
          `${name}: this kind of file is not read. Attach text, Markdown, code, PDF, Word (.docx) or images (PNG, JPEG, GIF, WebP).`,
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
      if (image || listed(AS_BYTES, name) || file.type === 'application/pdf') {
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
      {drawing && chosen && (
        <fieldset className="image-options">
          <legend className="visually-hidden">Image options</legend>
          <label>
            Image model{' '}
            <select
              value={chosen.name}
              onChange={(e) => {
                setImageModel(e.target.value);
                setSize('');
              }}
            >
              {props.imageModels.map((m) => (
                <option key={m.name} value={m.name}>
                  {m.name}
                </option>
              ))}
            </select>
          </label>
          <label>
            Size{' '}
            <select value={size || nativeSize(chosen)} onChange={(e) => setSize(e.target.value)}>
              {IMAGE_SIZES.map(([value, label]) => (
                <option key={value} value={value}>
                  {label}
                </option>
              ))}
            </select>
          </label>
          <label>
            Steps{' '}
            <input
              type="number"
              inputMode="numeric"
              min={1}
              max={100}
              value={steps}
              onChange={(e) => setSteps(Math.min(100, Math.max(1, Math.round(Number(e.target.value)) || 1)))}
            />
          </label>
        </fieldset>
      )}
      <div className="composer-row">
        {!drawing && (
          <button
            type="button"
            className="icon attach"
            aria-label="Attach files"
            onClick={() => files.current?.click()}
          >
            <Icon name="attach" />
          </button>
        )}
        {props.imageModels.length > 0 && (
          <button
            type="button"
            className="icon create-image"
            aria-label="Create image"
            aria-pressed={drawing}
            title={drawing ? 'Back to messages' : 'Create an image with an image model'}
            onClick={() => setImageMode((on) => !on)}
          >
            <Icon name="image" />
          </button>
        )}
        <input
          ref={files}
          type="file"
          multiple
          hidden
          aria-label="Attach files (text, Markdown, code, PDF, Word, images)"
          onChange={(e) => {
            if (e.target.files) void attach(e.target.files);
            e.target.value = '';
          }}
        />
        <textarea
          id="composer-input"
          aria-label={drawing ? 'Image prompt' : 'Message'}
          placeholder={drawing ? 'Describe an image' : 'Send a message'}
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
        ) : drawing ? (
          <button type="submit" className="primary send" disabled={props.disabled || !text.trim()}>
            Create
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
