"""Bits per character and perplexity of texts under a causal language model, as an `evaluate` metric.

Self-contained on purpose (no gamio imports): a researcher loads it with
`evaluate.load("<path>/eval/metrics/bits_per_char")` outside the repository, offline. torch and transformers
are imported only by the "texts" config, so the "nll" config works without them.
"""
import math
import os

import datasets
import evaluate

logger = evaluate.utils.logging.get_logger(__name__)

_DESCRIPTION = """\
Corpus-level bits per character and perplexity. Totals are summed over all items before dividing, so a long
text weighs more than a short one:

    bits_per_char = total NLL / ln 2 / total characters
    perplexity    = exp(total NLL / total tokens)
    nll_bits      = total NLL / ln 2

where NLL is the negative log-likelihood (nats) of a text's tokens under the model. Perplexity depends on the
tokenizer (a bigger vocabulary has fewer, harder tokens); bits per character does not, which makes models with
different vocabularies comparable. With no characters (or no tokens) the ratio is undefined: NaN.

Two configs:

- "nll" (the default): you already have the NLLs. Inputs per item: `nll_nats` (summed NLL of the item, nats),
  `characters` and `tokens` (what that NLL was measured over).
- "texts": the metric scores texts itself. Inputs: `predictions` (texts) and `model_id` (a local model folder,
  or a hub id already in the local Hugging Face cache or downloadable), optionally `prompts` (one per text, or
  None): each text's tokens are scored after its prompt, batched, without gradients. Without a prompt the text
  is scored after the model's start token (BOS, else EOS) so that its first token counts too. Texts are
  tokenized as plain text: no special tokens added, and a literal "<|endoftext|>" stays ordinary text.
"""

_CITATION = """\
No single publication: bits per character as in language-modelling benchmarks (e.g. enwik8), perplexity as the
exponential of the mean token NLL. Packaged by the gamio evaluation stage (a Russian AI text adventure toolkit).
"""

_KWARGS_DESCRIPTION = """
Args (config "nll", the default):
    nll_nats (`list` of `float`): summed negative log-likelihood of each item, in nats.
    characters (`list` of `int`): characters of each item.
    tokens (`list` of `int`): scored tokens of each item.
Args (config "texts"):
    predictions (`list` of `str`): the texts to score.
    model_id (`str`): a local folder with a causal LM and its tokenizer, or a hub id (needs the network or the
        local cache; with HF_HUB_OFFLINE=1 an uncached id fails with a message saying so).
    prompts (`list` of `str` or None, optional): the context each text follows.
    batch_size (`int`, default 8), device (`str`, default "cuda" when available, else "cpu").
Returns:
    bits_per_char (`float`), perplexity (`float`), nll_bits (`float`), tokens (`int`), characters (`int`).
Examples:
    >>> bpc = evaluate.load("eval/metrics/bits_per_char")
    >>> bpc.compute(nll_nats=[6.931471805599453], characters=[5], tokens=[2])["bits_per_char"]
    2.0
    >>> bpc = evaluate.load("eval/metrics/bits_per_char", "texts")
    >>> bpc.compute(predictions=["Дверь скрипит."], model_id="/models/rugpt3small")  # doctest: +SKIP
"""

NLL_CONFIGS = ("default", "nll")
TEXTS_CONFIG = "texts"


def corpus_scores(nll_nats, characters, tokens):
    """The scores of summed totals; the operations (and their order) are fixed so reruns match to the bit."""
    if any(v < 0 for v in characters) or any(v < 0 for v in tokens):
        raise ValueError("bits_per_char: characters and tokens must not be negative")
    nll, chars, toks = sum(nll_nats), sum(characters), sum(tokens)
    try:
        perplexity = math.exp(nll / toks) if toks else float("nan")
    except OverflowError:  # a model far worse than uniform; the ratio is still meaningful as infinity
        perplexity = float("inf")
    return {"bits_per_char": nll / math.log(2) / chars if chars else float("nan"), "perplexity": perplexity,
            "nll_bits": nll / math.log(2), "tokens": toks, "characters": chars}


def hub_offline():
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def load_model(model_id, device):
    try:
        import transformers
    except ImportError as exc:
        raise ImportError("bits_per_char config 'texts' needs torch and transformers: "
                          "pip install torch transformers") from exc
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_id)
        model = transformers.AutoModelForCausalLM.from_pretrained(model_id)
    except (OSError, ValueError) as exc:
        if os.path.isdir(model_id):
            raise OSError(f"bits_per_char: cannot load a causal language model from the folder {model_id}: "
                          f"{exc}") from exc
        offline = " (HF_HUB_OFFLINE is set, so nothing is downloaded)" if hub_offline() else ""
        raise OSError(f"bits_per_char: model {model_id!r} is not a local folder, not in the local Hugging Face "
                      f"cache, and could not be downloaded{offline} ({type(exc).__name__}). On a machine with "
                      f"internet run `hf download {model_id} --local-dir <folder>`, then pass model_id=<folder>."
                      ) from exc
    return model.to(device).eval(), tokenizer


