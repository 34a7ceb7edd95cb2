#!/usr/bin/env bash
# reliability_e2e.sh TESSERA MPIEXEC SET_ROOT_ATTR - runs that stop early, damaged
# checkpoints and full disks, through the CLI:
#   --exit-interval, --exit-duration-in-mins and --exit-signal-handler
#   (SIGTERM to a 1-rank run, SIGUSR1 to mpirun, which forwards it): exit 0,
#   a message saying why, a checkpoint at the iteration of the stop; the
#   resumed run's losses equal an uninterrupted run's, bitwise
#   a flipped bit at the start, middle and end of tensors' data in each
#   group: exit 2 naming the tensor and the file, on 1 rank and under TP 2;
#   --ckpt-step loads an earlier checkpoint; a missing step or a pointer file
#   with a number too large for int64: exit 2 listing the saved iterations;
#   counters out of range or inconsistent (iteration -5, 2^62 samples,
#   more Adam steps than iterations): exit 2
#   --async-save: resume bitwise; SIGKILL during the background write
#   leaves the previous checkpoint and pointer standing
#   a rank stopped by SIGSTOP in the middle of a save: the checkpoint watch
#   ends the job naming it (the collectives' watchdog does not see HDF5)
#   a full disk (a small tmpfs, when this machine lets us mount one): the
#   save fails with the path and errno, exit 1, the previous checkpoint and
#   pointer untouched and no partial file left; --save-failure continue
#   trains on, warned
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
mpiexec=$2
set_root_attr=$3
source "$(dirname "$0")/../harness/e2e.sh"

common=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32
        --micro-batch-size 2 --global-batch-size 8 --lr 3e-3 --lr-warmup-iters 3
        --lr-decay-iters 400 --data-path synthetic:addition --log-interval 1 --log-level info
        --hidden-dropout 0.1 --seed 11)

# resumed M: the losses of STRAIGHT for iterations from FIRST..LAST equal
# those of the two halves, bitwise
same_as_straight() { # straight half1 half2
  cmp -s <(losses_by_iteration "$1") <(cat <(losses_by_iteration "$2") <(losses_by_iteration "$3"))
}

"$tessera" train "${common[@]}" --train-iters 12 --metrics-file "$work/straight12.jsonl" >/dev/null 2>&1

# --- --exit-interval
"$tessera" train "${common[@]}" --train-iters 12 --exit-interval 5 --save "$work/ei" \
  --metrics-file "$work/ei1.jsonl" >"$work/ei.log" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "stopping at iteration 5 of 12: --exit-interval" "$work/ei.log" &&
  [ "$(cat "$work/ei/latest_checkpointed_iteration.txt")" = 5 ]
check "--exit-interval 5: exit 0 at iteration 5 with a checkpoint and a message" $?
"$tessera" train "${common[@]}" --train-iters 12 --load "$work/ei" --metrics-file "$work/ei2.jsonl" \
  >/dev/null 2>&1
same_as_straight "$work/straight12.jsonl" "$work/ei1.jsonl" "$work/ei2.jsonl"
check "--exit-interval: 5 + resume to 12 == 12 straight, bitwise" $?

# --- --exit-duration-in-mins: a limit shorter than one iteration stops after the first
"$tessera" train "${common[@]}" --train-iters 12 --exit-duration-in-mins 0.000001 --save "$work/ed" \
  >"$work/ed.log" 2>&1
[ $? -eq 0 ] && grep -q "stopping at iteration 1 of 12: --exit-duration-in-mins reached" "$work/ed.log" &&
  [ "$(cat "$work/ed/latest_checkpointed_iteration.txt")" = 1 ]
check "--exit-duration-in-mins: stops at the first iteration past the limit, saved" $?

