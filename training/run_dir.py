"""The run dir (checkpoints; resume=true finds them) and the model folder of a run, and what happens to an earlier
run in the same run dir.

A checkpoint that a resume could use is never deleted: starting afresh moves a run dir holding one aside to
`<run_dir>.previous` (or `.previous-2`, `-3`, ... when that already holds one), and removes a run dir without
one, which holds nothing to resume. (Earlier, a run refused after the move, followed by another try, deleted
the only checkpoint.)
"""
from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from omegaconf import OmegaConf

from adventure.paths import artifacts_dir
from training.sweep import SweepJob, job_dirs

log = logging.getLogger(__name__)

DEFAULT_RUN_DIR = "${paths.artifacts}/runs/${model.name}"  # training/config.py's defaults, unresolved
DEFAULT_OUT_DIR = "${paths.artifacts}/models/${model.name}"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def last_complete_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint the Trainer finished writing (trainer_state.json is written last), so that a
    process killed in the middle of a save resumes from the one before instead of failing."""
    if not run_dir.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in run_dir.iterdir()
             if (m := _CHECKPOINT.match(p.name)) and (p / "trainer_state.json").is_file()]
    return max(found)[1] if found else None


def _checkpoint_to_resume(run_dir: Path, resume: bool, is_main: bool) -> Path | None:
    """resume=true: the last complete checkpoint. resume=false: start afresh, but keep an earlier run that holds a
    checkpoint (a forgotten resume=true must not cost days of training)."""
    checkpoint = last_complete_checkpoint(run_dir)
    if resume:
        if checkpoint is None:
            earlier = _earlier_runs(run_dir)
            log.warning("resume=true but %s holds no complete checkpoint: starting from step 0%s", run_dir,
                        f" (an earlier run is kept in {earlier[-1]}: pass run_dir={earlier[-1]} to continue it)"
                        if earlier else "")
        else:
            log.info("resuming from %s", checkpoint)
        return checkpoint
    if is_main and run_dir.exists() and any(run_dir.iterdir()):
        if checkpoint is None:  # nothing a resume could use (e.g. only init/ of a run stopped early)
            shutil.rmtree(run_dir)
            log.info("removed %s: it held no complete checkpoint", run_dir)
        else:
            previous = _free_previous(run_dir)
            run_dir.rename(previous)
            log.warning("moved the earlier run in %s to %s (use resume=true to continue a run instead)",
                        run_dir, previous)
    return None


def _earlier_runs(run_dir: Path) -> list[Path]:
    """`<run_dir>.previous`, `.previous-2`, ... that hold a complete checkpoint, oldest first."""
    def number(path: Path) -> int:
        suffix = path.name[len(run_dir.name) + len(".previous"):]
        return int(suffix[1:]) if suffix.startswith("-") and suffix[1:].isdigit() else 1

    found = [p for p in run_dir.parent.glob(run_dir.name + ".previous*") if last_complete_checkpoint(p)]
    return sorted(found, key=number)


def _free_previous(run_dir: Path) -> Path:
    """Where to move a run dir aside: `.previous`, unless that holds a checkpoint; then the next free number."""
    previous = run_dir.with_name(run_dir.name + ".previous")
    if previous.exists() and last_complete_checkpoint(previous) is None:
        shutil.rmtree(previous)  # an earlier aside without a checkpoint: nothing to keep
    number = 1
    while previous.exists():
        number += 1
        previous = run_dir.with_name(f"{run_dir.name}.previous-{number}")
    return previous


def output_dirs(cfg, job: SweepJob | None) -> tuple[Path, Path]:
    """(run_dir, out_dir) of this run: as configured, or the sweep job's own (training/sweep.py). method=dpo
    names its default folders after the SFT model it starts from, `<sft>-dpo`, so the parent is never replaced."""
    run_dir, out_dir = Path(str(cfg.run_dir)), Path(str(cfg.out_dir))
    if cfg.method == "dpo" and cfg.model.path:
        raw = OmegaConf.to_container(cfg, resolve=False)
        name = f"{Path(str(cfg.model.path)).resolve().name}-dpo"
        artifacts = artifacts_dir(cfg)
        if raw["run_dir"] == DEFAULT_RUN_DIR:
            run_dir = artifacts / "runs" / name
        if raw["out_dir"] == DEFAULT_OUT_DIR:
            out_dir = artifacts / "models" / name
    return job_dirs(job, run_dir.resolve(), out_dir.resolve())
