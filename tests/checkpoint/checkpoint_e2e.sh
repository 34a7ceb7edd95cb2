#!/usr/bin/env bash
# checkpoint_e2e.sh TESSERA MPIEXEC - checkpoints through the CLI:
#   exact resume (1 rank and 8 data-parallel ranks): bitwise equal losses
#   --train-iters 0 --save writes the initial state; training from it is
#   bitwise a run from scratch (1 rank, and dp 8 from the 1-rank file)
#   a checkpoint written by one layout continues in another within 1e-4
#   SIGKILL in the middle of a save leaves the previous checkpoint loadable
#   missing, non-HDF5, truncated, damaged and mismatched checkpoints: exit 2,
#   clear message
#   the file is plain HDF5 at global shapes (h5ls)
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
mpiexec=$2
source "$(dirname "$0")/../harness/e2e.sh"

common=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32
        --micro-batch-size 1 --global-batch-size 8 --lr 3e-3 --lr-warmup-iters 3
        --lr-decay-iters 20 --data-path synthetic:addition --log-interval 1 --log-level warn
        --hidden-dropout 0.1 --seed 11)

# --- exact resume, 1 rank
"$tessera" train "${common[@]}" --train-iters 20 --metrics-file "$work/straight.jsonl"
"$tessera" train "${common[@]}" --train-iters 10 --save "$work/ck1" --metrics-file "$work/half1.jsonl"
"$tessera" train "${common[@]}" --train-iters 20 --load "$work/ck1" --metrics-file "$work/half2.jsonl"
cmp -s <(losses_by_iteration "$work/straight.jsonl") <(cat <(losses_by_iteration "$work/half1.jsonl") <(losses_by_iteration "$work/half2.jsonl"))
check "1 rank: 10 + save + load + 10 == 20 straight, bitwise" $?
[ "$(cat "$work/ck1/latest_checkpointed_iteration.txt")" = 10 ] && [ -f "$work/ck1/iter_0000010.h5" ]
check "latest_checkpointed_iteration.txt names iter_0000010.h5" $?

# --- exact resume, 8 data-parallel ranks
"$mpiexec" -np 8 --oversubscribe "$tessera" train "${common[@]}" --train-iters 20 \
  --metrics-file "$work/s8.jsonl"
"$mpiexec" -np 8 --oversubscribe "$tessera" train "${common[@]}" --train-iters 10 \
  --save "$work/ck8" --metrics-file "$work/h8a.jsonl"
"$mpiexec" -np 8 --oversubscribe "$tessera" train "${common[@]}" --train-iters 20 \
  --load "$work/ck8" --metrics-file "$work/h8b.jsonl"
cmp -s <(losses_by_iteration "$work/s8.jsonl") <(cat <(losses_by_iteration "$work/h8a.jsonl") <(losses_by_iteration "$work/h8b.jsonl")) &&
  [ "$(losses_by_iteration "$work/s8.jsonl" | wc -l)" -eq 20 ]
check "8 ranks (dp 8): 10 + save + load + 10 == 20 straight, bitwise" $?

# --- --train-iters 0 --save: the initial state (iteration 0, the initialised
# weights, zero moments, no sample consumed), which trains like a run from
# scratch, in its own layout and in another
"$tessera" train "${common[@]}" --train-iters 0 --save "$work/ck0" --metrics-file "$work/zero.jsonl"
saved=$?
attr() { h5dump -a "/$2" "$1" | sed -n 's/^ *(0): //p'; }
only_zeros() { # FILE: every optimizer tensor holds zeros only (and there are some)
  local blocks values
  blocks=$(h5dump -A 0 -g /optimizer -y "$1" | grep -c "DATA {")
  values=$(h5dump -A 0 -g /optimizer -y "$1" | awk '/DATA {/ { d = 1; next } /}/ { d = 0 } d' | tr -d ' ,\n0')
  [ "$blocks" -gt 0 ] && [ -z "$values" ]
}
[ "$saved" -eq 0 ] && [ "$(cat "$work/ck0/latest_checkpointed_iteration.txt")" = 0 ] &&
  [ -f "$work/ck0/iter_0000000.h5" ] && [ -z "$(losses "$work/zero.jsonl")" ] &&
  [ "$(attr "$work/ck0/iter_0000000.h5" iteration)" = 0 ] &&
  [ "$(attr "$work/ck0/iter_0000000.h5" consumed_samples)" = 0 ] &&
  [ "$(attr "$work/ck0/iter_0000000.h5" adam_step)" = 0 ] && only_zeros "$work/ck0/iter_0000000.h5"
