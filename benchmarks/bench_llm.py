"""Real-LLM benchmark: our Llama (utils.llama) vs transformers' LlamaForCausalLM, same SmolLM2-135M weights.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_llm.py

Three figures, each side by side in one process, alternating ours / theirs round by round so that a busy
machine slows both (median of the rounds):

- prefill: tokens per second of one forward pass over a 256-token prompt (logits of the last position only,
  as generation needs);
- decode: tokens per second of 32 greedy steps with a KV cache after that prompt (the prefill not timed),
  each side's own cache (our ``KVCache``, transformers' ``DynamicCache``) in a plain loop;
- generate: end to end, ``Llama.generate`` vs ``generate(do_sample=False)``, 32 new tokens.

Ratios > 1 mean ours is faster. The aim is ours >= 0.9x.
"""

from __future__ import annotations

import statistics
import time

import torch


def main(rounds: int = 5, prompt_len: int = 256, new_tokens: int = 32) -> None:
    from transformers import DynamicCache

    from utils.env import set_online
    from utils.llama import KVCache, from_hf
    from utils.llm import held_out_text, load_smollm2

    set_online(False)
    torch.manual_seed(0)
    tokenizer, hf = load_smollm2()
    ours = from_hf(hf)
    ids = tokenizer(held_out_text(), return_tensors="pt").input_ids[:, :prompt_len]  # (1, 256)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); SmolLM2-135M-Instruct float32; "
          f"prompt {ids.shape[1]} tokens, {new_tokens} new tokens, median of {rounds} alternating rounds\n")

    @torch.no_grad()
    def prefill(model_is_ours: bool) -> float:
        start = time.perf_counter()
        if model_is_ours:
            ours(ids, last_only=True)
        else:
            hf(ids, logits_to_keep=1)
        return ids.shape[1] / (time.perf_counter() - start)

    @torch.no_grad()
    def decode(model_is_ours: bool) -> float:
        if model_is_ours:
            cache = KVCache(ours.config.n_layer)
            nxt = ours(ids, cache=cache, last_only=True)[:, -1].argmax(-1, keepdim=True)
            start = time.perf_counter()
            for _ in range(new_tokens):
                nxt = ours(nxt, cache=cache)[:, -1].argmax(-1, keepdim=True)
        else:
            cache = DynamicCache(config=hf.config)
            nxt = hf(ids, past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1].argmax(-1, keepdim=True)
            start = time.perf_counter()
            for _ in range(new_tokens):
                nxt = hf(nxt, past_key_values=cache, use_cache=True).logits[:, -1].argmax(-1, keepdim=True)
        return new_tokens / (time.perf_counter() - start)

    @torch.no_grad()
    def generate(model_is_ours: bool) -> float:
        start = time.perf_counter()
        if model_is_ours:
            out = ours.generate(ids, new_tokens, greedy=True)
        else:
            out = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                              min_new_tokens=new_tokens, do_sample=False)
        return (out.shape[1] - ids.shape[1]) / (time.perf_counter() - start)

    print(f"{'':10}{'ours tok/s':>12}{'transformers':>14}{'ours / theirs':>15}")
    for name, fn in (("prefill", prefill), ("decode", decode), ("generate", generate)):
        fn(True), fn(False)  # warm-up
        mine, theirs = [], []
        for _ in range(rounds):
            mine.append(fn(True))
            theirs.append(fn(False))
        a, b = statistics.median(mine), statistics.median(theirs)
        print(f"{name:10}{a:>12.1f}{b:>14.1f}{a / b:>14.2f}x", flush=True)


if __name__ == "__main__":
    main()
