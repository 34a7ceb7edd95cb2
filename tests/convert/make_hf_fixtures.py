#!/usr/bin/python3
"""Writes tests/convert/fixtures/hf_export.h5: what Hugging Face's models
compute from the files `tessera convert` exports.

For each test model (hf_test_models.h: gpt2, llama) it runs
dump_hf_export to get model.safetensors + config.json, reads them the way
transformers does (the safetensors header and config.json by hand: no
transformers or safetensors package needed), and runs a plain-PyTorch
transcription of transformers' forward pass in float64:
  gpt2:  GPT2LMHeadModel (Conv1D weights as x @ W + b, c_attn split into
         q | k | v by columns, gelu_new, LayerNorm, tied lm_head)
  llama: LlamaForCausalLM (RMSNorm as LlamaRMSNorm, rotary as
         LlamaRotaryEmbedding + rotate_half, repeat_kv for the key/value
         groups, SiLU-gated MLP, lm_head)
It stores, per model, the token ids (B, T), the logits (B*T, vocab) and the
CRC-32C of the safetensors file it read; test_hf_convert checks that the
export is still byte for byte that file and that tessera's logits equal
these.

Usage (from the repository root, after building):
  /usr/bin/python3 tests/convert/make_hf_fixtures.py build/tests/convert/dump_hf_export
Needs Debian's python3-torch and python3-h5py; CI never runs it.
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))
B, T = 2, 16


def crc32c(data):
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = c >> 1 ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    c = 0xFFFFFFFF
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ c >> 8
    return c ^ 0xFFFFFFFF


def load_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        assert entry["dtype"] == "F32"
        a, b = entry["data_offsets"]
        arr = np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f4").reshape(entry["shape"])
        out[name] = torch.tensor(arr.astype(np.float64))
    return out, crc32c(raw)


def gpt2_logits(cfg, w, ids):
    C, H = cfg["n_embd"], cfg["n_head"]
    D = C // H
    eps = cfg["layer_norm_epsilon"]
    p = "transformer."

    def ln(x, name):
        return torch.nn.functional.layer_norm(x, (C,), w[name + ".weight"], w[name + ".bias"], eps)

    def conv1d(x, name):  # transformers' Conv1D: x @ weight + bias
        return x @ w[name + ".weight"] + w[name + ".bias"]

    def gelu_new(x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))

    h = w[p + "wte.weight"][ids] + w[p + "wpe.weight"][torch.arange(T)][None]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(cfg["n_layer"]):
        q = f"{p}h.{l}."
        a = conv1d(ln(h, q + "ln_1"), q + "attn.c_attn")
        qs, ks, vs = a.split(C, dim=2)
        heads = lambda t: t.view(B, T, H, D).transpose(1, 2)
        s = heads(qs) @ heads(ks).transpose(-1, -2) / math.sqrt(D)
        s = s.masked_fill(~mask, float("-inf"))
        o = (s.softmax(-1) @ heads(vs)).transpose(1, 2).reshape(B, T, C)
        h = h + conv1d(o, q + "attn.c_proj")
        m = conv1d(gelu_new(conv1d(ln(h, q + "ln_2"), q + "mlp.c_fc")), q + "mlp.c_proj")
        h = h + m
    h = ln(h, p + "ln_f")
    return h @ w[p + "wte.weight"].T


def llama_logits(cfg, w, ids):
    C, H = cfg["hidden_size"], cfg["num_attention_heads"]
    G = cfg["num_key_value_heads"]
    D = C // H
    eps = cfg["rms_norm_eps"]

    def rms(x, name):  # LlamaRMSNorm
        var = x.pow(2).mean(-1, keepdim=True)
        return w[name] * (x * torch.rsqrt(var + eps))

    def lin(x, name):
        return x @ w[name].T

    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    freqs = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None]
    emb = torch.cat([freqs, freqs], -1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]

    def rotate_half(x):
        return torch.cat([-x[..., D // 2:], x[..., :D // 2]], -1)

    h = w["model.embed_tokens.weight"][ids]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(cfg["num_hidden_layers"]):
        q = f"model.layers.{l}."
        x = rms(h, q + "input_layernorm.weight")
        qs = lin(x, q + "self_attn.q_proj.weight").view(B, T, H, D).transpose(1, 2)
        ks = lin(x, q + "self_attn.k_proj.weight").view(B, T, G, D).transpose(1, 2)
        vs = lin(x, q + "self_attn.v_proj.weight").view(B, T, G, D).transpose(1, 2)
        qs = qs * cos + rotate_half(qs) * sin
        ks = ks * cos + rotate_half(ks) * sin
        ks = ks.repeat_interleave(H // G, dim=1)  # repeat_kv
        vs = vs.repeat_interleave(H // G, dim=1)
        s = (qs @ ks.transpose(-1, -2) / math.sqrt(D)).masked_fill(~mask, float("-inf"))
        o = (s.softmax(-1) @ vs).transpose(1, 2).reshape(B, T, C)
        h = h + lin(o, q + "self_attn.o_proj.weight")
        x = rms(h, q + "post_attention_layernorm.weight")
        g = torch.nn.functional.silu(lin(x, q + "mlp.gate_proj.weight"))
        h = h + lin(g * lin(x, q + "mlp.up_proj.weight"), q + "mlp.down_proj.weight")
    h = rms(h, "model.norm.weight")
    head = w["lm_head.weight"] if "lm_head.weight" in w else w["model.embed_tokens.weight"]
    return h @ head.T


def main():
    dump = sys.argv[1]
    out = os.path.join(HERE, "fixtures", "hf_export.h5")
    rng = np.random.default_rng(20261203)
    with h5py.File(out, "w") as f, tempfile.TemporaryDirectory() as tmp:
        for preset, forward in (("gpt2", gpt2_logits), ("llama", llama_logits)):
            d = os.path.join(tmp, preset)
            os.mkdir(d)
            subprocess.run([dump, preset, d], check=True)
            cfg = json.load(open(os.path.join(d, "config.json")))
            w, crc = load_safetensors(os.path.join(d, "model.safetensors"))
            ids = torch.tensor(rng.integers(0, cfg["vocab_size"], size=(B, T)))
            logits = forward(cfg, w, ids).reshape(B * T, -1)
            g = f.create_group(preset)
            g.create_dataset("tokens", data=ids.numpy().astype(np.int32))
            g.create_dataset("logits", data=logits.detach().numpy())
            g.attrs["file_crc32c"] = np.uint32(crc)
            print(f"{preset}: logits {tuple(logits.shape)}, |logits| max "
                  f"{logits.abs().max().item():.3f}, file crc32c {crc:08x}")
    print("wrote", out)


if __name__ == "__main__":
    main()
