"""Seeing what a run learned and forgot: plots, reports and experiment-tracker glue."""
