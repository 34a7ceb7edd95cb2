#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz from tests/data's fixtures:
corpus/indexed/: <uint16 idx length><.idx><.bin> for every dtype fixture,
plus truncated and damaged variants; corpus/bpe/: <uint16 vocab length>
<uint16 merges length><vocab.json><merges.txt><text>. Run from this folder.
"""
import glob
import os
import struct

FIX = os.path.join("..", "data", "fixtures")


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def main():
    for idx_path in sorted(glob.glob(os.path.join(FIX, "megatron_*.idx"))):
        name = os.path.basename(idx_path)[:-4]
        idx = open(idx_path, "rb").read()
        binary = open(idx_path[:-4] + ".bin", "rb").read()
        write("corpus/indexed/" + name, struct.pack("<H", len(idx)) + idx + binary)
    idx = open(os.path.join(FIX, "megatron_code4.idx"), "rb").read()
    binary = open(os.path.join(FIX, "megatron_code4.bin"), "rb").read()
    write("corpus/indexed/truncated_idx", struct.pack("<H", 60) + idx[:60] + binary)
    write("corpus/indexed/truncated_bin", struct.pack("<H", len(idx)) + idx + binary[:-3])
    write("corpus/indexed/header_only", struct.pack("<H", 34) + idx[:34])
    vocab = open(os.path.join(FIX, "bpe", "vocab.json"), "rb").read()
    merges = open(os.path.join(FIX, "bpe", "merges.txt"), "rb").read()
    for i, text in enumerate([b"hello world! it's hello,low lol", b"lllll lol  \n\tworld",
                              "h\u00e9llo \u4e2d\u6587 123 don't".encode()]):
        write("corpus/bpe/fixture_%d" % i,
              struct.pack("<HH", len(vocab), len(merges)) + vocab + merges + text)
    small_v = b'{"a": 0, "b": 1, "ab": 2, "\\u0120": 3, "\\u0120a": 4, "<|endoftext|>": 5}'
    small_m = b"#version: 0.2\na b\n\xc4\xa0 a\n"
    write("corpus/bpe/small", struct.pack("<HH", len(small_v), len(small_m)) + small_v
          + small_m + b"ab aab ba")


if __name__ == "__main__":
    main()
