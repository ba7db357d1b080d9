"""Data lineage: which task run's output fed which task run (seed section 6)."""
