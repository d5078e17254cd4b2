"""Repeated n-gram rate: how much a generated text loops on itself, as an `evaluate` metric.

Self-contained on purpose (no gamio imports): a researcher loads it with
`evaluate.load("<path>/eval/metrics/repeated_ngrams")` outside the repository, offline.
"""
import re
from collections import Counter

import datasets
import evaluate

_DESCRIPTION = """\
The share of word n-grams that repeat an earlier n-gram of the same text: for each text, every occurrence of
an n-gram after its first one counts as repeated; the rate is repeated / all n-grams, summed over the texts.
It catches a model stuck in a loop ("you go north. you go north. ..."). The same phrase in two different texts
is not a loop and does not count. Words are runs of `\\w` characters, lowercased, so it works on Russian text
as on English. A set with no n-gram at all scores 0.0.
"""

_CITATION = """\
No publication: the loop measure of the gamio evaluation stage (a Russian AI text adventure toolkit).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): the generated texts.
    n (`int`, default 4): the n-gram size.
Returns:
    `repeated_<n>gram_rate` (`float`, 0.0 to 1.0): repeated word n-grams within a text / all word n-grams.
Examples:
    >>> repeated = evaluate.load("eval/metrics/repeated_ngrams")
    >>> repeated.compute(predictions=["a b c d a b c d"])
    {'repeated_4gram_rate': 0.2}
"""

# The same words and n-grams as ../distinct_n/distinct_n.py; a copy, not an import, because each module must load
# on its own (evaluate copies a module's folder, not its neighbours). The tests pin that both split alike.
_WORD = re.compile(r"\w+")


def words(text):
    return _WORD.findall(text.lower())


def ngrams(tokens, n):
    return [tuple(tokens[i: i + n]) for i in range(len(tokens) - n + 1)]


def repeated_rate(texts, n):
    repeated = total = 0
    for text in texts:
        counts = Counter(ngrams(words(text), n))
        total += sum(counts.values())
        repeated += sum(c - 1 for c in counts.values())
    return repeated / total if total else 0.0


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RepeatedNgrams(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    def _compute(self, predictions, n=4):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"repeated_ngrams: n must be a positive int, got {n!r}")
        return {f"repeated_{n}gram_rate": repeated_rate(predictions, n)}
