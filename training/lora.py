"""method=lora | qlora: train low-rank adapters (peft) instead of every weight.

    lora   the base model as loaded (fp32 / bf16), frozen; adapters of rank `lora.r` on `lora.target_modules`
    qlora  the base loaded in 4 bit (bitsandbytes NF4, double quantization; CUDA only), the same adapters on top

The published folder is an ordinary model (every stage loads it like any other): the adapters merged into a
freshly loaded full-precision base at its root, and the adapters alone in `adapter/` (peft's format:
`PeftModel.from_pretrained(base, "<folder>/adapter")`). The merge reloads the base rather than merging into the
trained model, so a QLoRA base is never merged in 4 bit and the trainer's model stays as it was.
"""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from adventure.errors import GamioError

log = logging.getLogger(__name__)

ADAPTER_DIR = "adapter"
ADAPTER_METHODS = ("lora", "qlora")


def check_method(method: str) -> None:
    """QLoRA is refused up front (nothing on disk touched) where bitsandbytes' 4-bit kernels cannot run."""
    if method != "qlora":
        return
    import torch

    if not torch.cuda.is_available():
        raise GamioError("method=qlora: the base model is loaded in 4 bit by bitsandbytes, which needs a CUDA GPU, "
                         "and this machine has none; use method=lora (the same adapters on the full-precision "
                         "base) or run on a GPU")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise GamioError("method=qlora needs the bitsandbytes package: `pip install bitsandbytes` "
                         "(or `pip install -e '.[qlora]'`)")


def quantization_config():
    """NF4 with double quantization, computing in bf16 where the GPU has it (the QLoRA paper's recipe)."""
    import torch
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute)


def load_quantized(location: str):
    """The base model in 4 bit on this process' GPU (each DDP rank holds its own copy)."""
    import os

    from transformers import AutoModelForCausalLM

    device = int(os.environ.get("LOCAL_RANK", "0"))
    return AutoModelForCausalLM.from_pretrained(location, quantization_config=quantization_config(),
                                                device_map={"": device})


def add_adapters(model, cfg):
    """`model` wrapped by peft with LoRA adapters per `cfg.lora` (names checked against the model first)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers.pytorch_utils import Conv1D

    lora = cfg.lora
    wanted = [str(m) for m in lora.target_modules]
    layers = {name.rsplit(".", 1)[-1]: module for name, module in model.named_modules()
              if type(module).__name__ in ("Linear", "Conv1D", "Linear4bit")}
    missing = [m for m in wanted if m not in layers]
    if missing or not wanted:
        raise GamioError(f"lora.target_modules={wanted}: the model has no layer named {missing or '(empty list)'}; "
                         f"its linear layers are {sorted(layers)}")
    if cfg.method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=bool(
            cfg.train.gradient_checkpointing))
    config = LoraConfig(r=int(lora.r), lora_alpha=float(lora.alpha), lora_dropout=float(lora.dropout),
                        target_modules=wanted, task_type="CAUSAL_LM", bias="none",
                        # GPT-2 stores its layers transposed (Conv1D): peft must know, or it adapts the wrong side
                        fan_in_fan_out=any(isinstance(layers[m], Conv1D) for m in wanted))
    model = get_peft_model(model, config)
    if cfg.train.gradient_checkpointing:
        model.enable_input_require_grads()  # checkpointed blocks need a grad-requiring input under frozen embeddings
    trainable, total = parameter_counts(model)
    log.info("%s: %s trainable of %s parameters (%.2f%%), rank %d on %s", cfg.method, f"{trainable:,}",
             f"{total:,}", 100 * trainable / total, lora.r, wanted)
    return model


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) parameters; peft counts 4-bit packed weights at their real size."""
    if hasattr(model, "get_nb_trainable_parameters"):
        return tuple(int(n) for n in model.get_nb_trainable_parameters())
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def save_merged(trainer, staging: Path, base_location: str, is_main: bool) -> None:
    """`adapter/` (every rank takes part: FSDP/DeepSpeed gather the adapter weights), then on rank 0 the base,
    reloaded in full precision, with the adapters merged in, at the folder's root."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter = Path(staging) / ADAPTER_DIR
    trainer.save_model(str(adapter))
    if not is_main:
        return
    (adapter / "training_args.bin").unlink(missing_ok=True)
    trained = trainer.accelerator.unwrap_model(trainer.model)
    base_dtype = torch.float32 if getattr(trained, "is_loaded_in_4bit", False) else None
    base = AutoModelForCausalLM.from_pretrained(base_location, dtype=base_dtype)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    merged.generation_config = trained.generation_config
    merged.save_pretrained(str(staging))
    trainer.processing_class.save_pretrained(str(staging))
    log.info("merged the adapters into %s's weights (adapter alone: %s/)", base_location, ADAPTER_DIR)
