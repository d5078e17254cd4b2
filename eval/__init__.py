"""Eval stage: compare models on evaluation sets in a reproducible report (`python -m eval`)."""
