"""How fast the data pipeline batches."""
