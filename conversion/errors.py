"""Errors of the conversion stage; all are GamioErrors, so `python -m conversion` reports them as one line."""
from adventure.errors import GamioError


class CheckpointError(GamioError):
    """The TensorFlow checkpoint is missing, truncated, corrupt, or in a form this reader does not handle."""


class MappingError(GamioError):
    """hparams.json or the checkpoint's variables do not describe a GPT-2 model (missing or mis-shaped weight)."""


class VerificationError(GamioError):
    """The converted model disagrees with the independent numpy forward pass."""