# wait_iteration LOG N: until the log shows iteration N (at most 60 s)
wait_iteration() {
  for _ in $(seq 600); do
    grep -q "iteration *$2/" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# signal_stop TAG SIGNAL COMMAND...: runs COMMAND (a 400-iteration
# training) with --exit-signal-handler, --save $work/TAG and the metrics
# file $work/TAG1.jsonl, sends it SIGNAL (TERM, USR1) once iteration 3 is
# logged; sets rc and stopped, the iteration its log says it stopped at
signal_stop() {
  local tag=$1 sig=$2
  shift 2
  "$@" --exit-signal-handler --save "$work/$tag" --metrics-file "$work/${tag}1.jsonl" \
    >"$work/$tag.log" 2>&1 &
  local pid=$!
  wait_iteration "$work/$tag.log" 3
  kill -"$sig" $pid
  wait $pid
  rc=$?
  stopped=$(sed -n "s/.*stopping at iteration \([0-9]*\) of 400: SIG$sig received.*/\1/p" \
    "$work/$tag.log")
}

# --- SIGTERM to a 1-rank run
long=(--train-iters 400)
"$tessera" train "${common[@]}" "${long[@]}" --metrics-file "$work/straight400.jsonl" >/dev/null 2>&1
signal_stop st TERM "$tessera" train "${common[@]}" "${long[@]}"
[ $rc -eq 0 ] && [ -n "$stopped" ] && [ "$(cat "$work/st/latest_checkpointed_iteration.txt")" = "$stopped" ]
check "SIGTERM (--exit-signal-handler, 1 rank): exit 0, saved at the iteration of the stop ($stopped)" $?
"$tessera" train "${common[@]}" "${long[@]}" --load "$work/st" --metrics-file "$work/st2.jsonl" \
  >/dev/null 2>&1
same_as_straight "$work/straight400.jsonl" "$work/st1.jsonl" "$work/st2.jsonl"
check "SIGTERM: stopped + resumed == 400 straight, bitwise" $?

# --- SIGUSR1 to mpirun (forwarded to every rank), 2 ranks with TP 2
mp=(--tensor-model-parallel-size 2)
"$mpiexec" -np 2 "$tessera" train "${common[@]}" "${long[@]}" "${mp[@]}" \
  --metrics-file "$work/straight_tp.jsonl" >/dev/null 2>&1
signal_stop su USR1 "$mpiexec" -np 2 "$tessera" train "${common[@]}" "${long[@]}" "${mp[@]}"
[ $rc -eq 0 ] && [ -n "$stopped" ] && [ "$(grep -c "stopping at iteration" "$work/su.log")" -eq 1 ] &&
  [ "$(cat "$work/su/latest_checkpointed_iteration.txt")" = "$stopped" ]
check "SIGUSR1 to mpirun (TP 2): every rank stops at iteration $stopped, one message, saved" $?
"$mpiexec" -np 2 "$tessera" train "${common[@]}" "${long[@]}" "${mp[@]}" --load "$work/su" \
  --metrics-file "$work/su2.jsonl" >/dev/null 2>&1
same_as_straight "$work/straight_tp.jsonl" "$work/su1.jsonl" "$work/su2.jsonl"
check "SIGUSR1: stopped + resumed == 400 straight under TP 2, bitwise" $?

# --- checksums: flip one bit of a tensor's data
"$tessera" train "${common[@]}" --train-iters 6 --save-interval 3 --save "$work/ck" >/dev/null 2>&1
# flip FILE DATASET WHERE(start|middle|end): xor 0x10 into one byte of its data
flip() {
  local size offset at byte
  read -r size offset < <(h5dump -p -H -d "$2" "$1" |
    awk '/STORAGE_LAYOUT/{s=1} s&&/SIZE/{z=$2} s&&/OFFSET/{o=$2; print z, o; exit}')
  case $3 in start) at=$offset ;; middle) at=$((offset + size / 2)) ;; end) at=$((offset + size - 1)) ;; esac
  byte=$(dd if="$1" bs=1 skip="$at" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
  printf "$(printf '\\%03o' $((byte ^ 16)))" | dd of="$1" bs=1 seek="$at" count=1 conv=notrunc 2>/dev/null
}
n=0
for target in "model/decoder.layers.0.self_attention.linear_qkv.weight start" \
              "optimizer/exp_avg/embedding.word_embeddings.weight middle" \
              "optimizer/exp_avg_sq/decoder.final_layernorm.bias end"; do
  set -- $target
  n=$((n + 1))
  cp -r "$work/ck" "$work/bad$n"
  flip "$work/bad$n/iter_0000006.h5" "/$1" "$2"
  "$tessera" train "${common[@]}" --train-iters 8 --load "$work/bad$n" >"$work/bad$n.log" 2>&1
  rc=$?
  [ $rc -eq 2 ] && grep -q "checkpoint $work/bad$n/iter_0000006.h5 is damaged: the data of tensor $1 fails its CRC-32C check" "$work/bad$n.log" &&
    grep -q "the iterations saved in $work/bad$n are: 3, 6" "$work/bad$n.log"
  check "a flipped bit at the $2 of $1: exit 2 naming the tensor and the file" $?
