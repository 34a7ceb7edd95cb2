#!/usr/bin/python3
"""Writes the PyTorch reference fixture for tessera's masked attention kernel.

For every case below it draws seeded inputs q, k, v (B=2, Hq=2 query heads,
Hkv=1 key/value head: grouped, query head h reads kv head h // 2, D=16) and an
upstream gradient dout, builds the dense boolean mask (B, T, T) of which key
each query sees from the definitions in include/tessera/kernels.h ("which
keys a query sees"), written again here independently of the kernel, and
computes in float64 with torch:
  scores = q k^T / sqrt(D), -inf where the mask hides the key
  out    = softmax(scores) v          (a row that sees no key: out 0)
  lse    = logsumexp(scores)          (a row that sees no key: -inf)
  dq, dk, dv = d sum(out * dout) by autograd (dk, dv summed over the query
               heads sharing a kv head)
and writes tests/reference/fixtures/attention_patterns.h5 with one group per
case:
  attributes  pattern ("causal", "window", "fixed", "strided"), window,
              block, stride, B, T, Hq, Hkv, D, description
  inputs      q (B,T,Hq,D), k, v (B,T,Hkv,D), dout (B,T,Hq,D) float32;
              doc_start, prefix_lo, prefix_hi (B,T) int32 when the case
              uses them
  expected    out (B,T,Hq,D), lse (B,Hq,T), dq, dk, dv, float64
To keep the file small the inputs lie on a 1/16 grid (exact in float32, so
torch sees the very numbers tessera reads) and the expected float64 values
are rounded to float32 precision (relative 6e-8, far below the test's 1e-4)
so that shuffle + gzip can drop their low mantissa bytes.

Usage (from the repository root):
  /usr/bin/python3 tests/reference/make_attention_fixtures.py
Needs Debian's python3-torch and python3-h5py; CI never runs it (the C test
test_attention_patterns only reads the file).
"""
import math
import os

import h5py
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "attention_patterns.h5")
B, HQ, HKV, D = 2, 2, 1, 16


# ---- the mask, from kernels.h ------------------------------------------------

