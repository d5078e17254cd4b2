"""Distinct-n: the variety of a set of generated texts, as an `evaluate` metric.

Self-contained on purpose (no gamio imports): a researcher loads it with
`evaluate.load("<path>/eval/metrics/distinct_n")` outside the repository, offline.
"""
import re

import datasets
import evaluate

_DESCRIPTION = """\
Distinct-n is the number of unique word n-grams divided by the number of all word n-grams, counted over all
the texts together. Low values mean the texts repeat each other's phrasing (a model that always says the same
thing). Words are runs of `\\w` characters (letters of any script, digits, underscore), lowercased, so it works
on Russian text as on English. A set with no n-gram at all (empty texts, or texts shorter than n words)
scores 0.0.
"""

_CITATION = """\
@inproceedings{li-etal-2016-diversity,
    title = "A Diversity-Promoting Objective Function for Neural Conversation Models",
    author = "Li, Jiwei and Galley, Michel and Brockett, Chris and Gao, Jianfeng and Dolan, Bill",
    booktitle = "Proceedings of NAACL-HLT 2016",
    year = "2016"
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): the generated texts.
    n (`int` or `list` of `int`, default `[1, 2]`): the n-gram sizes to score.
Returns:
    `distinct_<n>` (`float`, 0.0 to 1.0) for each n: unique word n-grams / all word n-grams over all texts.
Examples:
    >>> distinct = evaluate.load("eval/metrics/distinct_n")
    >>> distinct.compute(predictions=["Дверь скрипит. Дверь открыта."], n=[1, 2])
    {'distinct_1': 0.75, 'distinct_2': 1.0}
"""

# The same words and n-grams as ../repeated_ngrams/repeated_ngrams.py; a copy, not an import, because each module must load
# on its own (evaluate copies a module's folder, not its neighbours). The tests pin that both split alike.
_WORD = re.compile(r"\w+")


def words(text):
    return _WORD.findall(text.lower())


def ngrams(tokens, n):
    return [tuple(tokens[i: i + n]) for i in range(len(tokens) - n + 1)]


def distinct(texts, n):
    grams = [g for t in texts for g in ngrams(words(t), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def sizes(n):
    """`n` as a list of n-gram sizes; a size below 1 has no meaning and is refused."""
    chosen = [n] if isinstance(n, int) else list(n)
    if not chosen or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in chosen):
        raise ValueError(f"distinct_n: n must be a positive int or a non-empty list of them, got {n!r}")
    return chosen


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class DistinctN(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string")}),
            reference_urls=["https://aclanthology.org/N16-1014/"],
        )

    def _compute(self, predictions, n=(1, 2)):
        return {f"distinct_{k}": distinct(predictions, k) for k in sizes(n)}
