"""The model card of every model folder gamio publishes (training and conversion write it the same way).

`README.md` is what the Hugging Face Hub and `huggingface_hub.ModelCard.load` read: YAML metadata (language,
license, base model, training data, tags, pipeline, and a `model-index` with the measured metrics), then the
human-readable text the stage composed. `MODEL_CARD.md` gets the same text, because earlier releases promised that
file name; adventure.model_language reads the `language:` field from either.
"""
from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from adventure.publish import write_file

CARD_FILES = ("README.md", "MODEL_CARD.md")
TAGS = ("gamio", "text-adventure", "gpt2")
LANGUAGE_TAGS = {"ru": "russian", "en": "english"}
TASK = "text-generation"
# gamio's code is MIT, but weights inherit the terms of their base model and training text, which gamio cannot
# know (scraped stories, a third-party checkpoint): "other" plus a sentence says so instead of guessing.
LICENSE_NOTE = ("The license is set to `other`: these weights inherit the terms of the model they started from "
                "and of the text they were trained on; check those before you share the model.")


def rows(items) -> str:
    """A two-column Markdown table."""
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in items)


def usage(folder_name: str, note: str = "") -> str:
    """The card's `## Use` section: loading the folder with transformers."""
    return f"""## Use
```python
from transformers import AutoModelForCausalLM, AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained("{folder_name}")
model = AutoModelForCausalLM.from_pretrained("{folder_name}")
```
{note}"""


def eval_results(dataset: tuple[str, str, str | None], metrics) -> list[EvalResult]:
    """`model-index` entries: `metrics` are (type, name, value) measured on `dataset` = (type, name, split);
    a value that was not measured (None) is left out."""
    dataset_type, dataset_name, split = dataset
    return [EvalResult(task_type=TASK, dataset_type=dataset_type, dataset_name=dataset_name, dataset_split=split,
                       metric_type=kind, metric_name=name, metric_value=float(value))
            for kind, name, value in metrics if value is not None]


def write_model_card(folder: Path, body: str, *, name: str, language: str, base_model: str | None = None,
                     datasets: list[str] | None = None, results: list[EvalResult] = ()) -> ModelCard:
    """Write README.md and MODEL_CARD.md into `folder`. `base_model` must be a Hub id (a local starting folder
    belongs in the text); `datasets` names the training data (say in the text what it is)."""
    data = ModelCardData(
        language=language, license="other", base_model=base_model, datasets=datasets or None,
        tags=[*TAGS, LANGUAGE_TAGS[language]], pipeline_tag=TASK, library_name="transformers",
        model_name=name, eval_results=list(results) or None)
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n{body.rstrip()}\n\n## License\n{LICENSE_NOTE}\n")
    for file in CARD_FILES:
        write_file(Path(folder) / file, str(card))
    return card
