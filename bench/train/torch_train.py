#!/usr/bin/python3
"""The PyTorch side of the training benchmark: the same GPT shape as tessera
(pre-norm LayerNorm, learned positions, GELU, tied output, AdamW, fp32), fed
uniform random tokens, timed per iteration after warm-up.

  torch_train.py LAYERS HIDDEN HEADS VOCAB SEQ MICRO_BATCH ITERS THREADS [PRECISION]
prints "torch_tokens_per_second <value>". PRECISION is fp32 (the default:
plain fp32 throughout) or bf16: forward and loss under
torch.autocast("cpu", dtype=torch.bfloat16), so the matrix products run in
bf16 and autocast's fp32 ops stay fp32; weights, gradients and AdamW stay
fp32, backward runs outside the autocast region as PyTorch recommends.
"""
import contextlib
import sys
import time

import torch


class Block(torch.nn.Module):
    def __init__(self, h, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = torch.nn.LayerNorm(h)
        self.qkv = torch.nn.Linear(h, 3 * h)
        self.proj = torch.nn.Linear(h, h)
        self.ln2 = torch.nn.LayerNorm(h)
        self.fc1 = torch.nn.Linear(h, 4 * h)
        self.fc2 = torch.nn.Linear(4 * h, h)

    def forward(self, x):
        b, t, h = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, h // self.heads).unbind(2)
        a = torch.nn.functional.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True) \
            if hasattr(torch.nn.functional, "scaled_dot_product_attention") else \
            self.attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, h))
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln2(x)), approximate="tanh"))

    @staticmethod
    def attention(q, k, v):
        t = q.shape[-2]
        s = (q @ k.transpose(-1, -2)) / (q.shape[-1] ** 0.5)
        s = s.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf"))
        return s.softmax(-1) @ v


class GPT(torch.nn.Module):
    def __init__(self, layers, h, heads, vocab, seq):
        super().__init__()
        self.wte = torch.nn.Embedding(vocab, h)
        self.wpe = torch.nn.Embedding(seq, h)
        self.blocks = torch.nn.ModuleList([Block(h, heads) for _ in range(layers)])
        self.lnf = torch.nn.LayerNorm(h)

    def forward(self, tokens, targets):
        x = self.wte(tokens) + self.wpe(torch.arange(tokens.shape[1]))[None]
        for blk in self.blocks:
            x = blk(x)
        logits = self.lnf(x) @ self.wte.weight.T
        return torch.nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def main():
    layers, h, heads, vocab, seq, mb, iters, threads = map(int, sys.argv[1:9])
    precision = sys.argv[9] if len(sys.argv) > 9 else "fp32"
    if precision not in ("fp32", "bf16"):
        sys.exit(f"torch_train.py: precision {precision!r} is neither fp32 nor bf16")
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" \
        else contextlib.nullcontext
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = GPT(layers, h, heads, vocab, seq)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for i in range(iters + 2):
        tokens = torch.randint(0, vocab, (mb, seq))
        targets = torch.randint(0, vocab, (mb, seq))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = model(tokens, targets)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    steady = sorted(times[2:])[len(times[2:]) // 2]  # median after 2 warm-up steps
    print(f"torch_tokens_per_second {mb * seq / steady:.1f}")


if __name__ == "__main__":
    main()
