"""Model specs: one resolver for `tiny`, `tiny-untrained`, a local folder, or a hub id.

    tiny            <artifacts>/models/tiny if it has been trained, else a freshly built untrained tiny
                    model (with a warning) cached in <artifacts>/models/tiny-untrained
    tiny-untrained  the untrained initialisation of the tiny model (the floor in eval reports): once the tiny
                    model is trained, its own tokenizer and architecture with the training seed's initial
                    weights (its starting point); before, the same shape on a tokenizer of the embedded corpus
    /a/folder       any Hugging Face model folder (config.json inside)
    owner/name      a hub id, e.g. sberbank-ai/rugpt3small_based_on_gpt2 (from the local cache when offline)
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from adventure.errors import GamioError, ModelNotAvailable

log = logging.getLogger(__name__)

TINY = "tiny"
TINY_UNTRAINED = "tiny-untrained"


@dataclass(frozen=True)
class ModelSource:
    spec: str  # what the user wrote
    kind: str  # "tiny" | "tiny-untrained" | "dir" | "hub"
    location: str  # folder path, or hub id

    @property
    def is_local(self) -> bool:
        return self.kind != "hub"


def models_dir(artifacts: Path) -> Path:
    return Path(artifacts) / "models"


def looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or os.sep in spec.rstrip(os.sep) and Path(spec).expanduser().exists()


def resolve_model_spec(spec: str, artifacts: Path) -> ModelSource:
    """Turn a spec into a concrete location; building the untrained tiny model if needed."""
    spec = str(spec).strip()
    if not spec:
        raise GamioError("empty model spec; use tiny, a local folder or a hub id")
    if spec in (TINY, TINY_UNTRAINED):
        trained = models_dir(artifacts) / TINY
        if spec == TINY and (trained / "config.json").is_file():
            return ModelSource(spec, TINY, str(trained))
        untrained = models_dir(artifacts) / TINY_UNTRAINED
        build_floor(untrained, trained if (trained / "config.json").is_file() else None)
        if spec == TINY:
            log.warning("no trained tiny model in %s: using the untrained one (run `python -m training`)",
                        trained)
        return ModelSource(spec, TINY_UNTRAINED, str(untrained))
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise GamioError(f"{path} is a folder but not a Hugging Face model folder (no config.json)")
        return ModelSource(spec, "dir", str(path.resolve()))
    if looks_like_path(spec) or spec.count("/") > 1:
        raise GamioError(f"model folder not found: {spec}")
    return ModelSource(spec, "hub", spec)


FLOOR_KEY_FILE = "gamio_floor_key.txt"


def build_floor(untrained: Path, trained: Path | None) -> Path:
    """<artifacts>/models/tiny-untrained, (re)built when what it is derived from changed: the trained model's
    tokenizer and config (its floor is its own starting point: same tokenizer, same architecture, the initial
    weights of training's seed), or, with no trained model yet, the embedded corpus."""
    import adventure.story_format
    import adventure.tiny
    from adventure.build_cache import build_key, cached_folder
    from adventure.paths import SAMPLE_STORIES_DIR

    if trained is None:
        key = build_key("tiny-untrained", SAMPLE_STORIES_DIR.glob("*.json"),
                        [adventure.tiny, adventure.story_format], {})
        build = adventure.tiny.build_tiny_model_folder
    else:
        files = [p for p in trained.iterdir() if p.name in adventure.tiny.FLOOR_SOURCE_FILES]
        key = build_key("tiny-untrained-of-trained", files, [adventure.tiny.build_floor_of], {})
        build = lambda out: adventure.tiny.build_floor_of(trained, out)  # noqa: E731
    marker = untrained / FLOOR_KEY_FILE
    if not (marker.is_file() and marker.read_text().strip() == key and (untrained / "config.json").is_file()):
        def keyed_build(out: Path) -> Path:
            build(out)
            (Path(out) / FLOOR_KEY_FILE).write_text(key + "\n")
            return Path(out)

        cached_folder(untrained, key, keyed_build)
    return untrained


def model_not_available(hub_id: str, exc: Exception, hint: str) -> ModelNotAvailable:
    """The one message for a hub id that is neither cached nor downloadable; `hint` names the local-folder option."""
    return ModelNotAvailable(
        f"model {hub_id!r} is not in the local Hugging Face cache and could not be downloaded "
        f"({type(exc).__name__}). On a machine with internet run `hf download {hub_id} --local-dir <folder>`, "
        f"then pass the folder instead: {hint}")


def model_folder_hint(option: str, hub_id: str) -> str:
    return f"{option}=/path/to/{hub_id.split('/')[-1]}"


def check_hub_available(hub_id: str, hint: str) -> None:
    """Fetch only the config of a hub id (from the cache when offline): a missing model fails now, not mid-run."""
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(hub_id)
    except (OSError, ValueError) as exc:
        raise model_not_available(hub_id, exc, hint) from None


def load_tokenizer(source: ModelSource, option: str = "model"):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source.location)
    except OSError as exc:
        if source.kind == "hub":
            raise model_not_available(source.location, exc, model_folder_hint(option, source.location)) from None
        raise GamioError(f"cannot load the tokenizer from {source.location}: {exc}") from None
    if tokenizer.pad_token is None:  # GPT-2 family: pad with EOS, never a new token the model never saw
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(spec: str, artifacts: Path, *, device: str = "cpu", dtype=None, option: str = "model"):
    """(model, tokenizer, source) for a causal LM spec, in eval mode on `device`."""
    from transformers import AutoModelForCausalLM

    source = resolve_model_spec(spec, artifacts)
    tokenizer = load_tokenizer(source, option)
    try:
        model = AutoModelForCausalLM.from_pretrained(source.location, dtype=dtype)
    except OSError as exc:
        if source.kind == "hub":
            raise model_not_available(source.location, exc, model_folder_hint(option, source.location)) from None
        raise GamioError(f"cannot load the model from {source.location}: {exc}") from None
    model.to(device).eval()
    return model, tokenizer, source


def tokenizer_and_context(spec: str, artifacts: Path, option: str = "model"):
    """(source, tokenizer, context length) of a model spec without loading its weights: for engines whose model
    runs elsewhere (a remote server, vLLM), gamio only needs the tokenizer and the config for prompt budgets."""
    from transformers import AutoConfig

    source = resolve_model_spec(spec, artifacts)
    tokenizer = load_tokenizer(source, option)
    try:
        config = AutoConfig.from_pretrained(source.location)
    except OSError as exc:
        raise GamioError(f"cannot read the model config of {source.location}: {exc}") from None
    return source, tokenizer, context_length(config)


def context_length(model) -> int:
    """Tokens a model (or its config) can attend to."""
    config = getattr(model, "config", model)
    for key in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    raise GamioError(f"cannot tell the context length of {type(config).__name__}")
