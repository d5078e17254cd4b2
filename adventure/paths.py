"""Where the project's own files live, independent of the current directory."""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIGS_DIR = REPO_ROOT / "configs"
SAMPLE_DIR = REPO_ROOT / "data" / "sample"
SAMPLE_STORIES_DIR = SAMPLE_DIR / "stories"
SAMPLE_PARALLEL_DIR = SAMPLE_DIR / "parallel"
# Real third-party artifacts shared beside the checkout (read-only); absent on some machines.
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


def artifacts_dir(cfg_or_path) -> Path:
    """Resolve `paths.artifacts` from a Hydra config (or a plain path) to an absolute Path."""
    value = cfg_or_path
    if hasattr(cfg_or_path, "paths"):
        value = cfg_or_path.paths.artifacts
    return Path(str(value)).expanduser().resolve()
