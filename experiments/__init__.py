"""Scripts that answer questions about the toolkit, each beside its recorded result.

Run them as modules from the repository root, e.g. ``python -m experiments.benchmarks.speed``;
``experiments/README.md`` lists the questions, the scripts and what they recorded.
"""