def pattern_part(name, t, window, block, stride):
    """(T, T) bool: the pattern's condition on a causal pair (i, j), j <= i."""
    i = np.arange(t)[:, None]
    j = np.arange(t)[None, :]
    if name == "causal":
        return np.ones((t, t), dtype=bool)
    if name == "window":
        return i - window < j
    bi, bj, l = i // block, j // block, stride // block
    if name == "fixed":
        return (bi // l == bj // l) | (bj % l == l - 1)
    if name == "strided":
        return (bi - bj < l) | ((bi - bj) % l == 0)
    raise ValueError(name)


def dense_mask(c):
    """(B, T, T) bool: query i of sample s sees key j."""
    t = c["T"]
    i = np.arange(t)[:, None]
    j = np.arange(t)[None, :]
    pat = pattern_part(c["pattern"], t, c["window"], c["block"], c["stride"])
    mask = np.zeros((B, t, t), dtype=bool)
    for s in range(B):
        ds = c["doc_start"][s][:, None] if "doc_start" in c else np.zeros((t, 1), dtype=np.int64)
        causal = (ds <= j) & (j <= i) & pat
        bidir = np.zeros((t, t), dtype=bool)
        if "prefix_lo" in c:
            lo = c["prefix_lo"][s][:, None]
            hi = c["prefix_hi"][s][:, None]
            bidir = (lo <= j) & (j < hi)
        mask[s] = causal | bidir
    return mask


# ---- per-query arrays ----------------------------------------------------------

def doc_starts(t, starts_per_sample):
    """doc_start (B, T) from each sample's list of document starts."""
    out = np.zeros((B, t), dtype=np.int32)
    for s, starts in enumerate(starts_per_sample):
        for a, start in enumerate(starts):
            end = starts[a + 1] if a + 1 < len(starts) else t
            out[s, start:end] = start
    return out


def prompts(t, starts_per_sample, prompt_lengths):
    """prefix_lo, prefix_hi (B, T): a document's first prompt_length tokens
    see [doc start, doc start + prompt_length); every other query 0, 0."""
    lo = np.zeros((B, t), dtype=np.int32)
    hi = np.zeros((B, t), dtype=np.int32)
    for s, (starts, lengths) in enumerate(zip(starts_per_sample, prompt_lengths)):
        for start, n in zip(starts, lengths):
            lo[s, start:start + n] = start
            hi[s, start:start + n] = start + n
    return lo, hi


def case(name, pattern, t, description, window=0, block=0, stride=0, **arrays):
    c = {"name": name, "pattern": pattern, "T": t, "window": window, "block": block,
         "stride": stride, "description": description}
    c.update(arrays)
    return c


def cases():
    out = [
        case("01_causal", "causal", 96, "plain causal, partial last tile"),
        case("02_window32", "window", 96, "sliding window of 32", window=32),
        case("03_window100", "window", 192, "sliding window of 100 (crosses tiles)",
             window=100),
        case("04_fixed32_64", "fixed", 96, "fixed, block 32 stride 64 (element masks)",
             block=32, stride=64),
        case("05_fixed64_128", "fixed", 192, "fixed, block 64 stride 128 (whole tiles)",
             block=64, stride=128),
        case("06_strided32_96", "strided", 192, "strided, block 32 stride 96",
             block=32, stride=96),
        case("07_strided64_128", "strided", 256,
             "strided, block 64 stride 128 (T 256: at 192 it would be causal)",
             block=64, stride=128),
    ]
    t = 192
    docs = [[0, 50, 130], [0, 128]]
    out.append(case("08_documents", "causal", t,
                    "documents: 3 in sample 0, 2 in sample 1 (one starts on a tile)",
                    doc_start=doc_starts(t, docs)))
    lo, hi = prompts(t, docs, [[20, 37, 9], [70, 1]])
    out.append(case("09_prefix_lm", "causal", t,
                    "prefix LM: each document's prompt bidirectional",
                    doc_start=doc_starts(t, docs), prefix_lo=lo, prefix_hi=hi))
    docs2 = [[0, 61, 140], [0, 97]]
    lo, hi = prompts(t, docs2, [[12, 66, 0], [45, 90]])
    out.append(case("10_docs_prefix_window40", "window", t,
                    "documents + prefix LM + window 40 (prompts longer than the window)",
                    window=40, doc_start=doc_starts(t, docs2), prefix_lo=lo, prefix_hi=hi))
    t = 96
    ds = doc_starts(t, [[0], [0, 40]])
    ds[1, t - 10:] = np.arange(t - 10, t) + 1  # padding: causal part empty
    out.append(case("11_padded_tail", "causal", t,
                    "last 10 positions of sample 1 padding (doc_start = i + 1): empty rows",
                    doc_start=ds))
    # beyond the list asked for: the paths where a prefix meets a pattern
    t = 96
    lo = np.zeros((B, t), dtype=np.int32)
    hi = np.full((B, t), 8, dtype=np.int32)
    out.append(case("12_window24_sink8", "window", t,
                    "window 24 + every query sees keys [0, 8) (a bidirectional part "
                    "apart from the causal one)",
                    window=24, prefix_lo=lo, prefix_hi=hi))
    t = 192
    docs3 = [[0, 100], [0, 30, 150]]
    lo, hi = prompts(t, docs3, [[80, 30], [10, 75, 20]])
    out.append(case("13_fixed64_docs_prefix", "fixed", t,
                    "fixed block 64 stride 128 + documents + prefix LM (prompts "
                    "across blocks the pattern hides)",
                    block=64, stride=128, doc_start=doc_starts(t, docs3),
                    prefix_lo=lo, prefix_hi=hi))
    return out


# ---- the reference -------------------------------------------------------------

def grid_normal(rng, shape):
    """N(0, 1) rounded to a 1/16 grid, clipped to [-4, 4]: exact in float32."""
    return np.clip(np.round(rng.standard_normal(shape) * 16.0) / 16.0, -4.0, 4.0).astype(np.float32)


def reference(q, k, v, dout, mask):
    """float64 out, lse, dq, dk, dv for the dense mask (B, T, T)."""
    q = torch.tensor(q, dtype=torch.float64, requires_grad=True)
    k = torch.tensor(k, dtype=torch.float64, requires_grad=True)
    v = torch.tensor(v, dtype=torch.float64, requires_grad=True)
    g = torch.tensor(dout, dtype=torch.float64)
    m = torch.tensor(mask)[:, None, :, :]                 # (B, 1, T, T)
    r = HQ // HKV
    kk = k.repeat_interleave(r, dim=2)                     # head h -> kv head h // r
    vv = v.repeat_interleave(r, dim=2)
    s = torch.einsum("bihd,bjhd->bhij", q, kk) / math.sqrt(D)
    s = s.masked_fill(~m, float("-inf"))
    seen = m.any(-1, keepdim=True)                         # (B, 1, T, 1)
    safe = torch.where(seen, s, torch.zeros_like(s))       # no all -inf row
    p = torch.softmax(safe, -1) * m                        # empty rows: all 0
    out = torch.einsum("bhij,bjhd->bihd", p, vv)
    lse = torch.where(seen[..., 0], torch.logsumexp(safe, -1),
                      torch.full_like(safe[..., 0], float("-inf")))
    (out * g).sum().backward()
    res = {"out": out.detach().numpy(), "lse": lse.detach().numpy(),
           "dq": q.grad.numpy(), "dk": k.grad.numpy(), "dv": v.grad.numpy()}
    for name, x in res.items():
        assert not np.isnan(x).any(), name
    return res


def main():
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    z = {"compression": "gzip", "compression_opts": 9, "shuffle": True}
    with h5py.File(OUT, "w") as f:
        f.attrs["description"] = np.bytes_(
            "tessera masked attention vs torch float64; written by "
            "tests/reference/make_attention_fixtures.py")
        for n, c in enumerate(cases()):
            t = c["T"]
            rng = np.random.default_rng(1000 + n)
            q = grid_normal(rng, (B, t, HQ, D))
            k = grid_normal(rng, (B, t, HKV, D))
            v = grid_normal(rng, (B, t, HKV, D))
            dout = grid_normal(rng, (B, t, HQ, D))
            mask = dense_mask(c)
            plain = np.tril(np.ones((t, t), dtype=bool))
            assert c["name"] == "01_causal" or (mask != plain).any(), c["name"]
            res = reference(q, k, v, dout, mask)
            g = f.create_group(c["name"])
            g.attrs["pattern"] = np.bytes_(c["pattern"])
            g.attrs["description"] = np.bytes_(c["description"])
            for key, val in (("window", c["window"]), ("block", c["block"]),
                             ("stride", c["stride"]), ("B", B), ("T", t), ("Hq", HQ),
                             ("Hkv", HKV), ("D", D)):
                g.attrs[key] = np.int64(val)
            for key, val in (("q", q), ("k", k), ("v", v), ("dout", dout)):
                g.create_dataset(key, data=val, **z)
            for key in ("doc_start", "prefix_lo", "prefix_hi"):
                if key in c:
                    g.create_dataset(key, data=c[key].astype(np.int32), **z)
            for key, val in res.items():
                rounded = val.astype(np.float32).astype(np.float64)
                g.create_dataset(key, data=rounded, **z)
            empty = int((~mask.any(-1)).sum())
            print(f"{c['name']:26s} T={t:3d} visible {mask.mean():.3f} "
                  f"empty rows {empty:3d}  {c['description']}")
    print(f"wrote {OUT} ({os.path.getsize(OUT) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