done
"$mpiexec" -np 2 "$tessera" train "${common[@]}" "${mp[@]}" --train-iters 8 --load "$work/bad1" \
  >"$work/bad_tp.log" 2>&1
rc=$?
[ $rc -eq 2 ] && [ "$(grep -c "is damaged: the data of tensor" "$work/bad_tp.log")" -eq 1 ]
check "the damaged checkpoint under TP 2: exit 2, the message printed once" $?
"$tessera" train "${common[@]}" --train-iters 8 --load "$work/bad1" --ckpt-step 3 >"$work/step.log" 2>&1
[ $? -eq 0 ] && grep -q "loaded checkpoint of iteration 3" "$work/step.log"
check "--ckpt-step 3 goes back past the damaged iteration 6" $?
"$tessera" train "${common[@]}" --train-iters 8 --load "$work/ck" --ckpt-step 4 >"$work/step4.log" 2>&1
[ $? -eq 2 ] && grep -q "iterations saved in $work/ck are: 3, 6" "$work/step4.log"
check "--ckpt-step of an iteration never saved: exit 2 listing the saved ones" $?
cp -r "$work/ck" "$work/huge"
echo 99999999999999999999 >"$work/huge/latest_checkpointed_iteration.txt"
"$tessera" train "${common[@]}" --train-iters 8 --load "$work/huge" >"$work/huge.log" 2>&1
[ $? -eq 2 ] && grep -q "does not hold an iteration number" "$work/huge.log"
check "a pointer file holding a number beyond int64: exit 2" $?

# --- counters read from a checkpoint are range-checked (not covered by the
# tensor checksums: they are attributes, which HDF5's metadata checksums
# cover only against damage, not against a forged or buggy writer)
for forged in "iteration -5" "consumed_samples 4611686018427387904" "adam_step 99"; do
  set -- $forged
  cp -r "$work/ck" "$work/forged_$1"
  "$set_root_attr" "$work/forged_$1/iter_0000006.h5" "$1" "$2"
  "$tessera" train "${common[@]}" --train-iters 8 --load "$work/forged_$1" >"$work/forged_$1.log" 2>&1
  [ $? -eq 2 ] && grep -q "checkpoint $work/forged_$1/iter_0000006.h5 is damaged: its" "$work/forged_$1.log"
  check "a checkpoint whose $1 is $2: exit 2, refused before training" $?
done

# --- --async-save: the same checkpoints, written while training goes on
dopt=(--use-distributed-optimizer)
"$mpiexec" -np 2 "$tessera" train "${common[@]}" "${dopt[@]}" --train-iters 12 \
  --metrics-file "$work/straight_dp.jsonl" >/dev/null 2>&1
"$mpiexec" -np 2 "$tessera" train "${common[@]}" "${dopt[@]}" --train-iters 12 --exit-interval 6 \
  --save-interval 2 --save "$work/as" --async-save --metrics-file "$work/as1.jsonl" >"$work/as.log" 2>&1
rc=$?
[ $rc -eq 0 ] && [ "$(grep -c "written in the background" "$work/as.log")" -eq 3 ] &&
  [ "$(grep -c "saved checkpoint at iteration .* (in the background)" "$work/as.log")" -eq 3 ] &&
  [ "$(cat "$work/as/latest_checkpointed_iteration.txt")" = 6 ]
check "--async-save (dp 2, distributed optimizer): 3 saves in the background, the last waited for" $?
"$mpiexec" -np 2 "$tessera" train "${common[@]}" "${dopt[@]}" --train-iters 12 --load "$work/as" \
  --metrics-file "$work/as2.jsonl" >/dev/null 2>&1
