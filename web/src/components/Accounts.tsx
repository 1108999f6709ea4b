import { type FormEvent, useCallback, useEffect, useState } from 'react';
import { api, type ModelInfo, type Role, type Theme, type User } from '../api';
import { ConfirmDialog, Dialog, PasswordDialog } from './Dialog';
import type { Toast } from './Toasts';

/** A date (and time, when it is today) in the reader's locale. */
export function shortDate(iso: string): string {
  const at = new Date(iso);
  const today = new Date().toDateString() === at.toDateString();
  return today
    ? at.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
    : at.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}

/** Admins: accounts, roles, password resets. */
export function UsersDialog(props: { me: User; onClose: () => void }) {
  const [users, setUsers] = useState<User[]>([]);
  const [error, setError] = useState('');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<Role>('user');
  // The person whose password is being reset, or who is about to be deleted.
  const [resetting, setResetting] = useState<User | null>(null);
  const [deleting, setDeleting] = useState<User | null>(null);

  const load = useCallback(() => {
    api
      .users()
      .then(setUsers)
      .catch((err: Error) => setError(err.message));
  }, []);
  useEffect(load, [load]);

  const act = async (fn: () => Promise<unknown>) => {
    setError('');
    try {
      await fn();
      load();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  const add = (e: FormEvent) => {
    e.preventDefault();
    void act(async () => {
      await api.createUser({ username, password, role });
      setUsername('');
      setPassword('');
    });
  };

  return (
    <Dialog title="Users" onClose={props.onClose} wide>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <table className="users">
        <thead>
          <tr>
            <th scope="col">User</th>
            <th scope="col">Role</th>
            <th scope="col">Created</th>
            <th scope="col">Last seen</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {users.map((u) => (
            <tr key={u.id}>
              <td data-label="User">{u.username}</td>
              <td data-label="Role">
                <select
                  aria-label={`Role of ${u.username}`}
                  value={u.role}
                  onChange={(e) => void act(() => api.updateUser(u.id, { role: e.target.value as Role }))}
                >
                  <option value="user">user</option>
                  <option value="admin">admin</option>
                </select>
              </td>
              <td data-label="Created">
                <time dateTime={u.createdAt}>{shortDate(u.createdAt)}</time>
              </td>
              <td data-label="Last seen">
                {u.lastSeenAt ? <time dateTime={u.lastSeenAt}>{shortDate(u.lastSeenAt)}</time> : 'never'}
              </td>
              <td className="row-buttons">
                <button type="button" onClick={() => setResetting(u)}>
                  Reset password
                </button>
                {u.id !== props.me.id && (
                  <button type="button" onClick={() => setDeleting(u)}>
                    Delete
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {resetting && (
        <PasswordDialog
          title={`New password for ${resetting.username}`}
          onClose={() => setResetting(null)}
          onSubmit={async (password) => {
            await api.updateUser(resetting.id, { password });
            load();
          }}
        />
      )}
      {deleting && (
        <ConfirmDialog
          title={`Delete ${deleting.username}?`}
          message={`${deleting.username}'s account, chats and presets are deleted for good. This cannot be undone.`}
          confirm={`Delete ${deleting.username}`}
          onClose={() => setDeleting(null)}
          onConfirm={() => void act(() => api.deleteUser(deleting.id))}
        />
      )}
      <form className="add-user" onSubmit={add}>
        <h3>Add a user</h3>
        <label>
          User name
          <input value={username} onChange={(e) => setUsername(e.target.value)} required autoComplete="off" />
        </label>
        <label>
          Password
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
          Role
          <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
            <option value="user">user</option>
            <option value="admin">admin</option>
          </select>
        </label>
        <button type="submit" className="primary">
          Add user
        </button>
      </form>
    </Dialog>
  );
}

/** Your own account: default model and password. */
export function AccountDialog(props: {
  user: User;
  models: ModelInfo[];
  onUser: (user: User) => void;
  onClose: () => void;
  toast: (t: Omit<Toast, 'id'>) => void;
}) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [error, setError] = useState('');

  const changePassword = async (e: FormEvent) => {
    e.preventDefault();
    setError('');
    try {
      props.onUser(await api.updateMe({ currentPassword: current, newPassword: next }));
      setCurrent('');
      setNext('');
      props.toast({ text: 'Password changed. Other sessions were signed out.' });
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <Dialog title="Account" onClose={props.onClose}>
      <label>
        Default model for new chats
        <select
          value={props.user.defaultModel ?? ''}
          onChange={async (e) => {
            try {
              props.onUser(await api.updateMe({ defaultModel: e.target.value || null }));
            } catch (err) {
              setError((err as Error).message);
            }
          }}
        >
          <option value="">none</option>
          {props.models.map((m) => (
            <option key={m.name} value={m.name}>
              {m.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        Theme
        <select
          value={props.user.theme}
          onChange={async (e) => {
            try {
              props.onUser(await api.updateMe({ theme: e.target.value as Theme }));
            } catch (err) {
              setError((err as Error).message);
            }
          }}
        >
          <option value="system">System (as the device is set)</option>
          <option value="light">Light</option>
          <option value="dark">Dark</option>
        </select>
      </label>
      <form onSubmit={changePassword} className="password-form">
        <h3>Change password</h3>
        <label>
          Current password
          <input
            type="password"
            value={current}
            onChange={(e) => setCurrent(e.target.value)}
            required
            autoComplete="current-password"
          />
        </label>
        <label>
          New password
          <input
            type="password"
            value={next}
            onChange={(e) => setNext(e.target.value)}
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
        <button type="submit" className="primary">
          Change password
        </button>
      </form>
    </Dialog>
  );
}
