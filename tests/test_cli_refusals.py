"""Every stage answers a wrong value with one `error:` line naming the key and exit status 2: never a traceback,
never a silent fallback, and no output folder left behind (model, report, out_dir, run dir or database).

Each case runs the way `python -m <stage>` does (compose on the schema, then the stage function under
`adventure.cli.run_stage`), in-process because a subprocess per case adds only start-up time; one case per stage
also runs as a real subprocess for the exit status, the stderr shape and Hydra's part. Hydra's run dir
(`<paths.artifacts>/hydra/<stage>/<time>/`) is the refused run's log, holding its config and the error line:
it is not counted as an output."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from adventure.cli import fail, run_stage
from adventure.config import ConfigError, compose
from adventure.paths import REPO_ROOT

OUTSIDE = "{outside}"  # replaced by a folder beside the artifacts (an existing folder, or a path inside it)
ENGLISH_TREE = ('{"tree_id": "en", "first_story_block": "You stand at a gate.", "action_results": '
                '[{"action": "open it", "result": "It creaks open.", "action_results": []}]}')

CASES = [  # (stage, overrides, the key the error line must name)
    ("serving", ["queue.max_batch=abc"], "queue.max_batch"),
    ("serving", ["queue.max_batch=-1"], "queue.max_batch"),
    ("serving", ["queue.max_size=0"], "queue.max_size"),
    ("serving", ["queue.max_bacth=8"], "queue.max_bacth"),
    ("serving", ["port=abc"], "port"),
    ("serving", ["port=-1"], "port"),
    ("serving", ["port=99999"], "port"),
    ("serving", ["threads=0"], "threads"),
    ("serving", ["host=999.1.1.1"], "host"),
    ("serving", ["host=bad_host!"], "host=bad_host!"),
    ("serving", [f"db={OUTSIDE}"], "db"),
    ("serving", [f"db={OUTSIDE}/a-file/gamio.sqlite"], "db"),
    ("serving", ["model=nonexistent"], "model"),
    ("serving", ["language=fr"], "language"),
    ("serving", ["server=gunicorn"], "server"),
    ("serving", ["engine=bogus"], "engine"),
    ("serving", ["generation.max_new_tokens=0"], "generation.max_new_tokens"),
    ("serving", ["limits.games_per_minute=0"], "limits.games_per_minute"),
    ("serving", ["limits.turns_per_minute=abc"], "limits.turns_per_minute"),
    ("serving", ["limits.max_queued_per_client=0"], "limits.max_queued_per_client"),
    ("serving", ["limits.max_long_polls=64"], "limits.max_long_polls"),  # not below threads=64
    ("serving", ["limits.max_long_polls=-1"], "limits.max_long_polls"),
    ("serving", ["limits.trusted_proxies=[10.0.0.1,proxy]"], "limits.trusted_proxies"),
    ("serving", ["storage.checkpoint_interval_s=0"], "storage.checkpoint_interval_s"),
    ("serving", ["games.expire_after_days=-1"], "games.expire_after_days"),
    ("serving", ["games.expire_after_days=soon"], "games.expire_after_days"),
    ("training", ["train.max_steps=abc"], "train.max_steps"),
    ("training", ["train.max_steps=-5"], "train.max_steps"),
    ("training", ["train.batch_size=0"], "train.batch_size"),
    ("training", ["train.learning_rate=abc"], "train.learning_rate"),
    ("training", ["train.precision=fp8"], "train.precision"),
    ("training", ["loss_on=prompt"], "loss_on"),
    ("training", ["model=nonexistent"], "model"),
    ("training", ["model=rugpt3small"], "model=rugpt3small"),  # the hub model is not available offline
    ("training", ["train.block_size=4096"], "train.block_size"),
    ("scraping", ["dataset.ratios.train=abc"], "dataset.ratios.train"),
    ("scraping", ["dataset.ratios.train=-1"], "dataset.ratios"),
    ("scraping", ["dataset.ratios.bogus=0.5"], "dataset.ratios.bogus"),
    ("scraping", ["source=bogus"], "source"),
    ("scraping", ["translator=bogus"], "translator"),
    ("scraping", ["source=trees", f"source.path={OUTSIDE}/missing"], "source.path"),
    ("scraping", ["source=cys"], "source.story_ids"),
    ("scraping", ["source.delay=-1"], "source.delay"),
    ("scraping", ["source=trees", f"source.path={OUTSIDE}/english", "translator=opus_mt",
                  "translator.model=nobody/no-model"], "translator.model=nobody/no-model"),
    ("conversion", ["verify=maybe"], "verify"),
    ("conversion", ["max_shard_size=-1"], "max_shard_size"),
    ("conversion", ["max_shard_size=abc"], "max_shard_size"),
    ("conversion", ["dtype=int8"], "dtype"),
    ("conversion", [], "checkpoint_dir"),
    ("conversion", [f"checkpoint_dir={OUTSIDE}/missing"], "checkpoint_dir"),
    ("conversion", ["generation=bogus"], "generation=bogus"),
    ("eval", ["max_samples.test=-1"], "max_samples.test"),
    ("eval", ["eval_models=bogus"], "eval_models"),
    ("eval", ["extra_generation=[bogus]"], "extra_generation"),
    ("eval", ["report_name=../elsewhere"], "report_name"),
    ("eval", ["playthrough.size=0"], "playthrough.size"),
    ("eval", ["export=csv"], "export"),
    ("eval", ["bootstrap.resamples=3"], "bootstrap.resamples"),
    ("eval", ["likelihood.max_chars=0"], "likelihood.max_chars"),
    ("eval", ["max_samples.validation=0"], "max_samples.validation"),
    ("eval", [f"dataset={OUTSIDE}/missing"], "dataset"),
]

# One per stage through `python -m <stage>`: stage errors after Hydra started, and composition errors.
SUBPROCESS_CASES = [CASES[12], CASES[28], CASES[40], CASES[44], CASES[53]]


def stage_entry(stage: str):
    """(schema, stage function) exactly as the stage's __main__ passes them to adventure.cli.stage_main."""
    if stage == "serving":
        from serving.config import ServingConfig
        from serving.server import serve
        return ServingConfig, serve
    if stage == "training":
        from training.config import TrainingConfig
        from training.train import train
        return TrainingConfig, train
    if stage == "scraping":
        from scraping.config import ScrapingConfig
        from scraping.stage import run
        return ScrapingConfig, run
    if stage == "conversion":
        from conversion.config import ConversionConfig
        from conversion.convert import convert
        return ConversionConfig, convert
    from eval.config import EvalConfig
    from eval.stage import run as run_eval
    return EvalConfig, run_eval


