export interface Toast {
  id: string;
  text: string;
  kind?: 'error';
  action?: { label: string; run: () => Promise<void> | void };
}

/** Short notices at the bottom of the page; errors are announced at once. */
export function Toasts(props: { toasts: Toast[]; onDismiss: (id: string) => void }) {
  return (
    <div className="toasts" aria-live="polite">
      {props.toasts.map((t) => (
        <div
          key={t.id}
          className={t.kind === 'error' ? 'toast error' : 'toast'}
          role={t.kind === 'error' ? 'alert' : 'status'}
        >
          <span>{t.text}</span>
          {t.action && (
            <button
              type="button"
              onClick={() => {
                props.onDismiss(t.id);
                void t.action?.run();
              }}
            >
              {t.action.label}
            </button>
          )}
          <button type="button" className="icon" aria-label="Dismiss" onClick={() => props.onDismiss(t.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
