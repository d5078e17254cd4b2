"""From what each model produced (eval/scoring.py ModelRun) to the report's numbers: results with intervals, the
recommended model, paired comparisons with it, each model's best preset, and the warnings a reader must see."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eval.bootstrap import per_row
from eval.likelihood import likelihood_summary
from eval.model_set import EvalModel
from eval.report import recommend
from eval.scoring import EvalSets, ModelRun, playthrough_ids
from eval.uncertainty import Bootstrap, Scored, few_stories_warnings, likelihood_scored, replies_scored
from eval.reply_stats import generation_metrics

LIKELIHOOD_SETS = ("test", "validation")


@dataclass
class Assembled:
    results: dict
    comparisons: dict
    recommended: dict | None
    best_presets: dict
    warnings: list[str]


def _likelihood_results(models, runs, boot: Bootstrap) -> dict:
    results: dict = {name: {} for name in LIKELIHOOD_SETS}
    for model in models:
        run = runs[model.name]
        for set_name in LIKELIHOOD_SETS:
            items = run.likelihood.get(set_name)
            if not items:
                continue
            metrics = dict(likelihood_summary(items, run.replies_cut[set_name]), side=model.language,
                           comparable=model.comparable)
            results[set_name][model.name] = boot.with_intervals(set_name, metrics, likelihood_scored(items))
    return results


def _play_scored(sets: EvalSets, run: ModelRun) -> dict[str, Scored]:
    ids, stories = playthrough_ids(sets)
    return {preset: replies_scored(ids, stories, replies) for preset, replies in run.plays.items()}


def best_preset(per_preset: dict) -> dict:
    """The preset with the highest chrF against the gold replies among those that did not fail (ties: fewer
    looping replies, then config order)."""
    usable = [(name, m) for name, m in per_preset.items() if not m.get("failed")]
    if not usable:
        return {"preset": None, "reason": "every preset failed (more than half of its replies empty)"}
    ranked = sorted(enumerate(usable), key=lambda im: (-round(im[1][1]["chrf"], 6),
                                                       round(im[1][1]["looping_share"], 6), im[0]))
    name, metrics = ranked[0][1]
    failed = [n for n, m in per_preset.items() if m.get("failed")]
    reason = (f"highest chrF against the gold replies ({metrics['chrf']:.2f}) with {metrics['looping_share']:.0%} "
              f"looping replies" + (f"; failed, not considered: {', '.join(failed)}" if failed else ""))
    return {"preset": name, "reason": reason}


def assemble(models: list[EvalModel], runs: dict[str, ModelRun], sets: EvalSets, boot: Bootstrap,
             set_info: dict) -> Assembled:
    results = _likelihood_results(models, runs, boot)
    play_scored = {m.name: _play_scored(sets, runs[m.name]) for m in models}
    results["playthrough"] = {
        m.name: {preset: boot.with_intervals("playthrough", generation_metrics(replies), play_scored[m.name][preset])
                 for preset, replies in runs[m.name].plays.items()} for m in models}
    recommended = recommend(models, results)
    warnings = few_stories_warnings(set_info)
    if not results["validation"]:
        warnings.append("no validation split was scored: the recommended model was chosen on the test split, "
                        "whose numbers are then optimistic")
    for name, per_preset in results["playthrough"].items():
        for preset, metrics in per_preset.items():
            if metrics["failed"]:
                warnings.append(f"{name} / {preset}: {metrics['empty_share']:.0%} of the replies are empty: the "
                                f"preset failed and wins no column")
    comparisons: dict = {name: {} for name in (*LIKELIHOOD_SETS, "playthrough")}
    if recommended:
        ref = recommended["name"]
        for model in models:
            if model.name == ref:
                continue
            for set_name in LIKELIHOOD_SETS:
                mine, theirs = runs[model.name].likelihood.get(set_name), runs[ref].likelihood.get(set_name)
                if mine and theirs:
                    comparisons[set_name][model.name] = dict(
                        boot.compare(set_name, likelihood_scored(mine), likelihood_scored(theirs)))
            comparisons["playthrough"][model.name] = {
                preset: boot.compare("playthrough", scored, play_scored[ref][preset])
                for preset, scored in play_scored[model.name].items() if preset in play_scored[ref]}
    best = {name: best_preset(per_preset) for name, per_preset in results["playthrough"].items()}
    return Assembled(results, comparisons, recommended, best, warnings)


def parallel_intervals(metrics: dict, hypotheses: list[str], references: list[str], boot: Bootstrap,
                       key: str) -> dict:
    """BLEU and chrF of a translator with intervals: sentence pairs are independent, so each is its own unit."""
    from sacrebleu.metrics import BLEU, CHRF

    out = dict(metrics)
    ids = [f"{key}:{i}" for i in range(len(hypotheses))]
    draws = boot.draws(f"parallel:{key}", ids)
    for name, metric in (("bleu", BLEU()), ("chrf", CHRF())):
        rows = np.asarray(metric._extract_corpus_statistics(list(hypotheses), [list(references)]),
                          dtype=np.float64).reshape(len(hypotheses), -1)
        stat = per_row(lambda drawn, rows=rows, metric=metric: float(
            metric._compute_score_from_stats(list(drawn @ rows)).score) if drawn.any() else 0.0)
        from eval.bootstrap import interval

        out[f"{name}_ci95"] = interval(stat, draws)
    return out
