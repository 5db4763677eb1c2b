"""Points: ingest of batches, chunked storage, series reads, downsampling, compaction."""
