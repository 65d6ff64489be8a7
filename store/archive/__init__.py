"""The archive of folded history: Parquet segments per partition, a manifest in Redis, and the reader that joins
the archive and the customer streams into one log (README: Archive)."""
