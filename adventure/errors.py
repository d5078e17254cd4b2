"""User-facing errors: raised for bad input, reported by every stage as one clear line (no traceback)."""


class GamioError(Exception):
    """A problem the user can fix (missing file, bad option, model not available...).

    Stages raise it with a message that names the problem and, where possible, how to fix it.
    """


class ModelNotAvailable(GamioError):
    """A model spec names a hub id that is not in the local cache and cannot be downloaded."""