def plain_ids(tokenizer, text):
    """Token ids of plain text: no BOS/EOS added, and special-token strings in it stay ordinary text."""
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


def context_ids(tokenizer, prompt):
    """What a text is scored after: its prompt as the tokenizer starts an input (with BOS if the tokenizer
    adds one); without a prompt, the start token alone, so that the text's first token is predicted too."""
    if prompt:
        ids = tokenizer(prompt, split_special_tokens=True)["input_ids"]
        if ids:
            return ids
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if start is None:
        raise ValueError("bits_per_char: the tokenizer has neither a BOS nor an EOS token, so a text without a "
                         "prompt has nothing to be scored after; pass prompts")
    return [start]


def fit_context(context, target, limit, index):
    """Keep the end of the context when context + text exceed the model's positions; a text that alone does
    not fit is refused rather than silently scored in part."""
    if limit is None or len(context) + len(target) <= limit:
        return context
    if len(target) + 1 > limit:
        raise ValueError(f"bits_per_char: text {index} has {len(target)} tokens, more than the model's "
                         f"{limit} positions allow; split it into shorter texts")
    return context[len(context) + len(target) - limit:]


def summed_nll(model, rows, batch_size, device):
    """Summed NLL (nats) of each row's target ids given its context ids; rows are (context, target) pairs."""
    import torch
    import torch.nn.functional as F
    from torch.nn.utils.rnn import pad_sequence

    result = [0.0] * len(rows)
    # Longest first, so a batch holds similar lengths and little padding.
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]) + len(rows[i][1]), reverse=True)
    for start in range(0, len(order), batch_size):
        chosen = order[start: start + batch_size]
        pairs = [rows[i] for i in chosen]
        # Right padding keeps every row's positions 0..n-1; -100 marks what is not scored (context, padding).
        ids = pad_sequence([torch.tensor(c + t) for c, t in pairs], batch_first=True)
        mask = pad_sequence([torch.ones(len(c) + len(t), dtype=torch.long) for c, t in pairs], batch_first=True)
        labels = pad_sequence([torch.tensor([-100] * len(c) + t) for c, t in pairs], batch_first=True,
                              padding_value=-100)
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        # The logits at position p predict the token at p + 1.
        losses = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), labels[:, 1:].to(device),
                                 ignore_index=-100, reduction="none")
        for row, index in enumerate(chosen):
            result[index] = float(losses[row].double().sum())
    return result


def score_texts(predictions, model_id=None, prompts=None, batch_size=8, device=None):
    if not model_id:
        raise ValueError("bits_per_char config 'texts' needs model_id: a local model folder or a hub id")
    if prompts is not None and len(prompts) != len(predictions):
        raise ValueError(f"bits_per_char: {len(prompts)} prompts for {len(predictions)} texts")
    if not predictions:
        return corpus_scores([], [], [])
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = load_model(model_id, device)
    limit = getattr(model.config, "max_position_embeddings", None)
    rows = []
    for index, text in enumerate(predictions):
        target = plain_ids(tokenizer, text)
        context = context_ids(tokenizer, prompts[index] if prompts is not None else None)
        rows.append((fit_context(context, target, limit, index), target))
    logger.info("bits_per_char: scoring %d texts with %s on %s", len(rows), model_id, device)
    nll = summed_nll(model, rows, int(batch_size), device)
    return corpus_scores(nll, [len(t) for t in predictions], [len(target) for _, target in rows])


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class BitsPerChar(evaluate.Metric):
    def _info(self):
        if self.config_name in NLL_CONFIGS:
            features = datasets.Features({"nll_nats": datasets.Value("float64"),
                                          "characters": datasets.Value("int64"),
                                          "tokens": datasets.Value("int64")})
        elif self.config_name == TEXTS_CONFIG:
            features = datasets.Features({"predictions": datasets.Value("string")})
        else:
            raise ValueError(f"bits_per_char: unknown config {self.config_name!r}; use 'nll' (the default: "
                             f"nll_nats, characters, tokens) or 'texts' (predictions, model_id)")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=features,
        )

    def _compute(self, **inputs):
        if self.config_name == TEXTS_CONFIG:
            return score_texts(**inputs)
        extra = sorted(set(inputs) - {"nll_nats", "characters", "tokens"})
        if extra:  # e.g. model_id passed to the default config: say which config takes it
            raise ValueError(f"bits_per_char config {self.config_name!r} takes nll_nats, characters and tokens, "
                             f"not {extra}; to score texts with a model load the 'texts' config")
        return corpus_scores(**inputs)