def outputs(artifacts: Path) -> list[str]:
    """Everything a run left in the artifacts folder, Hydra's run log excepted."""
    return sorted(str(p.relative_to(artifacts)) for p in artifacts.rglob("*") if p.relative_to(artifacts).parts[0] != "hydra")


def prepare(tmp_path: Path, overrides: list[str]) -> tuple[Path, list[str]]:
    artifacts, outside = tmp_path / "artifacts", tmp_path / "outside"
    artifacts.mkdir()
    outside.mkdir()
    (outside / "a-file").write_text("not a folder")
    (outside / "english").mkdir()
    (outside / "english" / "gate.json").write_text(ENGLISH_TREE)  # source.language=en: it needs translating
    return artifacts, [o.replace(OUTSIDE, str(outside)) for o in overrides]


def check_line(stderr: str, key: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and key in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("stage, overrides, key", CASES, ids=[f"{c[0]}:{' '.join(c[1]) or 'nothing'}" for c in CASES])
def test_bad_value_is_refused_in_one_line(stage, overrides, key, tmp_path, capsys, monkeypatch):
    import serving.server

    # A case the stage accepted would start serving and never return: fail it instead.
    monkeypatch.setattr(serving.server, "create_waitress_server", lambda *a, **k: pytest.fail("not refused"))
    artifacts, overrides = prepare(tmp_path, overrides)
    schema, fn = stage_entry(stage)
    with pytest.raises(SystemExit) as exited:
        try:
            cfg = compose(stage, [f"paths.artifacts={artifacts}", *overrides], schema)
        except ConfigError as exc:  # what adventure.cli.stage_main does with a composition error
            fail(str(exc))
        run_stage(fn, cfg, schema)
    assert exited.value.code == 2
    captured = capsys.readouterr()
    check_line(captured.err, key)
    assert "Traceback" not in captured.out + captured.err
    assert outputs(artifacts) == []


@pytest.mark.parametrize("stage, overrides, key", SUBPROCESS_CASES, ids=[c[0] for c in SUBPROCESS_CASES])
def test_the_cli_exits_2_with_one_error_line(stage, overrides, key, tmp_path):
    artifacts, overrides = prepare(tmp_path, overrides)
    result = subprocess.run([sys.executable, "-m", stage, f"paths.artifacts={artifacts}", *overrides], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2, result.stderr
    line = check_line(result.stderr, key)
    assert "Traceback" not in result.stdout + result.stderr
    assert outputs(artifacts) == []
    logs = list((artifacts / "hydra").rglob("*.log"))  # a stage that started keeps the reason in its run log
    assert all(line.removeprefix("error: ") in log.read_text(encoding="utf-8") for log in logs)


def test_the_sample_cases_cover_every_stage():
    assert sorted(c[0] for c in SUBPROCESS_CASES) == sorted({c[0] for c in CASES})


ACCEPTED = [  # the neighbours of refused values still compose: the checks are not over-eager
    ("serving", ["port=0", "port=65535", "host=localhost", "host=::1", "queue.max_batch=1", "threads=2",
                 "limits.max_long_polls=1", "limits.trusted_proxies=[10.0.0.0/8,::1]",
                 "games.expire_after_days=null", f"db={OUTSIDE}/new/gamio.sqlite"]),
    ("training", ["train.max_steps=-1", "train.learning_rate=1e-4", "train.batch_size=1"]),
    ("scraping", ["dataset.ratios.train=0.8", "source.delay=0"]),
    ("conversion", ["generation=greedy", "max_shard_size=500MB", "verify=false"]),
    ("eval", ["max_samples.test=null", "eval_models=rugpt3", "extra_generation=[gamio,greedy]"]),
]


@pytest.mark.parametrize("stage, overrides", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_valid_values_compose(stage, overrides, tmp_path):
    artifacts, overrides = prepare(tmp_path, overrides)
    cfg = compose(stage, [f"paths.artifacts={artifacts}", *overrides], stage_entry(stage)[0])
    if stage == "conversion":
        assert cfg.generation.name == "greedy"  # a preset of the shared generation group, as in every stage
