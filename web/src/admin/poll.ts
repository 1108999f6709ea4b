import { useEffect } from 'react';

/** Calls `fn` now and every `ms` while the page is visible; `fn` errors go to `onError`. */
export function usePoll(fn: () => Promise<void>, ms: number, onError: (message: string) => void): void {
  useEffect(() => {
    let stopped = false;
    let timer = 0;
    const tick = async () => {
      if (!document.hidden) {
        try {
          await fn();
          onError('');
        } catch (err) {
          onError((err as Error).message);
        }
      }
      if (!stopped) timer = window.setTimeout(tick, ms);
    };
    void tick();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [fn, ms, onError]);
}
