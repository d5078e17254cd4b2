"""gamio's test set as an lm-evaluation-harness task: any model lm-eval can load is scored on gamio's data.

`python -m eval export=lm_eval` writes, next to the report, a folder holding

    <task>.yaml       the task: output_type loglikelihood, one request (context, continuation) per sample
    <task>.jsonl      the data, one record a line: sample_id, story_id, context, continuation
    <task>_task.py    the functions the YAML names (eval/lm_eval_task.py, copied: data loading, metrics)
    README.md         the exact `lm_eval` command

The pair is the one gamio scores (the contract of eval's likelihood): `context` is the model's budgeted prompt
(adventure/budget.py build_prompt(...).text, ending in "\n" after the `> action` line) and `continuation` the gold
reply (as cut to fit). They are stored UNMOVED: the trailing whitespace of the context stays on the context.
lm-eval's `TemplateLM._encode_pair` moves it to the front of the continuation itself, exactly as gamio does
(`lm_eval_pair` below), so both sides score the same tokens: the newline after the action and then the reply.
Storing the moved form would give the same request too (the move is idempotent), but the unmoved one is what a
reader expects: the prompt as the game shows it and the reply as written.

`target_delimiter` is "" (lm-eval's default " " would put a space before every reply) and `doc_to_text` /
`doc_to_target` name the columns, so lm-eval uses the strings as they are (no Jinja rendering).

Tokens: lm-eval's HFLM encodes with `tokenizer.encode(text)`, adding the tokenizer's special tokens unless the
model_args say `add_bos_token=False` (then `add_special_tokens=False`, as gamio's `encode_text`). GPT-2 tokenizers
add none either way; the README's command passes it anyway, so a tokenizer that would prepend a BOS is scored
without one, as gamio scores and prompts every model. One difference remains: gamio also splits special-token
strings typed as text (`split_special_tokens=True`), lm-eval does not, so a text containing e.g. "<|endoftext|>"
is one control token there. The export names such samples (`special_tokens=`) in the README.
"""
from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path
from typing import Iterable, Sequence

from adventure.errors import GamioError
from eval.likelihood import encode_pair, prompt_text

log = logging.getLogger(__name__)

