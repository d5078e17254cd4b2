"""Looping share: how many generated texts are stuck in a loop, as an `evaluate` metric.

Self-contained on purpose (no gamio imports): a researcher loads it with
`evaluate.load("<path>/eval/metrics/looping")` outside the repository, offline.
"""
import re

import datasets
import evaluate

_DESCRIPTION = """\
The share of texts that loop: a text loops when, anywhere in it, the same piece comes three or more times in a
row. Two kinds of piece are looked for, so that a loop inside one word and a loop of whole words are both caught:

- characters: a piece of 2 to 60 characters with at least one letter, three or more times in a row
  ("ворворвор", "ха-ха-ха-", "Он ушёл. Он ушёл. Он ушёл. ");
- words: the same 1 to 4 words three or more times in a row, whatever stands between them ("те те те",
  "нет, нет, нет", "и пошёл и пошёл и пошёл"). Words are runs of `\\w`, lowercased.

A repeated 4-gram rate misses both ("ворворвор" is one word; three words make no 4-gram), and distinct-n rewards
garbage; this flag does neither. Punctuation runs ("...", "!!!") are not loops. An empty set scores 0.0.
"""

_CITATION = """\
No publication: the loop detector of the gamio evaluation stage (a Russian AI text adventure toolkit).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): the generated texts.
Returns:
    `looping_share` (`float`, 0.0 to 1.0): texts that loop / all texts.
    `looping` (`list` of `bool`): per text, whether it loops.
Examples:
    >>> looping = evaluate.load("eval/metrics/looping")
    >>> looping.compute(predictions=["ворворвор", "Дверь открылась.", "те те те"])["looping_share"]
    0.6666666666666666
"""

_CHARACTER_LOOP = re.compile(r"(.{2,60}?)\1{2,}", re.DOTALL)
_LETTER = re.compile(r"[^\W\d_]")
_WORD = re.compile(r"\w+")
_MAX_WORDS = 4


def character_loop(text):
    """A piece of 2..60 characters with a letter in it, three or more times in a row."""
    return any(_LETTER.search(m.group(1)) for m in _CHARACTER_LOOP.finditer(text))


def word_loop(text):
    """The same 1..4 words three or more times in a row."""
    words = _WORD.findall(text.lower())
    for n in range(1, _MAX_WORDS + 1):
        for start in range(0, len(words) - 3 * n + 1):
            piece = words[start: start + n]
            if words[start + n: start + 2 * n] == piece and words[start + 2 * n: start + 3 * n] == piece:
                return True
    return False


def loops(text):
    return character_loop(text) or word_loop(text)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Looping(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    def _compute(self, predictions):
        flags = [loops(text) for text in predictions]
        return {"looping_share": sum(flags) / len(flags) if flags else 0.0, "looping": flags}
