// hearth bench: a load generator for Ollama- and OpenAI-compatible endpoints, and its report.
export { formatComparison, formatFigure, formatReport, readReport } from './report.js';
export {
  BENCH_REPORT_FORMAT,
  type BenchOptions,
  type BenchProgress,
  type BenchReport,
  type LevelResult,
  runBench,
  summarizeLevel,
} from './runner.js';
export { type Distribution, distribution, median, percentile } from './stats.js';
export {
  type BenchApi,
  type BenchMode,
  type BenchTarget,
  checkTarget,
  endpointPath,
  endpointUrl,
  type RequestSample,
  sendRequest,
} from './target.js';
export {
  type BenchMessage,
  type BenchPrompt,
  DatasetWorkload,
  FixedWorkload,
  type Workload,
  type WorkloadDescription,
} from './workload.js';
