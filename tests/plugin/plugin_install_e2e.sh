#!/usr/bin/env bash
# plugin_install_e2e.sh SOURCE_DIR BUILD_DIR CMAKE - the installed package
# from the outside, as a plugin author or an embedding program sees it:
#   `cmake --install BUILD_DIR --prefix P` ships the binary, the headers,
#   libtessera.a, the CMake package and tessera.pc;
#   examples/custom_model configures and builds out of tree against P
#   (find_package(tessera)) and P/bin/tessera trains it for a few
#   iterations, with readable, unique parameter names in its checkpoint;
#   a program links libtessera.a through find_package and through pkg-config.
# Prints one line per check and "N passed, M failed".
set -u
src=$1
build=$2
cmake=$3
source "$(dirname "$0")/../harness/e2e.sh"
prefix=$work/prefix

"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1
rc=$?
for f in bin/tessera include/tessera/spec.h include/tessera/module.h include/tessera/modules.h \
         include/tessera/config.h include/tessera/version.h lib/libtessera.a \
         lib/cmake/tessera/tesseraConfig.cmake lib/cmake/tessera/tesseraConfigVersion.cmake \
         lib/pkgconfig/tessera.pc; do
  [ -e "$prefix/$f" ] || { echo "  missing from the install: $f"; rc=1; }
done
[ "$rc" -eq 0 ] || cat "$work/install.log"
check "cmake --install ships the binary, headers, library, CMake package and tessera.pc" $rc

# the example, as its README builds it
"$cmake" -S "$src/examples/custom_model" -B "$work/plugin" -DCMAKE_PREFIX_PATH="$prefix" \
  >"$work/plugin.log" 2>&1 && "$cmake" --build "$work/plugin" >>"$work/plugin.log" 2>&1
rc=$?
plugin=$work/plugin/libparallel_gpt.so
[ "$rc" -eq 0 ] && [ -f "$plugin" ] || { cat "$work/plugin.log"; rc=1; }
check "examples/custom_model builds out of tree against the installed package" $rc

iters=6
"$prefix/bin/tessera" train --model-plugin "$plugin" --model parallel_gpt \
  --num-layers 2 --hidden-size 32 --num-attention-heads 4 --seq-length 16 --micro-batch-size 4 \
  --lr 3e-3 --train-iters $iters --log-interval 1 --log-level warn --data-path synthetic:addition \
  --save "$work/ckpt" --save-interval $iters --metrics-file "$work/train.jsonl" \
  >"$work/train.log" 2>&1
rc=$?
losses "$work/train.jsonl" >"$work/losses" 2>/dev/null
awk -v n=$iters 'NR == 1 {first = $1} {last = $1; if ($1 != $1 + 0 || $1 <= 0) bad = 1}
  END { printf "  %d losses, first %s, last %s\n", NR, first, last
        exit bad || NR != n || !(last < first) }' "$work/losses" || rc=1
[ "$rc" -eq 0 ] || cat "$work/train.log"
check "the installed tessera trains --model-plugin libparallel_gpt.so --model parallel_gpt ($iters iterations, loss falls)" $rc

# the checkpoint names every parameter once, readably
if command -v h5ls >/dev/null; then
  h5=$(find "$work/ckpt" -name '*.h5' | head -n 1)
  h5ls -r "$h5" 2>/dev/null | awk '$1 ~ "^/model/" {print $1}' | sed 's|^/model/||' | sort >"$work/names"
  rc=0
  for l in 0 1; do
    for name in input_layernorm.weight input_layernorm.bias self_attention.linear_qkv.weight \
                self_attention.linear_proj.weight mlp.linear_fc1.weight mlp.linear_fc2.weight gate; do
      grep -qx "decoder.layers.$l.$name" "$work/names" || { echo "  no decoder.layers.$l.$name"; rc=1; }
    done
  done
  grep -q "pre_mlp_layernorm" "$work/names" && { echo "  a parallel block has one norm"; rc=1; }
  [ -s "$work/names" ] && [ -z "$(uniq -d "$work/names")" ] || { echo "  names missing or twice: $(uniq -d "$work/names")"; rc=1; }
  [ "$rc" -eq 0 ] || cat "$work/names"
  check "the checkpoint holds decoder.layers.N.{input_layernorm,self_attention,mlp}.* and .gate" $rc
else
  echo "SKIP checkpoint names (no h5ls)"
fi

# an embedding program: find_package(tessera) -> tessera::tessera
"$cmake" -S "$src/tests/plugin/embed" -B "$work/embed" -DCMAKE_PREFIX_PATH="$prefix" \
  >"$work/embed.log" 2>&1 && "$cmake" --build "$work/embed" >>"$work/embed.log" 2>&1 &&
  "$work/embed/embed" >>"$work/embed.log" 2>&1 && grep -q "embed ok" "$work/embed.log"
rc=$?
[ "$rc" -eq 0 ] || cat "$work/embed.log"
check "a program links tessera::tessera from find_package(tessera)" $rc

# the same through pkg-config, from wherever the prefix is
if command -v pkg-config >/dev/null; then
  flags=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs tessera 2>"$work/pc.log")
  rc=$?
  [ "$rc" -eq 0 ] && ${CC:-cc} -std=c11 -o "$work/embed_pc" "$src/tests/plugin/embed/embed.c" \
    $flags >>"$work/pc.log" 2>&1 && "$work/embed_pc" | grep -q "embed ok"
  rc=$?
  [ "$rc" -eq 0 ] || { echo "  pkg-config: $flags"; cat "$work/pc.log"; }
  check "a program links through pkg-config tessera" $rc
else
  echo "SKIP pkg-config (not installed)"
fi

finish
