"""The eval config: every key, its default and its meaning (configs/eval.yaml lists only the groups).

    python -m eval [models=...] [eval_models=auto|rugpt3|seed_pipeline] [report_name=<name>] [paths.artifacts=<dir>]
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, List, Optional

from omegaconf import MISSING

from adventure.config import PathsConfig, TranslationConfig, setting
from adventure.generation import GenerationSettings, preset_names


def _folder_name_problem(name: str) -> str | None:
    return None if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name) else "must be a plain folder name"


def _presets_problem(names) -> str | None:
    unknown = [n for n in names if n not in preset_names()]
    return f"unknown preset(s) {unknown}; choose from {preset_names()}" if unknown else None


def _export_problem(value) -> str | None:
    return None if value in (None, "lm_eval") else "must be lm_eval or null"


@dataclass
class MaxSamplesConfig:
    test: Optional[int] = setting(48, ge=1, help="test-split samples scored for likelihood (seeded subset; null: all)")
    validation: Optional[int] = setting(48, ge=1, help="validation-split samples scored for likelihood, on which "
                                                       "the recommended model is chosen (seeded subset; null: all)")
    parallel: Optional[int] = setting(64, ge=1, help="parallel sentence pairs per translator (null: all)")


@dataclass
class PlaythroughConfig:
    size: int = setting(30, ge=1, help="mid-game prompts from the test stories (>= 30 for a real comparison)")
    max_turns: int = setting(10, ge=0, help="history turns a prompt keeps (the seed fed the last 10 actions)")
    steering: Optional[str] = setting(None, help="a JSON file with the fields of PATCH /api/games/<id> (memory, "
                                                 "authors_note, world_info, banned_words, ...) applied to every "
                                                 "play-through prompt, so a report measures steering too")


@dataclass
class LikelihoodConfig:
    batch_size: int = setting(8, ge=1)
    max_chars: Optional[int] = setting(None, ge=1, help="cut every gold reply to at most this many characters "
                                                        "before scoring (null: only to what every Russian-side "
                                                        "model's context holds; see eval/likelihood.py)")
    action_following: bool = setting(True, help="also score each gold reply after another sample's action "
                                                "(results.test.<model>.action_following; doubles test scoring)")


@dataclass
class BootstrapConfig:
    resamples: int = setting(1000, ge=10, le=100000, help="story-level bootstrap resamples behind every interval "
                                                          "and paired comparison (eval/bootstrap.py)")


@dataclass
class EvalConfig:
    paths: PathsConfig = MISSING
    generation: GenerationSettings = MISSING  # the main preset; the report's recommendation breaks ties with it
    translation: TranslationConfig = MISSING  # English models: ru->en in, en->ru out (unless a model names its own)
    engine: Any = MISSING  # how every model generates (configs/engine/)
    models: Any = setting("auto", help="auto | [spec, ...] | [{name, spec, language, translator_in, "
                                       "translator_out}, ...] (see eval/model_set.py); eval_models=<name> sets it")
    report_name: str = setting("default", check=_folder_name_problem,
                               help="-> <paths.artifacts>/reports/<report_name>/")
    dataset: str = setting("${paths.artifacts}/data/dataset", help="the scraping stage's DatasetDict (test split)")
    seed: int = setting(1234)
    extra_generation: List[str] = setting(["gamio_sample", "greedy"], check=_presets_problem,
                                          help="more presets generated in the same report, side by side with "
                                               "the main one (the report names each model's best preset)")
    max_samples: MaxSamplesConfig = field(default_factory=MaxSamplesConfig)
    playthrough: PlaythroughConfig = field(default_factory=PlaythroughConfig)
    samples_in_report: int = setting(3, ge=0, help="play-through prompts whose replies report.md shows")
    likelihood: LikelihoodConfig = field(default_factory=LikelihoodConfig)
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    export: Optional[str] = setting(None, check=_export_problem,
                                    help="lm_eval: also write the test set as an lm-evaluation-harness task in "
                                         "<report dir>/lm_eval/ (eval/lm_eval_export.py)")
    preferences: Optional[str] = setting("auto", help="the serving database whose blind arena votes the report "
                                                      "counts; auto: <paths.artifacts>/serving/gamio.sqlite when it "
                                                      "exists; null: none")
