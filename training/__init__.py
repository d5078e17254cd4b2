"""Training stage: fine-tune ruGPT3 (or train the tiny model) on the story dataset (`python -m training`)."""
