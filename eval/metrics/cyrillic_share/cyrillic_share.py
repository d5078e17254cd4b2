"""Cyrillic share: how Russian a set of generated texts reads, as an `evaluate` metric.

Self-contained on purpose (no gamio imports): a researcher loads it with
`evaluate.load("<path>/eval/metrics/cyrillic_share")` outside the repository, offline.
"""
import re

import datasets
import evaluate

_DESCRIPTION = """\
Cyrillic letters / all letters, over all the texts together. A model meant to write Russian that slips into
English (or transliteration) scores low. Letters are the characters of `\\w` that are neither digits nor the
underscore, in any script; Cyrillic letters are those of the Unicode Cyrillic block U+0400-U+04FF (Russian
including ё). Digits, spaces and punctuation do not count either way. A set with no letters scores 0.0.
"""

_CITATION = """\
No publication: the language check of the gamio evaluation stage (a Russian AI text adventure toolkit).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): the generated texts.
Returns:
    `cyrillic_share` (`float`, 0.0 to 1.0): Cyrillic letters / all letters over all texts.
Examples:
    >>> share = evaluate.load("eval/metrics/cyrillic_share")
    >>> share.compute(predictions=["Hello мир"])
    {'cyrillic_share': 0.375}
"""

_LETTER = re.compile(r"[^\W\d_]")
_CYRILLIC = re.compile(r"[\u0400-\u04FF]")


def cyrillic_share(texts):
    letters = sum(len(_LETTER.findall(t)) for t in texts)
    return sum(len(_CYRILLIC.findall(t)) for t in texts) / letters if letters else 0.0


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CyrillicShare(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    def _compute(self, predictions):
        return {"cyrillic_share": cyrillic_share(predictions)}
