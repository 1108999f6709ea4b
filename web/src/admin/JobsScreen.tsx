// Batch jobs: the list with live progress; one job's log (followed while it runs), cancel, retry, and
// its results (the manifest and the first lines of output, read from Atlas).
import { useCallback, useEffect, useRef, useState } from 'react';
import { admin, type Job, type JobEvent, when } from './client';
import { usePoll } from './poll';

const FINISHED = ['succeeded', 'failed', 'cancelled'];

export function JobsScreen() {
  const [jobs, setJobs] = useState<Job[] | null>(null);
  const [error, setError] = useState('');
  const [open, setOpen] = useState<string | null>(null);

  const refresh = useCallback(async () => setJobs(await admin.jobs()), []);
  const live = jobs?.some((j) => !FINISHED.includes(j.state)) ?? false;
  usePoll(refresh, live ? 1000 : 5000, setError);

  return (
    <section aria-labelledby="jobs-title" className="admin-card">
      <h2 id="jobs-title">Batch jobs</h2>
      <p className="muted">
        Jobs are submitted with <code>hearth jobs submit</code> or <code>POST /api/jobs</code>; they run on any node
        sharing Atlas.
      </p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {jobs === null ? (
        <p className="muted">Loading…</p>
      ) : jobs.length === 0 ? (
        <p className="muted">No jobs yet.</p>
      ) : (
        <ul className="admin-list" aria-label="Jobs">
          {jobs.map((j) => (
            <li key={j.id} className="admin-item column">
              <JobSummary job={j} />
              <div className="item-actions">
                <button
                  type="button"
                  aria-expanded={open === j.id}
                  onClick={() => setOpen(open === j.id ? null : j.id)}
                >
                  {open === j.id ? 'Hide details' : 'Details'}
                </button>
              </div>
              {open === j.id && <JobDetails job={j} onChanged={refresh} onError={setError} />}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function JobSummary(props: { job: Job }) {
  const j = props.job;
  const p = j.progress;
  return (
    <div className="item-main">
      <div className="pull-head">
        <strong className="break">
          {j.type === 'batch' ? j.input : `${j.type}: ${j.input}`} → {j.output}
        </strong>
        <span className={`state ${j.state}`}>{j.state}</span>
      </div>
      <progress
        aria-label={`Progress of job ${j.id}`}
        max={p.records_total ?? undefined}
        value={p.records_total ? p.records_done : undefined}
      />
      <span className="muted job-figures">
        {p.records_done} of {p.records_total ?? '?'} records · {p.records_failed} failed · model {j.model} · attempt{' '}
        {j.attempts} · {when(j.created_at)}
      </span>
      {j.error && <span className="muted">{j.error}</span>}
    </div>
  );
}

function JobDetails(props: { job: Job; onChanged: () => Promise<void>; onError: (text: string) => void }) {
  const j = props.job;
  const [events, setEvents] = useState<JobEvent[]>([]);
  const [results, setResults] = useState<{ preview: string[]; previewFile: string; output: string } | null>(null);
  const last = useRef(0);
  const finished = FINISHED.includes(j.state);

  const follow = useCallback(async () => {
    const more = await admin.jobLogs(j.id, last.current);
    if (more.length) {
      last.current = more.at(-1)!.id;
      setEvents((all) => [...all, ...more]);
    }
  }, [j.id]);
  usePoll(follow, finished ? 60_000 : 1000, props.onError);
  useEffect(() => {
    // The job ended: read the log's last lines once more.
    if (finished) void follow().catch(() => undefined);
  }, [finished, follow]);

  const act = async (what: () => Promise<unknown>) => {
    try {
      await what();
      await props.onChanged();
    } catch (err) {
      props.onError((err as Error).message);
    }
  };

  return (
    <div className="job-details">
      <div className="item-actions">
        {!finished && (
          <button type="button" onClick={() => void act(() => admin.cancelJob(j.id))}>
            Cancel job
          </button>
        )}
        {finished && j.state !== 'succeeded' && (
          <button type="button" onClick={() => void act(() => admin.retryJob(j.id))}>
            Retry job
          </button>
        )}
        {j.state === 'succeeded' && (
          <button type="button" onClick={() => void act(async () => setResults(await admin.jobResults(j.id)))}>
            Open results
          </button>
        )}
      </div>
      <h3>Log</h3>
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must be reachable by keyboard */}
      <ol className="job-log" aria-label={`Log of job ${j.id}`} tabIndex={0}>
        {events.map((e) => (
          <li key={e.id} className={e.level}>
            <time dateTime={e.at}>{new Date(e.at).toLocaleTimeString()}</time> {e.message}
          </li>
        ))}
      </ol>
      {results && (
        <div className="job-results">
          <h3>Results</h3>
          <p className="muted">
            On Atlas under <code>{results.output}/</code>; the first lines of <code>{results.previewFile}</code>:
          </p>
          {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must be reachable by keyboard */}
          <section className="scroll-box" aria-label="Result lines" tabIndex={0}>
            <pre>{results.preview.join('\n')}</pre>
          </section>
        </div>
      )}
    </div>
  );
}
