"""TensorFlow GPT-2 checkpoints as `python -m conversion` reads them, written by our own BundleWriter (tiny shapes)."""
from __future__ import annotations

import json

import numpy as np
from transformers.convert_slow_tokenizer import bytes_to_unicode

from conversion.bundle_writer import BundleWriter, write_checkpoint_state
from conversion.gpt2_mapping import HParams, weight_map

HP = HParams(n_vocab=260, n_ctx=32, n_embd=16, n_head=2, n_layer=2)


def make_checkpoint(folder, *, num_shards=1, dtype=np.float32, optimizer=False, drop=None, reshape=None,
                    hparams=None, seed=0):
    """A GPT-2-shaped TF checkpoint written by our BundleWriter, with a byte-level BPE vocabulary."""
    folder.mkdir(parents=True, exist_ok=True)
    byte_tokens = list(bytes_to_unicode().values())
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he")]
    encoder = {tok: i for i, tok in enumerate(byte_tokens + ["".join(m) for m in merges] + ["<|endoftext|>"])}
    (folder / "encoder.json").write_text(json.dumps(encoder))
    (folder / "vocab.bpe").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    (folder / "hparams.json").write_text(json.dumps(hparams or HP.__dict__))
    rng = np.random.default_rng(seed)
    with BundleWriter(folder / "model-7", num_shards=num_shards) as writer:
        for name, (_, shape) in weight_map(HP).items():
            if name == drop:
                continue
            value = rng.normal(1.0 if name.endswith("/g") else 0.0, 0.2, reshape if name == "model/wpe" and reshape
                               else shape)
            writer.add(name, value.astype(dtype))
            if optimizer:
                writer.add(f"{name}/Adam", np.zeros(shape, np.float32))
                writer.add(f"{name}/Adam_1", np.zeros(shape, np.float32))
        if optimizer:
            writer.add("beta1_power", np.array(0.9, np.float32))
            writer.add("beta2_power", np.array(0.999, np.float32))
            writer.add("global_step", np.array(7, np.int64))
    write_checkpoint_state(folder, "model-7")
    return folder
