// Batch jobs: datasets from Atlas in, results to Atlas out, exactly once, across nodes (docs/jobs.md).

export type { SqlRunner } from '../atlas/db/index.js';
export { ERRORS_FILE, MANIFEST_FILE, shardFileName } from './commit.js';
export { type DatasetRecord, locateDataset, planDataset, readShard, sampleDataset } from './datasets/dataset.js';
export type { EngineFaultPlan } from './faults.js';
export { QUEUE_SCHEMA } from './queue.js';
export { JobFailure } from './record-processor.js';
export { type JobPage, JobService, type JobServiceOptions, type JobSettings, type PlannedJob } from './service.js';
export {
  type BatchRequest,
  type BatchSpec,
  batchRequestSchema,
  FINISHED_STATES,
  JOB_STATES,
  type JobState,
  LIVE_STATES,
} from './spec.js';
export type { ErrorRow, JobCore, JobEvent, JobView, ShardWork } from './store.js';
export type { ShardHandler, ShardOutcome } from './workers.js';