RECORD_KEYS = ("sample_id", "story_id", "context", "continuation")
TASK_MODULE = Path(__file__).with_name("lm_eval_task.py")
TASK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def lm_eval_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) exactly as lm-eval's `TemplateLM._encode_pair` makes them for a causal
    model (eval.likelihood.encode_pair, which gamio's own likelihood uses), refusing the empty context that
    lm-eval would score after a BOS/EOS token instead."""
    if not context:
        raise GamioError("lm-eval scores an empty context against a BOS/EOS token instead: every gamio prompt "
                         "has text")
    return encode_pair(tokenizer, context, continuation)


def lm_eval_records(tokenizer, samples: Sequence, replies: Sequence[str], context_length: int,
                    max_turns: int = 10) -> list[dict]:
    """The export records of `samples` with their scored `replies` (eval.likelihood.common_replies) as a model
    with `context_length` tokens scores them: the same prompt as eval's likelihood. Empty replies are skipped, as
    eval's likelihood skips them."""
    from eval.eval_sets import sample_id

    records = []
    for sample, reply in zip(samples, replies):
        if not reply.strip():
            continue
        record = {"sample_id": sample_id(sample), "story_id": sample.tree_id,
                  "context": prompt_text(tokenizer, context_length, sample, reply, sample.action, max_turns),
                  "continuation": reply}
        context_ids, continuation_ids = lm_eval_pair(tokenizer, record["context"], record["continuation"])
        if len(context_ids) + len(continuation_ids) > context_length:  # lm-eval would cut the context's left end
            raise GamioError(f"sample {record['sample_id']}: {len(context_ids) + len(continuation_ids)} tokens "
                             f"exceed the model's context of {context_length}")
        records.append(record)
    return records


def _checked(records: Iterable[dict]) -> list[dict]:
    out, seen = [], set()
    for n, record in enumerate(records):
        missing = [k for k in RECORD_KEYS if k not in record]
        if missing:
            raise GamioError(f"lm-eval export: record {n} lacks {missing}")
        bad = [k for k in RECORD_KEYS if not isinstance(record[k], str)]
        if bad:
            raise GamioError(f"lm-eval export: record {n} ({record['sample_id']!r}): {bad} must be text")
        if not record["context"].strip() or not record["continuation"]:
            raise GamioError(f"lm-eval export: record {record['sample_id']!r} has an empty context or continuation "
                             f"(lm-eval cannot score it as gamio does)")
        if record["sample_id"] in seen:
            raise GamioError(f"lm-eval export: sample_id {record['sample_id']!r} occurs twice")
        seen.add(record["sample_id"])
        out.append({k: record[k] for k in RECORD_KEYS})
    if not out:
        raise GamioError("lm-eval export: no records to export")
    return out


def _task_yaml(task_name: str, data_file: str, module: str) -> str:
    """The task YAML. Written by hand: `!function` tags are not plain YAML that a dumper writes."""
    q = json.dumps  # a JSON string is a valid YAML scalar, whatever it contains
    metrics = [("nll", "mean", False), ("char_perplexity", "weighted_perplexity", False),
               ("bits_per_char", "bits_per_byte", False),
               ("bits_per_byte", "bits_per_byte", False), ("greedy", "mean", True)]
    lines = [
        "# gamio's test set: the likelihood of each gold reply after its budgeted prompt (README.md here).",
        f"task: {q(task_name)}",
        f"custom_dataset: !function {module}.load",
        f"dataset_kwargs: {{data_file: {q(data_file)}}}",
        "test_split: test",
        "output_type: loglikelihood",
        "doc_to_text: context",
        "doc_to_target: continuation",
        'target_delimiter: ""',
        "num_fewshot: 0",
        f"process_results: !function {module}.process_results",
        "metric_list:",
    ]
    # lm-eval's aggregations: weighted_perplexity = exp(-sum(ll) / sum(units)), bits_per_byte = -sum(ll) / sum(units)
    # / ln 2 (the process_results in lm_eval_task.py says why not lm-eval's per-reply `perplexity`)
    for metric, aggregation, higher in metrics:
        lines += [f"  - metric: {metric}", f"    aggregation: {aggregation}",
                  f"    higher_is_better: {'true' if higher else 'false'}"]
    lines += ["metadata:", "  version: 1.0"]
    return "\n".join(lines) + "\n"


def _readme(task_name: str, out_dir: Path, count: int, stories: int, with_special: list[str]) -> str:
    command = (f"HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 lm_eval --model hf \\\n"
               f"    --model_args pretrained=<model folder or hub id>,dtype=float32,add_bos_token=False \\\n"
               f"    --include_path {out_dir} --tasks {task_name} \\\n"
               f"    --device cpu --batch_size 8 --output_path <results dir> --log_samples")
    stories_word = "story" if stories == 1 else "stories"
    text = f"""# {task_name}: gamio's test set for lm-evaluation-harness

{count} samples from {stories} {stories_word}. Each is one `loglikelihood` request: the model's log-likelihood of the
gold reply (`continuation`) after the budgeted game prompt (`context`), the pair gamio's own eval scores.

```
{command}
```

`add_bos_token=False` keeps lm-eval from adding special tokens, as gamio encodes text (no BOS for any model).
Needs `pip install lm-eval` (tested with 0.4.13). The folder can be moved (point --include_path at it): the task
finds its data file next to the YAML. `--log_samples` writes `samples_{task_name}_*.jsonl` under the results dir: each line's `doc.sample_id`
and its log-likelihood (`resps`), which `eval.lm_eval_export.read_lm_eval_samples` reads into a dict.

Metrics: `nll` (mean nats per reply), `char_perplexity` (exp of nats per reply character), `bits_per_char`
(gamio's tokenizer-free unit, summed over the set), `bits_per_byte` (per UTF-8 byte), `greedy` (reply = greedy
continuation). The context is built for the exporting model's context size; another model with a shorter context
gets its left end cut by lm-eval.

Files: `{task_name}.yaml` (the task), `{task_name}.jsonl` (sample_id, story_id, context, continuation; context
stored with its trailing newline, which lm-eval moves onto the continuation as gamio does), `{task_name}_task.py`.
"""
    if with_special:
        text += (f"\nSpecial-token strings occur in {len(with_special)} sample(s) (lm-eval's HFLM reads one as a "
                 f"control token, gamio as text, so their scores can differ): {', '.join(with_special)}\n")
    return text


def write_lm_eval_task(records: Iterable[dict], out_dir: Path, task_name: str = "gamio_test", *,
                       special_tokens: Sequence[str] = (), final_dir: Path | None = None) -> Path:
    """Write the task into `out_dir` (created); returns the task YAML's path. Records are
    {"sample_id", "story_id", "context", "continuation"} with the context UNMOVED (ending in its newline).
    `special_tokens` (e.g. tokenizer.all_special_tokens): samples containing one are named in the README.
    `final_dir`: where the folder will live when it is written into a staging folder first (the README's path)."""
    if not TASK_NAME.fullmatch(task_name):
        raise GamioError(f"task_name={task_name!r}: use letters, digits and _ (an lm-eval task and module name)")
    rows = _checked(records)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data_file, module = f"{task_name}.jsonl", f"{task_name}_task"
    with (out_dir / data_file).open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    shutil.copyfile(TASK_MODULE, out_dir / f"{module}.py")
    yaml_path = out_dir / f"{task_name}.yaml"
    yaml_path.write_text(_task_yaml(task_name, data_file, module), encoding="utf-8")
    specials = [s for s in special_tokens if s]
    with_special = [r["sample_id"] for r in rows if any(s in r["context"] + r["continuation"] for s in specials)]
    if with_special:
        log.warning("lm-eval export: %d samples contain special-token strings; lm-eval may score them "
                    "differently (README.md)", len(with_special))
    stories = len({r["story_id"] for r in rows})
    shown = Path(final_dir or out_dir).resolve()
    (out_dir / "README.md").write_text(_readme(task_name, shown, len(rows), stories, with_special),
                                       encoding="utf-8")
    log.info("lm-eval task %s: %d samples -> %s", task_name, len(rows), yaml_path)
    return yaml_path


def read_lm_eval_samples(path: Path, task_name: str = "gamio_test") -> dict[str, float]:
    """{doc sample_id: log-likelihood in nats} from lm-eval's `--log_samples` output: `path` is a
    samples_<task>_*.jsonl file, or a folder searched for the newest one (lm-eval nests it under the model's
    name inside --output_path)."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.rglob(f"samples_{task_name}_*.jsonl"), key=lambda p: (p.stat().st_mtime, p.name))
        if not found:
            raise GamioError(f"no samples_{task_name}_*.jsonl under {path} (run lm_eval with --log_samples)")
        path = found[-1]
    out = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                sample = json.loads(line)
                out[sample["doc"]["sample_id"]] = _loglikelihood(sample)
    return out


def _loglikelihood(sample: dict) -> float:
    """The first response of the sample's one request: [loglikelihood, is_greedy], numbers or their strings
    (lm-eval versions differ); `filtered_resps` holds the same without the per-request nesting."""
    resps = sample.get("resps")
    first = resps[0][0] if resps else sample["filtered_resps"][0]
    return float(first[0] if isinstance(first, (list, tuple)) else first)
