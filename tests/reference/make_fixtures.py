#!/usr/bin/python3
"""Writes the PyTorch reference fixtures for tessera's single-rank model.

For each preset (gpt2, llama, gpt2_lora, llama_lora, moe, moe_capacity,
moe_variants) it runs tessera's dump tool to get the initial
weights, the config and the micro batches of every step (HDF5), rebuilds the
same model in PyTorch (float64), and writes tests/reference/fixtures/<preset>.h5
holding the inputs plus what tessera must reproduce:
  logits      (B*T, vocab) of micro batch 0 of step 1, before any update
  loss        mean masked cross-entropy of that micro batch
  grads/NAME  every parameter's gradient of step 1 (2 micro batches accumulated)
  grad_norm   global gradient norm of step 1
  losses      the loss of each of the 10 AdamW steps (warmup + cosine, weight
              decay, clipping), as tessera logs it
The LoRA presets train only the adapters (y = x W^T + b + scale x A^T B^T
on the adapted linears, everything else frozen): their B matrices, zero
at tessera's initialisation, are replaced by random ones written into the
fixture's weights (the test loads them), so every adapter gradient is
non-zero at step 1; grads/ holds the adapters' only.
The moe preset's gradients and AdamW steps are those of the lm loss plus
its MoE layers' load-balancing and z-losses (self.aux); `loss` and
`losses` are the lm loss, as tessera logs it.

Usage (from the repository root, after building):
  /usr/bin/python3 tests/reference/make_fixtures.py build/tests/reference/dump_reference_inputs [PRESET...]
Needs Debian's python3-torch and python3-h5py; CI never runs it.
"""
import math
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))


def cfg_of(f):
    return {k: float(v) for k, v in f["config"].attrs.items()}


