import { type FormEvent, type ReactNode, useEffect, useId, useRef, useState } from 'react';
import { createPortal } from 'react-dom';

const FOCUSABLE =
  'a[href], button:not(:disabled), input:not(:disabled):not([type="hidden"]), select:not(:disabled), textarea:not(:disabled), summary, [tabindex]:not([tabindex="-1"])';

/** Dialogs open now (a confirmation can open over another dialog). */
let open = 0;

/** The elements Tab reaches inside `root`, in order (hidden ones left out). */
function focusables(root: HTMLElement): HTMLElement[] {
  return Array.from(root.querySelectorAll<HTMLElement>(FOCUSABLE)).filter(
    (el) => !el.hidden && el.getClientRects().length > 0,
  );
}

/**
 * A modal dialog: labelled, focus moved in on open and back out on close, Tab and Shift+Tab stay
 * inside it (the page behind is inert), Esc closes it.
 */
export function Dialog(props: { title: string; onClose: () => void; children: ReactNode; wide?: boolean }) {
  const { onClose } = props;
  const titleId = useId();
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    const root = ref.current;
    const first =
      root?.querySelector<HTMLElement>('[data-autofocus]') ??
      root?.querySelector<HTMLElement>('input, textarea, select, button:not(.dialog-close)');
    first?.focus();
    // Everything behind the dialogs is out of reach for Tab and for screen readers while one is open.
    // Dialogs live at the end of <body> (a portal), so the whole app can be inert under them.
    const others = Array.from(document.querySelectorAll<HTMLElement>('#root > *'));
    open += 1;
    for (const el of others) el.inert = true;
    return () => {
      open -= 1;
      if (open === 0) for (const el of others) el.inert = false;
      before?.focus?.();
    };
  }, []);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const root = ref.current;
      // The newest dialog has the keys (a confirmation over another dialog).
      const dialogs = document.querySelectorAll('.dialog');
      if (!root || dialogs[dialogs.length - 1] !== root) return;
      if (e.key === 'Escape') {
        e.preventDefault();
        // Only this dialog closes: not the one under it, whose listener may run next.
        e.stopImmediatePropagation();
        onClose();
      } else if (e.key === 'Tab') {
        const items = focusables(root);
        if (items.length === 0) return;
        const at = items.indexOf(document.activeElement as HTMLElement);
        const next = e.shiftKey
          ? at <= 0
            ? items[items.length - 1]
            : items[at - 1]
          : at === -1 || at === items.length - 1
            ? items[0]
            : items[at + 1];
        e.preventDefault();
        next?.focus();
      }
    };
    window.addEventListener('keydown', onKey, true);
    return () => window.removeEventListener('keydown', onKey, true);
  }, [onClose]);
  return createPortal(
    <div className="backdrop">
      <div
        ref={ref}
        className={props.wide ? 'dialog wide' : 'dialog'}
        role="dialog"
        aria-modal="true"
        aria-labelledby={titleId}
      >
        <div className="dialog-head">
          <h2 id={titleId}>{props.title}</h2>
          <button type="button" className="icon dialog-close" aria-label="Close" onClick={onClose}>
            ×
          </button>
        </div>
        {props.children}
      </div>
    </div>,
    document.body,
  );
}

/** Asks before something that cannot be undone; the message names what is lost. */
export function ConfirmDialog(props: {
  title: string;
  message: ReactNode;
  confirm: string;
  onConfirm: () => void;
  onClose: () => void;
}) {
  return (
    <Dialog title={props.title} onClose={props.onClose}>
      <p>{props.message}</p>
      <div className="dialog-actions">
        <button type="button" onClick={props.onClose} data-autofocus>
          Cancel
        </button>
        <button
          type="button"
          className="danger"
          onClick={() => {
            props.onConfirm();
            props.onClose();
          }}
        >
          {props.confirm}
        </button>
      </div>
    </Dialog>
  );
}

/** Asks for a new password, hidden as it is typed, twice. */
export function PasswordDialog(props: {
  title: string;
  onSubmit: (password: string) => Promise<void>;
  onClose: () => void;
}) {
  const [password, setPassword] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState('');
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (password !== again) {
      setError('The two passwords differ: type the same password twice.');
      return;
    }
    try {
      await props.onSubmit(password);
      props.onClose();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <Dialog title={props.title} onClose={props.onClose}>
      <form className="password-form" onSubmit={(e) => void submit(e)}>
        <label>
          New password
          <input
            type="password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            required
            minLength={8}
            autoComplete="new-password"
          />
        </label>
        <label>
          New password again
          <input
            type="password"
            value={again}
            onChange={(e) => setAgain(e.target.value)}
            required
            minLength={8}
            autoComplete="new-password"
          />
        </label>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <div className="dialog-actions">
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" className="primary">
            Set password
          </button>
        </div>
      </form>
    </Dialog>
  );
}
