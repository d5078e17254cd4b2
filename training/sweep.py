"""Multirun jobs (`python -m training -m ...`, Optuna's sweeper too): one model folder per job, and a summary.

Every job of a sweep is named by its values of the swept settings (those given as a sweep on the command line,
`a=1,2` / `choice(...)` / `range(...)`, and the Optuna sweeper's `hydra.sweeper.params`), `key=value` sorted by key
as Hydra's `override_dirname` writes them; settings fixed for the whole sweep and those that say where or which
model (`model=` already names the folder; paths, resume, tracking) are left out:

    python -m training -m loss_on=all,result train.learning_rate=0.001,0.003 train.max_steps=100
    -> <artifacts>/models/tiny/loss_on=all,train.learning_rate=0.001      (runs/tiny.jobs/<same> for checkpoints)
       <artifacts>/models/tiny/loss_on=all,train.learning_rate=0.003   ... 4 folders

A sweep over `model=` alone keeps one plain folder per model (models/tiny, models/tiny_wide) as before. After each
job the sweep folder's `sweep.json` and `sweep.md` are rewritten from every finished job's record (`job.json` in
the job's Hydra folder): its overrides, best validation loss and step, and the model folder. A sweep that dies
half-way still leaves the summary of the jobs that finished.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from adventure.publish import write_file

log = logging.getLogger(__name__)

# Overrides that never name a job: where things go, which model (its own folder already), how it is watched.
_UNNAMED_KEYS = {"model", "out_dir", "run_dir", "dataset_dir", "resume", "tracking", "hparams_search",
                 "preferences"}
_UNNAMED_PREFIXES = ("paths.", "hydra.", "hydra/")
JOB_RECORD = "job.json"
MAX_NAME_BYTES = 200  # file systems allow 255; room for publish_folder's staging prefix


@dataclass(frozen=True)
class SweepJob:
    num: int
    overrides: tuple[str, ...]  # every override of the job, as given
    name: str  # the folder name from the naming overrides; "" when only model= (or paths...) varied
    sweep_dir: Path
    job_dir: Path


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def swept_keys(argv: list[str], sweeper_params) -> set[str]:
    """The settings this sweep varies: sweep overrides of the command line, and the sweeper's own params."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    keys = {str(k).lstrip("+~") for k in (sweeper_params or {})}
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        try:
            (override,) = OverridesParser.create().parse_overrides([arg])
        except HydraException:
            continue
        if override.is_sweep_override():
            keys.add(override.key_or_group)
    return keys


def job_name(overrides, swept: set[str]) -> str:
    """`loss_on=result,train.learning_rate=0.001`: the job's swept overrides sorted by key, as one folder name."""
    named = sorted((o.lstrip("+~") for o in overrides if _key(o) in swept
                    and _key(o) not in _UNNAMED_KEYS and not _key(o).startswith(_UNNAMED_PREFIXES)), key=_key)
    name = ",".join(named).replace("/", "_").replace("\0", "")
    if name.startswith("."):
        name = "_" + name[1:]
    if len(name.encode()) > MAX_NAME_BYTES:  # still unique and readable at its start
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        name = name.encode()[:MAX_NAME_BYTES - 13].decode(errors="ignore") + "-" + digest
    return name


def current_job() -> SweepJob | None:
    """This process' multirun job, or None (a single run, or called outside `python -m training`)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
    except ImportError:
        return None
    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    if hydra.mode != RunMode.MULTIRUN:
        return None
    overrides = tuple(str(o) for o in hydra.overrides.task)
    swept = swept_keys(sys.argv[1:], OmegaConf.select(hydra, "sweeper.params"))
    return SweepJob(num=int(hydra.job.num), overrides=overrides, name=job_name(overrides, swept),
                    sweep_dir=Path(str(hydra.sweep.dir)).resolve(), job_dir=Path(str(hydra.runtime.output_dir)))


def job_dirs(job: SweepJob | None, run_dir: Path, out_dir: Path) -> tuple[Path, Path]:
    """(run_dir, out_dir) of this job. Explicit run_dir= / out_dir= overrides are taken as given.

    Checkpoints go to a sibling `<run_dir>.jobs/<name>` rather than inside run_dir: a plain run starting afresh
    moves or clears its own run dir, which must never take a sweep's checkpoints with it."""
    if job is None or not job.name:
        return run_dir, out_dir
    given = {_key(o) for o in job.overrides}
    if "run_dir" not in given:
        run_dir = run_dir.with_name(run_dir.name + ".jobs") / job.name
    if "out_dir" not in given:
        out_dir = out_dir / job.name
    return run_dir, out_dir


