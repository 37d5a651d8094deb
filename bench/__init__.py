"""Benchmarks: `dunning run` end to end against hand-rolled baselines and the machine's SMTP limit."""