check "--train-iters 0 --save: iter_0000000.h5 named latest, iteration/samples/steps 0, zero moments" $?
"$tessera" train "${common[@]}" --train-iters 20 --load "$work/ck0" --metrics-file "$work/from0.jsonl"
cmp -s <(losses_by_iteration "$work/straight.jsonl") <(losses_by_iteration "$work/from0.jsonl") &&
  [ "$(losses_by_iteration "$work/from0.jsonl" | wc -l)" -eq 20 ]
check "1 rank: --load of the iteration-0 checkpoint + 20 == 20 from scratch, bitwise" $?
"$mpiexec" -np 8 --oversubscribe "$tessera" train "${common[@]}" --train-iters 0 --save "$work/ck0_8"
h5diff "$work/ck0/iter_0000000.h5" "$work/ck0_8/iter_0000000.h5" >"$work/h5diff.out"
same=$?
[ "$same" -eq 0 ] || head -n 5 "$work/h5diff.out"
check "the iteration-0 checkpoints of 1 rank and of dp 8 are identical (h5diff)" "$same"
"$mpiexec" -np 8 --oversubscribe "$tessera" train "${common[@]}" --train-iters 20 \
  --load "$work/ck0" --metrics-file "$work/from0_8.jsonl"
cmp -s <(losses_by_iteration "$work/s8.jsonl") <(losses_by_iteration "$work/from0_8.jsonl") &&
  [ "$(losses_by_iteration "$work/from0_8.jsonl" | wc -l)" -eq 20 ]
check "dp 8: --load of the 1-rank iteration-0 checkpoint + 20 == 20 from scratch, bitwise" $?

# --- another layout: saved by 8 data-parallel ranks, continued on 1 rank and on 2
"$tessera" train "${common[@]}" --train-iters 20 --load "$work/ck8" --metrics-file "$work/l1.jsonl"
"$mpiexec" -np 2 --oversubscribe "$tessera" train "${common[@]}" --train-iters 20 \
  --load "$work/ck8" --metrics-file "$work/l2.jsonl"
compare() { # a b: every step within 1e-4 relative
  join <(losses_by_iteration "$1") <(losses_by_iteration "$2") | awk '{ r = ($2 - $3) / $2; if (r < 0) r = -r; if (r > w) w = r; if (r > 1e-4) bad = 1 }
    END { printf "  worst relative loss difference %.3g over %d steps\n", w, NR; exit bad || NR != 10 }'
}
compare "$work/h8b.jsonl" "$work/l1.jsonl"
check "dp 8 checkpoint continues on 1 rank within 1e-4" $?
compare "$work/h8b.jsonl" "$work/l2.jsonl"
check "dp 8 checkpoint continues on dp 2 within 1e-4" $?

# --- SIGKILL in the middle of the second save
tensors=$(h5ls -r "$work/ck1/iter_0000010.h5" | grep -c Dataset)
TSR_CHECKPOINT_TEST_PAUSE_AFTER=$((tensors + tensors / 2)) "$tessera" train "${common[@]}" \
  --train-iters 10 --save-interval 5 --save "$work/ckk" 2>"$work/kill.err" &