class Reference:
    """The GPT/LLaMA-style decoder as tessera defines it (docs in models/gpt.h)."""

    def __init__(self, cfg, weights):
        self.c = cfg
        self.trained = [k for k in weights if cfg.get("lora_rank", 0) == 0 or ".lora_" in k]
        self.p = {k: torch.tensor(v, requires_grad=k in self.trained) for k, v in weights.items()}

    def norm(self, x, prefix):
        w = self.p[prefix + ".weight"]
        eps = self.c["norm_epsilon"]
        if self.c["layernorm"]:
            return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, self.p[prefix + ".bias"], eps)
        rms = torch.rsqrt((x * x).mean(-1, keepdim=True) + eps)
        return x * rms * w

    def linear(self, x, prefix):
        b = self.p.get(prefix + ".bias")
        y = torch.nn.functional.linear(x, self.p[prefix + ".weight"], b)
        a = self.p.get(prefix + ".lora_A.weight")
        if a is not None:
            y = y + self.c["lora_scale"] * (x @ a.T) @ self.p[prefix + ".lora_B.weight"].T
        return y

    def rope(self, x, t):
        # x (B, T, H, D); rotate-half pairs (i, i + D/2)
        d = x.shape[-1]
        inv = self.c["rotary_base"] ** (-torch.arange(0, d // 2, dtype=torch.float64) * 2.0 / d)
        ang = torch.arange(t, dtype=torch.float64)[:, None] * inv[None, :]
        cos = torch.cat([ang.cos(), ang.cos()], -1)[None, :, None, :]
        sin = torch.cat([ang.sin(), ang.sin()], -1)[None, :, None, :]
        x1, x2 = x[..., : d // 2], x[..., d // 2:]
        rot = torch.cat([-x2, x1], -1)
        return x * cos + rot * sin

    def act(self, f):
        if self.c["swiglu"]:
            gate, up = f.chunk(2, -1)
            return torch.nn.functional.silu(gate) * up
        return torch.nn.functional.gelu(f, approximate="tanh")

    def moe(self, h, pre):
        """Router top-k over E experts (softmax over the chosen logits, or
        top-k of the softmax), a shared expert, and the balancing (E sum_i
        P_i f_i) and z-losses, as tessera's moe.c defines them."""
        c = self.c
        shape = h.shape
        x = h.reshape(-1, shape[-1])
        n, C = x.shape
        E, k, F = int(c["moe_experts"]), int(c["moe_topk"]), int(c["moe_ffn"])
        F1 = 2 * F if c["swiglu"] else F
        logits = x @ self.p[pre + "router.weight"].T
        probs = logits.softmax(-1)
        if c["moe_pre_softmax"]:
            w, idx = probs.topk(k, -1)
        else:
            s, idx = logits.topk(k, -1)
            w = s.softmax(-1)
        if c.get("moe_capacity", 0.0) > 0.0:
            # each expert keeps its ceil(factor n k / E) most probable (or
            # first) assignments; the balancing loss below sees them all
            cap = max(1, math.ceil(c["moe_capacity"] * n * k / E))
            keep = torch.zeros(n, k, dtype=torch.bool)
            wd = w.detach()
            for e in range(E):
                rows, cols = (idx == e).nonzero(as_tuple=True)
                a = (rows * k + cols).tolist()
                if c.get("moe_drop_position", 0.0):
                    chosen = sorted(a)[:cap]
                else:
                    chosen = sorted(a, key=lambda q: (-float(wd[q // k, q % k]), q))[:cap]
                for q in chosen:
                    keep[q // k, q % k] = True
            self.dropped += int((~keep).sum())
            w = w * keep
        w1 = self.p[pre + "experts.linear_fc1.weight"].view(E, F1, C)
        w2 = self.p[pre + "experts.linear_fc2.weight"].view(E, C, F)
        out = torch.zeros_like(x)
        for e in range(E):
            rows, cols = (idx == e).nonzero(as_tuple=True)
            if len(rows) == 0:
                continue
            y = self.act(x[rows] @ w1[e].T) @ w2[e].T
            out = out.index_add(0, rows, w[rows, cols, None] * y)
        if pre + "shared_experts.linear_fc1.weight" in self.p:
            out = out + self.act(x @ self.p[pre + "shared_experts.linear_fc1.weight"].T) @ \
                self.p[pre + "shared_experts.linear_fc2.weight"].T
        if c.get("moe_seq_aux", 0.0):
            # per sequence (rows b T .. b T + T - 1), averaged over the B sequences
            B = shape[0]
            ps, ids = probs.view(B, -1, E), idx.view(B, -1, k)
            aux = 0.0
            for b in range(B):
                cb = torch.bincount(ids[b].flatten(), minlength=E).to(probs.dtype)
                aux = aux + (ps[b].mean(0) * cb / (ps.shape[1] * k)).sum()
            aux = c["moe_aux_coeff"] * E * aux / B
        else:
            counts = torch.bincount(idx.flatten(), minlength=E).to(probs.dtype)
            aux = c["moe_aux_coeff"] * E * (probs.mean(0) * counts / (n * k)).sum()
        z = c["moe_z_coeff"] * (torch.logsumexp(logits, -1) ** 2).mean()
        return out.view(shape), aux + z

    def logits(self, tokens):
        c = self.c
        self.aux = torch.zeros((), dtype=torch.float64)
        self.dropped = 0
        B, T = tokens.shape
        C, H, G = int(c["hidden_size"]), int(c["num_attention_heads"]), int(c["num_query_groups"])
        D, R = C // H, H // G
        x = self.p["embedding.word_embeddings.weight"][tokens]
        if not c["rope"]:
            x = x + self.p["embedding.position_embeddings.weight"][:T][None]
        for l in range(int(c["num_layers"])):
            pre = f"decoder.layers.{l}."
            h = self.norm(x, pre + "input_layernorm")
            qkv = self.linear(h, pre + "self_attention.linear_qkv").view(B, T, G, R + 2, D)
            q = qkv[:, :, :, :R, :].reshape(B, T, H, D)
            k = qkv[:, :, :, R, :]
            v = qkv[:, :, :, R + 1, :]
            if c["rope"]:
                q, k = self.rope(q, T), self.rope(k, T)
            k = k.repeat_interleave(R, dim=2)
            v = v.repeat_interleave(R, dim=2)
            s = torch.einsum("bihd,bjhd->bhij", q, k) / math.sqrt(D)
            s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
            a = torch.einsum("bhij,bjhd->bihd", s.softmax(-1), v).reshape(B, T, C)
            x = x + self.linear(a, pre + "self_attention.linear_proj")
            h = self.norm(x, pre + "pre_mlp_layernorm")
            if pre + "mlp.router.weight" in self.p:
                y, aux = self.moe(h, pre + "mlp.")
                x = x + y
                self.aux = self.aux + aux
            else:
                x = x + self.linear(self.act(self.linear(h, pre + "mlp.linear_fc1")),
                                    pre + "mlp.linear_fc2")
        x = self.norm(x, "decoder.final_layernorm")
        w = self.p["output_layer.weight" if c["untied"] else "embedding.word_embeddings.weight"]
        return (x @ w[: int(c["vocab_size"])].T).reshape(B * T, -1)

    def loss(self, tokens, targets, mask):
        """The lm loss (what tessera logs) and the logits; self.aux holds the
        MoE layers' own loss terms, which the gradient counts too."""
        lg = self.logits(tokens)
        per = torch.nn.functional.cross_entropy(lg, targets.reshape(-1), reduction="none")
        m = mask.reshape(-1)
        return (per * m).sum() / m.sum(), lg


def lr_at(c, it):
    lr, min_lr, warm, total = c["lr"], c["min_lr"], c["lr_warmup_iters"], c["train_iters"]
    if warm > 0 and it <= warm:
        return lr * it / warm
    ratio = (it - warm) / (total - warm)
    return min_lr + 0.5 * (math.cos(math.pi * ratio) + 1.0) * (lr - min_lr)


def step_grads(model, batches, step):
    tokens, targets, mask = batches
    for k in model.trained:
        model.p[k].grad = None
    per_step = tokens.shape[1]
    total = 0.0
    for m in range(per_step):
        loss, _ = model.loss(torch.tensor(tokens[step, m]).long(), torch.tensor(targets[step, m]).long(),
                             torch.tensor(mask[step, m]))
        ((loss + model.aux) / per_step).backward()
        total += loss.item()
    return total / per_step


def make(preset, dump_tool, out_dir):
    with tempfile.TemporaryDirectory() as tmp:
        inputs = os.path.join(tmp, "inputs.h5")
        subprocess.run([dump_tool, preset, inputs], check=True)
        with h5py.File(inputs, "r") as f:
            c = cfg_of(f)
            weights = {k: np.array(v, dtype=np.float64) for k, v in f["weights"].items()}
            batches = (np.array(f["tokens"]), np.array(f["targets"]), np.array(f["mask"]))
            raw_weights = {k: np.array(v) for k, v in f["weights"].items()}
    rng = np.random.default_rng(7)
    for k in sorted(raw_weights):
        if k.endswith(".lora_B.weight"):
            raw_weights[k] = (0.05 * rng.standard_normal(raw_weights[k].shape)).astype(np.float32)
            weights[k] = raw_weights[k].astype(np.float64)
    model = Reference(c, weights)
    tokens, targets, mask = batches

    loss0, logits0 = model.loss(torch.tensor(tokens[0, 0]).long(), torch.tensor(targets[0, 0]).long(),
                                torch.tensor(mask[0, 0]))
    step_grads(model, batches, 0)
    grads = {k: model.p[k].grad.detach().numpy().copy() for k in model.trained}
    grad_norm = math.sqrt(sum(float((g * g).sum()) for g in grads.values()))

    decay = {k: (k.endswith(".weight") and "layernorm" not in k) for k in model.trained}
    no_decay = [model.p[k] for k in model.trained if not decay[k]]
    with_decay = [model.p[k] for k in model.trained if decay[k]]
    opt = torch.optim.AdamW([{"params": with_decay, "weight_decay": c["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=c["lr"], betas=(c["adam_beta1"], c["adam_beta2"]), eps=c["adam_eps"])
    losses = []
    for step in range(int(c["train_iters"])):
        losses.append(step_grads(model, batches, step))
        trained = [model.p[k] for k in model.trained]
        norm = math.sqrt(sum(float((p.grad * p.grad).sum()) for p in trained))
        if norm > c["clip_grad"]:
            for p in trained:
                p.grad.mul_(c["clip_grad"] / (norm + 1e-6))
        for group in opt.param_groups:
            group["lr"] = lr_at(c, step + 1)
        opt.step()

    out = os.path.join(out_dir, preset + ".h5")
    with h5py.File(out, "w") as f:
        g = f.create_group("config")
        for k, v in c.items():
            g.attrs[k] = v
        w = f.create_group("weights")
        for k, v in raw_weights.items():
            w.create_dataset(k, data=v.astype(np.float32))
        for name, arr in zip(("tokens", "targets", "mask"), batches):
            f.create_dataset(name, data=arr)
        f.create_dataset("logits", data=logits0.detach().numpy().astype(np.float64))
        f.attrs["loss"] = loss0.item()
        f.attrs["grad_norm"] = grad_norm
        gg = f.create_group("grads")
        for k, v in grads.items():
            gg.create_dataset(k, data=v.astype(np.float64))
        f.create_dataset("losses", data=np.array(losses, dtype=np.float64))
        f.attrs["generator"] = "tests/reference/make_fixtures.py, torch " + torch.__version__
    print(f"{preset}: loss {loss0.item():.6f}, grad norm {grad_norm:.6f}, losses {losses[0]:.4f} -> {losses[-1]:.4f}"
          + (f", {model.dropped} assignments dropped in the last micro batch" if model.dropped else ""))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    os.makedirs(os.path.join(HERE, "fixtures"), exist_ok=True)
    for preset in sys.argv[2:] or ("gpt2", "llama", "gpt2_lora", "llama_lora", "moe",
                                   "moe_capacity", "moe_variants"):
        make(preset, sys.argv[1], os.path.join(HERE, "fixtures"))
