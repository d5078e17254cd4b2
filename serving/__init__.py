"""Serving stage: the queued game server and its Russian play page (`python -m serving`)."""
