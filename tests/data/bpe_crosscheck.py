#!/usr/bin/env python3
"""bpe_crosscheck.py TESSERA - GPT-2 byte-level BPE of `tessera preprocess`
against an independent Python encoder.

The Python side pre-tokenises with Python's own regex engine running GPT-2's
pattern, with \\p{L} and \\p{N} spelled out as character classes from
unicodedata and \\s as the White_Space set, then runs the classic BPE loop
(lowest-ranked pair, all occurrences, repeat). It learns 400 merges from a
generated corpus, writes vocab.json/merges.txt as GPT-2 does, encodes test
lines full of contractions, numbers, odd whitespace and non-ASCII text, and
compares with the .bin/.idx that `tessera preprocess --tokenizer-type gpt2
--append-eod` writes (read back with struct, in Megatron's layout).
Exit status 0 when every document matches.
"""
import json
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import unicodedata

WHITE_SPACE = ([(0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680),
                (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F),
                (0x3000, 0x3000)])


def category_ranges(prefix):
    out, start = [], None
    for cp in range(0x110000):
        hit = unicodedata.category(chr(cp)).startswith(prefix)
        if hit and start is None:
            start = cp
        elif not hit and start is not None:
            out.append((start, cp - 1))
            start = None
    if start is not None:
        out.append((start, 0x10FFFF))
    return out


def char_class(ranges):
    return "".join("\\U%08x-\\U%08x" % r for r in ranges)


L = char_class(category_ranges("L"))
N = char_class(category_ranges("N"))
S = char_class(WHITE_SPACE)
PATTERN = re.compile(
    "'s|'t|'re|'ve|'m|'ll|'d| ?[%s]+| ?[%s]+| ?[^%s%s%s]+|[%s]+(?![^%s])|[%s]+"
    % (L, N, S, L, N, S, S, S))


def bytes_to_unicode():
    keep = (list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1))
            + list(range(0xAE, 0xFF + 1)))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


BYTE_SYMBOL = bytes_to_unicode()


def pieces(text):
    return ["".join(BYTE_SYMBOL[b] for b in p.encode("utf-8")) for p in PATTERN.findall(text)]


def learn_merges(corpus, count):
    words = {}
    for line in corpus:
        for p in pieces(line):
            words[tuple(p)] = words.get(tuple(p), 0) + 1
    merges = []
    for _ in range(count):
        pairs = {}
        for w, n in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + n
        if not pairs:
            break
        best = max(sorted(pairs), key=lambda p: pairs[p])
        merges.append(best)
        merged = {}
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + n
        words = merged
    return merges


def bpe(symbols, ranks):
    word = tuple(symbols)
    while len(word) > 1:
        pairs = set(zip(word, word[1:]))
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        out, i = [], 0
        while i < len(word):
            if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                out.append(word[i] + word[i + 1])
                i += 2
            else:
                out.append(word[i])
                i += 1
        word = tuple(out)
    return word


def make_lines(rng, n, vocab_words):
    odd = ["don't", "I'm", "we'll", "they've", "she'd", "it's", "you're", "O'Neil's", "'''",
           "1234567", "3.14159", "x²+y²", "½ cup", "Ⅻ", "٣٤٥", "naïve café", "Straße",
           "Привет мир", "中文字符", "日本語のテキスト", "😀🚀!", "a\tb", "a\u00a0b", "x\u3000y",
           "line\u2028sep", "nel\x85x", "  lead", "trail  ", "multi   space", "...!?", "<|endoftext|>",
           "CamelCaseWord", "snake_case_id", "e-mail@host.org", "$100.00", "#tag", "\\back"]
    lines = []
    for _ in range(n):
        k = rng.randint(1, 12)
        parts = [rng.choice(vocab_words + odd) for _ in range(k)]
        seps = [rng.choice([" ", " ", " ", "  ", "\t", ", ", ". ", ""]) for _ in range(k)]
        lines.append("".join(p + s for p, s in zip(parts, seps)))
    lines.append("")  # an empty document
    return lines


def read_indexed(prefix):
    with open(prefix + ".idx", "rb") as f:
        idx = f.read()
    with open(prefix + ".bin", "rb") as f:
        data = f.read()
    assert idx[:9] == b"MMIDIDX\x00\x00", "bad magic"
    version, code, nseq, ndoc = struct.unpack_from("<QBQQ", idx, 9)
    assert version == 1
    fmt, size = {8: ("H", 2), 4: ("i", 4)}[code]
    lengths = struct.unpack_from("<%di" % nseq, idx, 34)
    pointers = struct.unpack_from("<%dq" % nseq, idx, 34 + 4 * nseq)
    docs = struct.unpack_from("<%dq" % ndoc, idx, 34 + 12 * nseq)
    seqs = [list(struct.unpack_from("<%d%s" % (n, fmt), data, p))
            for n, p in zip(lengths, pointers)]
    return seqs, docs


def main():
    tessera = sys.argv[1]
    rng = random.Random(12345)
    words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "hello", "world",
             "tokenizer", "training", "parallel", "tensor", "pipeline", "données", "über",
             "ελληνικά", "год", "2024", "v1.2", "running", "runner", "ran"]
    corpus = make_lines(rng, 400, words)
    merges = learn_merges(corpus, 400)
    vocab = {BYTE_SYMBOL[b]: b for b in range(256)}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab["<|endoftext|>"] = len(vocab)
    ranks = {m: i for i, m in enumerate(merges)}
    tests = make_lines(rng, 300, words)
    with tempfile.TemporaryDirectory() as work:
        with open(os.path.join(work, "vocab.json"), "w", encoding="utf-8") as f:
            json.dump(vocab, f, ensure_ascii=False)
        with open(os.path.join(work, "merges.txt"), "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n")
            for a, b in merges:
                f.write("%s %s\n" % (a, b))
        with open(os.path.join(work, "in.txt"), "w", encoding="utf-8", newline="\n") as f:
            f.write("\n".join(tests) + "\n")
        prefix = os.path.join(work, "out")
        subprocess.run([tessera, "preprocess", "--input", os.path.join(work, "in.txt"),
                        "--output-prefix", prefix, "--tokenizer-type", "gpt2",
                        "--vocab-file", os.path.join(work, "vocab.json"),
                        "--merge-file", os.path.join(work, "merges.txt"), "--append-eod"],
                       check=True, stdout=subprocess.DEVNULL)
        seqs, docs = read_indexed(prefix + "_text_document")
    eod = vocab["<|endoftext|>"]
    expected = []
    for line in tests:
        ids = [vocab[s] for p in pieces(line) for s in bpe(p, ranks)]
        expected.append(ids + [eod] if ids else [])
    bad = 0
    if len(docs) != len(tests) + 1:
        print("document count %d, expected %d" % (len(docs) - 1, len(tests)))
        bad += 1
    got = []
    for d in range(len(docs) - 1):
        got.append([t for s in seqs[docs[d]:docs[d + 1]] for t in s])
    for i, (want, have) in enumerate(zip(expected, got)):
        if want != have:
            bad += 1
            if bad <= 5:
                print("line %d %r:\n  python  %s\n  tessera %s" % (i, tests[i], want, have))
    total = sum(len(e) for e in expected)
    print("%d documents, %d tokens, %d merges: %d mismatches" % (len(tests), total,
                                                                  len(merges), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
