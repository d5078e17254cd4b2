"""The Python half of gamio's exported lm-evaluation-harness task (the YAML names it with `!function`).

eval/lm_eval_export.py copies this file, unchanged, next to the task YAML and the data file. lm-eval imports it
from there (a `!function` module is looked up beside its YAML, wherever `lm_eval` runs), so it must not import
gamio: the harness may run in another environment than the one that exported the task. It needs only `datasets`,
which lm-eval itself depends on.

Why a `custom_dataset` function rather than `dataset_path: json` + `dataset_kwargs.data_files`: lm-eval hands
`data_files` to `datasets.load_dataset` unchanged, and datasets resolves a relative path against the current
directory, not the YAML. An absolute path written at export time would break as soon as the report folder is
moved or copied to another machine. This function resolves the data file against its own folder instead, and still
reads it with datasets' packaged `json` builder (no hub access).
"""
from __future__ import annotations

from pathlib import Path


def load(data_file: str, **_metadata):
    """The task's DatasetDict ({"test": ...}); `data_file` is relative to this file's folder (or absolute).
    lm-eval also passes the task's metadata (version, --metadata): ignored."""
    import datasets

    path = Path(data_file)
    if not path.is_absolute():
        path = Path(__file__).resolve().parent / path
    if not path.is_file():
        raise FileNotFoundError(f"gamio task data not found: {path} (keep it next to the task YAML)")
    return datasets.load_dataset("json", data_files={"test": str(path)})


def process_results(doc: dict, results) -> dict:
    """Per-sample metric inputs from lm-eval's one loglikelihood request: (log-likelihood in nats, is_greedy).

    nll              mean negative log-likelihood of a reply (nats), with lm-eval's stderr over samples.
    char_perplexity  exp(-sum(log-likelihood) / sum(reply characters)). lm-eval's own `perplexity` aggregation,
                     exp(-mean per-sample log-likelihood), is per reply, not per token: a reply of hundreds of
                     tokens overflows it, so it is not used.
    bits_per_char    -sum(log-likelihood) / ln 2 / sum(reply characters): gamio's tokenizer-free measure, summed
                     over the set before dividing, comparable across vocabularies (and with gamio's report).
    bits_per_byte    the same per UTF-8 byte of the reply (lm-eval's usual unit; a Cyrillic letter is 2 bytes).
    greedy           share of replies that are exactly the model's greedy continuation.
    """
    loglikelihood, is_greedy = results[0]
    reply = doc["continuation"]
    return {
        "nll": -loglikelihood,
        "char_perplexity": (loglikelihood, len(reply)),
        "bits_per_char": (loglikelihood, len(reply)),
        "bits_per_byte": (loglikelihood, len(reply.encode("utf-8"))),
        "greedy": int(is_greedy),
    }
