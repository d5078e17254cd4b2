"""Shared domain of gamio: story trees, the `> action` text format, prompt budget, output cleanup,
generation settings, model specs and the tiny offline models. Every stage imports from here so that
training text and served prompts can never drift apart."""
