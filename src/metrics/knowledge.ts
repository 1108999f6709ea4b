import { Counter, Histogram, type Registry } from 'prom-client';

/** Knowledge bases (src/knowledge): what was ingested, and how long retrieval takes. */
export class KnowledgeMetrics {
  private readonly documents: Counter;
  private readonly chunks: Counter;
  private readonly query: Histogram;

  constructor(registry: Registry) {
    const registers = [registry];
    this.documents = new Counter({
      name: 'hearth_knowledge_documents_ingested_total',
      help: 'Documents ingested into knowledge bases by this node (committed)',
      registers,
    });
    this.chunks = new Counter({
      name: 'hearth_knowledge_chunks_ingested_total',
      help: 'Chunks stored in knowledge bases by this node (committed)',
      registers,
    });
    this.query = new Histogram({
      name: 'hearth_knowledge_query_duration_seconds',
      help: 'Hybrid retrieval time (full-text + vector + fusion, the query embedding included)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
  }

  ingested(documents: number, chunks: number): void {
    this.documents.inc(documents);
    this.chunks.inc(chunks);
  }

  queried(seconds: number): void {
    this.query.observe(seconds);
  }
}
