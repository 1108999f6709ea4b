import { type FormEvent, useEffect, useRef, useState } from 'react';
import { api, type User } from '../api';

/** First run (create the admin) or sign-in. */
export function AuthScreen(props: { mode: 'setup' | 'login'; onSignedIn: (user: User) => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const first = useRef<HTMLInputElement>(null);
  const setup = props.mode === 'setup';

  useEffect(() => first.current?.focus(), []);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError('');
    if (setup && password !== repeat) {
      setError('The two passwords differ.');
      return;
    }
    setBusy(true);
    try {
      props.onSignedIn(setup ? await api.setup(username, password) : await api.login(username, password));
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="auth">
      <form className="auth-card" onSubmit={submit} aria-describedby="auth-intro">
        <h1>hearth</h1>
        <p id="auth-intro">
          {setup
            ? 'Welcome. Create the admin account: it manages users and models. Conversations are kept on Atlas.'
            : 'Sign in to your conversations.'}
        </p>
        <label>
          User name
          <input
            ref={first}
            name="username"
            autoComplete="username"
            value={username}
            onChange={(e) => setUsername(e.target.value)}
            required
          />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete={setup ? 'new-password' : 'current-password'}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            required
            minLength={setup ? 8 : undefined}
          />
        </label>
        {setup && (
          <label>
            Password again
            <input
              name="repeat"
              type="password"
              autoComplete="new-password"
              value={repeat}
              onChange={(e) => setRepeat(e.target.value)}
              required
            />
          </label>
        )}
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {setup ? 'Create admin account' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
