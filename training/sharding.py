"""FSDP on CPU processes: accelerate only shards models on accelerators (on CPUs it silently falls back to DDP),
so for `trainer_args.fsdp` under torchrun on CPUs (gloo) the Trainer's accelerator is switched to FSDP before
training. The same FSDP2 code path then runs as on GPUs: parameters sharded per GPT2Block, all-gathered per
forward, gradients reduce-scattered. That is what lets `make test` run the shipped FSDP preset on 2 CPU processes.
"""
from __future__ import annotations

import logging
import os

from transformers import TrainerCallback

log = logging.getLogger(__name__)


class AgreeOnBestCheckpoint(TrainerCallback):
    """After each save, every rank records the same best checkpoint. The Trainer only waits for rank 0's save
    before looking for it when the processes are on GPUs; on CPUs a fast rank 1 may not see it yet, skip loading
    the best model at the end, and leave rank 0 alone in FSDP's collective load: a hang."""

    def on_save(self, args, state, control, **kwargs):
        import torch.distributed as dist

        dist.barrier()
        if state.best_global_step:
            best = os.path.join(args.output_dir, f"checkpoint-{state.best_global_step}")
            state.best_model_checkpoint = best if os.path.isdir(best) else state.best_model_checkpoint


def shard_on_cpu(trainer) -> None:
    """Turn FSDP on for a Trainer whose accelerator left it off because the processes run on CPUs."""
    import torch
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    args = trainer.args
    if not args.fsdp_plugin_args or trainer.is_fsdp_enabled or torch.cuda.is_available() or args.world_size < 2:
        return
    state = trainer.accelerator.state
    state.fsdp_plugin = FullyShardedDataParallelPlugin(**args.fsdp_plugin_args)
    state.distributed_type = DistributedType.FSDP
    trainer.is_fsdp_enabled = True
    trainer.add_callback(AgreeOnBestCheckpoint())
    log.info("FSDP%d on %d CPU processes (gloo): %s", state.fsdp_plugin.fsdp_version, args.world_size,
             state.fsdp_plugin.auto_wrap_policy)


def save_full_model(trainer, staging, is_main: bool) -> None:
    """The published folder holds whole weights whatever the checkpoints' state_dict_type: every rank takes part in
    gathering the full state dict (to CPU), rank 0 writes it as an ordinary model folder."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(trainer.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if is_main:
        model = trainer.accelerator.unwrap_model(trainer.model)
        model.save_pretrained(str(staging), state_dict=state)
        trainer.processing_class.save_pretrained(str(staging))
