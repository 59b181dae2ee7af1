"""Instruction tuning on the book's own material: "which part of the book explains this sentence?"

Explained in chapter 4, "LoRA: instruction-tuning a real LLM". The task reuses the sentence-topic
data of :mod:`utils.topics` (the book's glossary definitions and FAQ answers, labelled with the part
of the book that explains them; 111 training and 46 held-out sentences, a fixed split): the prompt
is a chat turn with a short system instruction, the answer is the topic's name followed by the
end-of-turn token. Training computes the loss on the answer tokens only (the prompt's labels are
-100). The held-out score is the exact-match accuracy of the
greedy answer; chance is 1 in 5.

Shapes: B examples, T tokens (padded), V vocabulary.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated

import torch
from torch import nn
from tqdm.auto import tqdm

from utils._validate import NonNegInt, OneOf, PosInt, Tensor, Texts, check, checked
from utils.llm import ChatTokenizer, chat_prompt
from utils.topics import TOPICS, load_topic_rows

__all__ = ["TOPIC_SYSTEM", "topic_prompt", "topic_split", "tokenize_examples", "collate", "answer_loss",
           "generate_answers", "topic_accuracy", "adapter_dir", "load_topic_adapter"]

TOPIC_SYSTEM = ("Name the part of the book that explains the sentence: foundations, training, cnn, "
                "attention-transformers or applications. Answer with the name only.")
IGNORE = -100
Examples = Annotated[Sequence[tuple[list[int], list[int]]], "a list of (input_ids, labels) pairs from tokenize_examples"]
Batch = Annotated[Mapping[str, Tensor], "a collate() batch: input_ids, attention_mask and labels, each (B, T)"]


@checked
def topic_prompt(tokenizer: ChatTokenizer, sentence: str) -> str:
    """The chat-formatted prompt for one sentence (system instruction + user turn + start of the answer)."""
    check(sentence != "", "sentence", "a non-empty string", repr(sentence))
    return chat_prompt(tokenizer, sentence, system=TOPIC_SYSTEM)


@checked
def topic_split(split: OneOf("train", "test")) -> tuple[list[str], list[str]]:
    """``(sentences, topic names)`` of the ``"train"`` (111) or ``"test"`` (46, held out) split."""
    rows = [r for r in load_topic_rows() if r["split"] == split]
    return [r["text"] for r in rows], [r["label"] for r in rows]


@checked
def tokenize_examples(tokenizer: ChatTokenizer, sentences: Texts, answers: Texts) -> list[tuple[list[int], list[int]]]:
    """``(input_ids, labels)`` per example: prompt + answer + end-of-turn token; labels are -100 on
    the prompt, so only the answer is learned."""
    check(len(answers) == len(sentences), "answers", f"one per sentence ({len(sentences)})", len(answers))
    out = []
    for sentence, answer in zip(sentences, answers):
        prompt = tokenizer(topic_prompt(tokenizer, sentence), add_special_tokens=False).input_ids
        target = tokenizer(answer, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]  # <|im_end|>
        out.append((prompt + target, [IGNORE] * len(prompt) + target))
    return out


@checked
def collate(examples: Examples, pad_id: NonNegInt) -> dict[str, torch.Tensor]:
    """Right-pad a batch: ``input_ids``, ``attention_mask`` and ``labels``, each ``(B, T)``."""
    check(len(examples) > 0 and all(len(x) == len(y) > 0 for x, y in examples), "examples",
          "a non-empty list of (input_ids, labels) pairs of equal, non-zero lengths", len(examples))
    T = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), T), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), T), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), T), dtype=torch.long)
    for i, (x, y) in enumerate(examples):
        ids[i, :len(x)], labels[i, :len(y)], mask[i, :len(x)] = torch.tensor(x), torch.tensor(y), 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


@checked
def answer_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Mean cross-entropy (nats) of the answer tokens of a :func:`collate` batch: position t predicts
    ``labels[:, t + 1]``, and -100 marks the prompt and the padding.

    ``model`` is a ``transformers`` Llama, with or without a ``peft`` adapter. The 49,152-way head is
    applied only at the few answer positions (about 4 per example, not ~70): same loss as
    ``cross_entropy(model(...).logits[:, :-1], labels[:, 1:], ignore_index=-100)``, a fraction of the cost.
    """
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model  # unwrap peft (LoRA stays inside)
    check(hasattr(lm, "lm_head") and hasattr(lm, "model"), "model", "a transformers causal LM (or a peft model of one)",
          type(model).__name__)
    check({"input_ids", "attention_mask", "labels"} <= set(batch), "batch",
          "a collate() batch with input_ids, attention_mask and labels", sorted(batch))
    hidden = lm.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    targets = batch["labels"][:, 1:]  # (B, T - 1)
    keep = targets != IGNORE
    logits = lm.lm_head(hidden[:, :-1][keep])  # (n answer tokens, V)
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep])