pid=$!
for _ in $(seq 300); do grep -q "pausing mid-save" "$work/kill.err" && break; sleep 0.1; done
grep -q "pausing mid-save" "$work/kill.err"
paused=$?
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
[ "$paused" -eq 0 ] && [ "$(cat "$work/ckk/latest_checkpointed_iteration.txt")" = 5 ] &&
  [ -f "$work/ckk/iter_0000005.h5" ] && [ ! -f "$work/ckk/iter_0000010.h5" ]
check "killed mid-save: latest still names iteration 5, no iter 10 file" $?
"$tessera" train "${common[@]}" --train-iters 10 --load "$work/ckk" --metrics-file "$work/after.jsonl"
[ "$(losses_by_iteration "$work/after.jsonl" | head -n 1 | cut -d' ' -f1)" = 6 ] &&
  cmp -s <(losses_by_iteration "$work/after.jsonl") <(losses_by_iteration "$work/half1.jsonl" | tail -n 5)
check "killed mid-save: --load resumes from iteration 5 and matches the straight run" $?

# --- bad checkpoints
expect_error() { # name substring args...
  local name=$1 want=$2
  shift 2
  "$tessera" train "${common[@]}" --train-iters 12 "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  grep -q -- "$want" "$work/err"
  local found=$?
  [ "$rc" -eq 2 ] && [ "$found" -eq 0 ]
  local ok=$?
  [ "$ok" -eq 0 ] || { echo "  rc=$rc, stderr:"; sed 's/^/    /' "$work/err"; }
  check "$name: exit 2, message" "$ok"
}
expect_error "missing checkpoint" "no checkpoint there" --load "$work/nothing"
mkdir -p "$work/garbage" && echo 10 >"$work/garbage/latest_checkpointed_iteration.txt"
head -c 5000 /dev/urandom >"$work/garbage/iter_0000010.h5"
expect_error "not an HDF5 file" "not an HDF5 file" --load "$work/garbage"
mkdir -p "$work/trunc" && cp "$work/ck1/latest_checkpointed_iteration.txt" "$work/trunc/"
head -c $(($(stat -c %s "$work/ck1/iter_0000010.h5") / 2)) "$work/ck1/iter_0000010.h5" >"$work/trunc/iter_0000010.h5"
expect_error "truncated checkpoint" "checkpoint" --load "$work/trunc"
# damaged metadata: one byte of each attribute name in the root group's
# object header; the format's metadata checksums turn it into an error
# (the older format crashed libhdf5: tests/fuzz/hdf5_findings)
for attr in format_version iteration seed hidden_size; do
  mkdir -p "$work/dmg_$attr" && cp "$work/ck1/latest_checkpointed_iteration.txt" "$work/dmg_$attr/"
  cp "$work/ck1/iter_0000010.h5" "$work/dmg_$attr/"
  at=$(grep -boa "$attr" "$work/dmg_$attr/iter_0000010.h5" | head -1 | cut -d: -f1)
  printf 'Z' | dd of="$work/dmg_$attr/iter_0000010.h5" bs=1 seek="$((at + 1))" conv=notrunc 2>/dev/null
  expect_error "damaged attribute $attr" "is damaged: HDF5 cannot read its attribute" \
    --load "$work/dmg_$attr"
done
expect_error "other model" "written for a different model: hidden_size is 64" --load "$work/ck1" \
  --hidden-size 128
expect_error "other shape" "num_layers is 2" --load "$work/ck1" --num-layers 4

# --- readable with standard tools, global shapes
h5ls -r "$work/ck1/iter_0000010.h5" | grep -q "/model/embedding.word_embeddings.weight Dataset {14, 64}" &&
  h5ls -r "$work/ck1/iter_0000010.h5" | grep -q "/optimizer/exp_avg_sq/decoder.layers.1.mlp.linear_fc2.weight Dataset {64, 256}"
check "h5ls shows model and optimizer tensors at global shape (vocab unpadded)" $?

finish