same_as_straight "$work/straight_dp.jsonl" "$work/as1.jsonl" "$work/as2.jsonl"
check "--async-save: 6 + resume to 12 == 12 straight, bitwise" $?
# SIGKILL while the background thread writes the second checkpoint (it
# pauses there): training has gone on meanwhile, the first checkpoint and
# the pointer to it stand
tensors=$(h5ls -r "$work/as/iter_0000006.h5" | grep -c Dataset)
TSR_CHECKPOINT_TEST_PAUSE_AFTER=$((tensors + tensors / 2)) "$tessera" train "${common[@]}" \
  --train-iters 400 --save-interval 2 --save "$work/ak" --async-save >"$work/ak.log" 2>&1 &
pid=$!
for _ in $(seq 300); do grep -q "pausing mid-save" "$work/ak.log" && break; sleep 0.1; done
wait_iteration "$work/ak.log" 6
went_on=$?
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
[ $went_on -eq 0 ] && [ "$(cat "$work/ak/latest_checkpointed_iteration.txt")" = 2 ] &&
  [ ! -f "$work/ak/iter_0000004.h5" ]
check "--async-save killed mid-write: training went on to iteration 6, the pointer still names 2" $?
"$tessera" train "${common[@]}" --train-iters 4 --load "$work/ak" >"$work/ak2.log" 2>&1
[ $? -eq 0 ] && grep -q "loaded checkpoint of iteration 2" "$work/ak2.log"
check "--async-save killed mid-write: iteration 2 loads" $?

# --- a rank stopped (SIGSTOP) in the middle of the second save: HDF5's MPI
# calls are outside the collectives' watchdog, the checkpoint watch ends the
# job naming the rank that fell behind; the first checkpoint stands
tensors=$(h5ls -r "$work/ck/iter_0000006.h5" | grep -c Dataset)
start=$(date +%s)
TSR_CHECKPOINT_TEST_PAUSE_AFTER=$((tensors + tensors / 2)) TSR_CHECKPOINT_TEST_STOP_RANK=1 \
  timeout 60 "$mpiexec" -np 2 "$tessera" train "${common[@]}" --train-iters 8 --save-interval 2 \
  --save "$work/sw" --distributed-timeout-minutes 0.05 >"$work/sw.log" 2>&1
rc=$?
took=$(($(date +%s) - start))
[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $took -le 33 ] &&
  grep -q "watchdog: checkpoint write of $work/sw/iter_0000004.h5.tmp made no progress on any rank for 3.0 s .*behind it: world rank 1 " "$work/sw.log" &&
  [ "$(cat "$work/sw/latest_checkpointed_iteration.txt")" = 2 ]
check "a rank stopped mid-save: the job ends after $took s naming world rank 1; iteration 2 stands" $?

# --- a full disk
mnt=$work/tmpfs
mkdir -p "$mnt"
# one checkpoint of this model takes about 1.2 MiB and asks for 1.4 MiB free:
# room for one, not two
if mount -t tmpfs -o size=2200k tmpfs "$mnt" 2>/dev/null; then
  "$tessera" train "${common[@]}" --train-iters 6 --save-interval 3 --save "$mnt/ck" \
    >"$work/full.log" 2>&1
  rc=$?
  [ $rc -eq 1 ] && grep -q -- "--save $mnt/ck: the checkpoint needs about .* MiB free (No space left on device, errno 28)" "$work/full.log" &&
    [ "$(cat "$mnt/ck/latest_checkpointed_iteration.txt")" = 3 ] && [ -z "$(ls "$mnt/ck" | grep tmp)" ]
  check "a full disk: exit 1 naming the path and errno; iteration 3 and its pointer untouched" $?
  "$tessera" train "${common[@]}" --train-iters 8 --load "$mnt/ck" >/dev/null 2>&1
  check "the checkpoint before the full disk still loads" $?
  rm -rf "$mnt/ck"
  "$mpiexec" -np 2 "$tessera" train "${common[@]}" --train-iters 6 --save-interval 2 --save "$mnt/ck" \
    --save-failure continue >"$work/cont.log" 2>&1
  rc=$?
  [ $rc -eq 0 ] && [ "$(grep -c "not saved: .*training continues (--save-failure continue)" "$work/cont.log")" -eq 2 ] &&
    [ "$(cat "$mnt/ck/latest_checkpointed_iteration.txt")" = 2 ]
  check "--save-failure continue (2 ranks): trains to the end, warns twice, iteration 2 kept" $?
  umount "$mnt"
else
  echo "SKIP a full disk: this machine does not let us mount a tmpfs"
fi
finish