@torch.no_grad()
@checked
def generate_answers(model: nn.Module, tokenizer: ChatTokenizer, sentences: Texts, *, batch_size: PosInt = 16,
                     max_new_tokens: PosInt = 6, progress: bool = True) -> list[str]:
    """Greedy answers of a ``transformers`` causal LM (with or without a ``peft`` adapter), batched
    with left padding (prompts sorted by length), cut at the end-of-turn token and stripped. Six new
    tokens hold the longest topic name (``attention-transformers`` is four tokens) and the end of turn."""
    device = next(model.parameters()).device
    prompts = [topic_prompt(tokenizer, s) for s in sentences]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths together: less padding
    side, tokenizer.padding_side = tokenizer.padding_side, "left"  # generation continues at the right edge
    answers: dict[int, str] = {}
    try:
        for start in tqdm(range(0, len(order), batch_size), desc="answering", disable=not progress):
            chunk = order[start:start + batch_size]
            batch = tokenizer([prompts[i] for i in chunk], return_tensors="pt", padding=True,
                              add_special_tokens=False).to(device)
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            new = out[:, batch["input_ids"].shape[1]:]  # (B, new tokens)
            for i, row in zip(chunk, new):
                answers[i] = tokenizer.decode(row, skip_special_tokens=True).strip()
    finally:
        tokenizer.padding_side = side
    return [answers[i] for i in range(len(prompts))]


@checked
def topic_accuracy(answers: Texts, labels: Texts) -> float:
    """Fraction of answers equal to the topic name (case and surrounding punctuation ignored)."""
    check(len(labels) == len(answers), "labels", f"one per answer ({len(answers)})", len(labels))
    unknown = [y for y in labels if y not in TOPICS]
    check(not unknown, "labels", f"topic names {TOPICS}", f"unknown topic(s) {unknown[:3]}")
    return sum(a.lower().strip(" .'\"`*") == y for a, y in zip(answers, labels)) / len(labels)


def adapter_dir() -> Path:
    """Folder of the LoRA adapter this project trained on the task (``tools/train_lora_adapter.py``):
    ``adapter_model.safetensors``, ``adapter_config.json`` (``peft``'s format) and ``training.json``."""
    return Path(str(resources.files("utils") / "resources" / "smollm2_topic_lora"))


@checked
def load_topic_adapter(model: nn.Module):
    """``(peft_model, facts)``: ``model`` (SmolLM2 from :func:`utils.llm.load_smollm2`) wrapped with the
    shipped adapter by ``peft.PeftModel.from_pretrained`` (weights read with safetensors), and the
    training facts the script recorded. ``peft_model.disable_adapter()`` gives the base model back."""
    from peft import PeftModel

    folder = adapter_dir()
    if not (folder / "adapter_model.safetensors").is_file():
        raise FileNotFoundError(f"no adapter in {folder}; run: python tools/train_lora_adapter.py")
    facts = json.loads((folder / "training.json").read_text())
    with warnings.catch_warnings():  # peft 0.21 calls a transformers 5 method that now warns; nothing to act on
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return PeftModel.from_pretrained(model, str(folder)).eval(), facts