def record_job(job: SweepJob, artifacts: Path, out_dir: Path | None, metrics: dict | None,
               error: str | None = None) -> None:
    """This job's record, then the sweep's summary rebuilt from every record (jobs may run in any order)."""
    record = {
        "num": job.num, "overrides": list(job.overrides), "name": job.name or None,
        "status": "failed" if error else "done", "error": error,
        "folder": _relative(out_dir, artifacts) if out_dir and not error else None,
        "best_eval_loss": (metrics or {}).get("best_eval_loss"), "best_step": (metrics or {}).get("best_step"),
        "eval_loss_start": (metrics or {}).get("eval_loss_start"),
        "eval_loss_end": (metrics or {}).get("eval_loss_end"),
        "method": (metrics or {}).get("method"),
    }
    job.job_dir.mkdir(parents=True, exist_ok=True)
    write_file(job.job_dir / JOB_RECORD, json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    write_summary(job.sweep_dir)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)


def write_summary(sweep_dir: Path) -> dict:
    """sweep.json (every job, best first) and sweep.md (the same as a table) in the sweep folder."""
    jobs = []
    for record in sweep_dir.glob(f"*/{JOB_RECORD}"):
        try:
            jobs.append(json.loads(record.read_text("utf-8")))
        except (OSError, json.JSONDecodeError):
            continue  # a job writing its record right now: the next job's summary has it

    def rank(job):
        loss = job.get("best_eval_loss")
        return (loss is None or not math.isfinite(loss), loss if loss is not None else 0.0, job["num"])

    jobs.sort(key=rank)
    best = next((j for j in jobs if j["status"] == "done" and j.get("best_eval_loss") is not None), None)
    summary = {"sweep_dir": str(sweep_dir), "jobs": jobs, "best": best and {k: best[k] for k in (
        "num", "overrides", "folder", "best_eval_loss", "best_step")},
        "metric": "best validation loss (eval_loss of the best checkpoint; lower is better)"}
    write_file(sweep_dir / "sweep.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    write_file(sweep_dir / "sweep.md", summary_markdown(summary))
    return summary


def summary_markdown(summary: dict) -> str:
    lines = ["# Training sweep", "", f"{len(summary['jobs'])} job(s), best validation loss first "
             "(the best checkpoint's, which is the one each model folder holds).", "",
             "| job | overrides | best val loss | at step | model folder |", "|---|---|---|---|---|"]
    for job in summary["jobs"]:
        loss = job.get("best_eval_loss")
        shown = f"{loss:.4f}" if loss is not None else ("failed" if job["status"] == "failed" else "-")
        lines.append(f"| {job['num']} | `{' '.join(job['overrides']) or '-'}` | {shown} | "
                     f"{job.get('best_step') if job.get('best_step') is not None else '-'} | "
                     f"{'`' + job['folder'] + '`' if job.get('folder') else '-'} |")
    failed = [j for j in summary["jobs"] if j["status"] == "failed"]
    for job in failed:
        lines.append(f"\nJob {job['num']} failed: {job['error']}")
    if summary["best"]:
        lines += ["", f"Best: job {summary['best']['num']} (`{summary['best']['folder']}`). Compare them all with "
                  "`python -m eval` (models=auto finds every job's folder)."]
    return "\n".join(lines) + "\n"
