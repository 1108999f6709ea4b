import type { SqlRunner } from '../atlas/db/index.js';
import { HearthError } from '../errors.js';

export interface SavedWorkflow {
  name: string;
  workflow: unknown;
  created_at: Date;
  updated_at: Date;
}

const checkName = (name: string) => {
  if (name.trim() === '' || name.length > 200)
    throw new HearthError('WORKFLOW_INVALID', 'a workflow name is 1 to 200 characters');
};

/** Saved workflows (the editor's documents, ComfyUI's /userdata workflows): table `workflows`, by name. */
export const savedWorkflows = {
  list(q: SqlRunner): Promise<Array<{ name: string; updated_at: Date }>> {
    return q.query(`select name, updated_at from workflows order by name`);
  },

  async get(q: SqlRunner, name: string): Promise<SavedWorkflow> {
    const [row] = await q.query<SavedWorkflow>(`select * from workflows where name = $1`, [name]);
    if (!row)
      throw new HearthError(
        'WORKFLOW_NOT_FOUND',
        `no saved workflow named ${JSON.stringify(name)}: GET /api/workflows lists them`,
      );
    return row;
  },

  async put(q: SqlRunner, name: string, workflow: unknown): Promise<void> {
    checkName(name);
    await q.query(
      `insert into workflows (name, workflow) values ($1, $2)
       on conflict (name) do update set workflow = excluded.workflow, updated_at = now()`,
      [name, JSON.stringify(workflow)],
    );
  },

  /** Renames in one statement: the old name is gone exactly when the new one exists. */
  async rename(q: SqlRunner, name: string, to: string): Promise<void> {
    checkName(to);
    if (to === name) return void (await savedWorkflows.get(q, name));
    const taken = await q.query(`select 1 from workflows where name = $1`, [to]);
    if (taken.length > 0)
      throw new HearthError('WORKFLOW_INVALID', `a workflow named ${JSON.stringify(to)} exists: choose another name`, {
        status: 409,
      });
    const rows = await q.query(`update workflows set name = $2, updated_at = now() where name = $1 returning name`, [
      name,
      to,
    ]);
    if (rows.length === 0)
      throw new HearthError('WORKFLOW_NOT_FOUND', `no saved workflow named ${JSON.stringify(name)}`);
  },

  async delete(q: SqlRunner, name: string): Promise<void> {
    const rows = await q.query(`delete from workflows where name = $1 returning name`, [name]);
    if (rows.length === 0)
      throw new HearthError('WORKFLOW_NOT_FOUND', `no saved workflow named ${JSON.stringify(name)}`);
  },
};
