"""The three callbacks on a torch FSDP2 (fully_shard) LoRA model, called with the Trainer's callback arguments.

Launched by tests/train/test_fsdp.py under `torchrun --nproc_per_node 2` (gloo, CPU), and once as a plain process for
the unsharded reference: argv = MODEL_DIR OUT_DIR. Every rank runs the events in the Trainer's order
(train begin, evaluate at step 2, save at step 2, train end); the HF Trainer itself cannot reach FSDP on CPU
(accelerate falls back to DDP there), so the model is sharded here as accelerate's FSDP2 plugin shards it:
each decoder layer, then the root model.
"""

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def build(model_dir: str):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(model_dir),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0),
    )
    for name, param in model.named_parameters():
        if "lora_B" in name:  # a non-zero adapter, so the outputs and the saved weights depend on it
            param.data.normal_(0, 0.5)
    return model, AutoTokenizer.from_pretrained(model_dir)


def main(argv: list[str] | None = None) -> None:
    """Run as a script (argv from the command line), or in a test's process for the unsharded reference."""
    import torch.distributed as dist
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from rewardkit import get_callback
    from rewardkit.callbacks import link_callbacks

    model_dir, out = sys.argv[1:3] if argv is None else argv
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = os.environ.get("REWARDKIT_FSDP_DEVICE") == "cuda"
    model, tokenizer = build(model_dir)
    if cuda:
        import torch

        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
        model.to(f"cuda:{torch.cuda.current_device()}")
    if world > 1:
        import torch
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        # NCCL refuses two ranks on one GPU: gloo then (it carries CUDA tensors through host copies).
        dist.init_process_group("nccl" if cuda and torch.cuda.device_count() >= world else "gloo")
        mesh = init_device_mesh("cuda" if cuda else "cpu", (world,))
        for layer in model.base_model.model.model.layers:
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
    rank = dist.get_rank() if world > 1 else 0
    # 7 rows over 2 ranks: shards of 4 and 3, so the padding keeps the generate calls equal; some prompts are
    # chat messages of different lengths, so ranks stop at different tokens.
    val = [{"id": f"v{i}", "prompt": f"{i} plus {i * 7 % 5} is" + " x" * (i % 3), "answer": str(i)} for i in range(7)]
    callbacks = link_callbacks(
        [
            get_callback("lora_save"),
            get_callback(
                "checkpoint_inference", dataset=val, reference_columns=["answer"], max_new_tokens=8, batch_size=2
            ),
            get_callback("best_checkpoint", spec={"rewards": {"em": {"use": "exact_match"}}}),
        ]
    )
    args = TrainingArguments(
        output_dir=out,
        use_cpu=not cuda,
        report_to="none",
        eval_strategy="steps",
        save_strategy="steps",
        eval_steps=2,
        save_steps=2,
    )
    state = TrainerState()
    state.is_world_process_zero = state.is_local_process_zero = rank == 0
    control = TrainerControl()
    kwargs = {"model": model, "processing_class": tokenizer}
    for cb in callbacks:
        cb.on_train_begin(args, state, control, **kwargs)
    state.global_step, state.epoch = 2, 1.0
    metrics: dict = {"eval_loss": 1.0}
    for cb in callbacks:
        cb.on_evaluate(args, state, control, metrics=metrics, **kwargs)
    for cb in callbacks:
        cb.on_save(args, state, control, **kwargs)
    for cb in callbacks:
        cb.on_train_end(args, state, control, **kwargs)
    print(f"RANK {rank} eval_score={metrics.get('eval_score')}", flush=True)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
