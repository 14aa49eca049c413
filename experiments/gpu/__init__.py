"""Scripts prepared for a lent GPU (each also runs on a CPU with --smoke)."""
