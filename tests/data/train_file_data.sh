#!/usr/bin/env bash
# train_file_data.sh TESSERA MPIEXEC - `tessera preprocess` then `tessera
# train` on the .bin/.idx it wrote:
#   1. preprocess + train + validation run; the loss falls
#   2. 2 data-parallel ranks (mpirun) give the losses of 1 rank within 1e-4
#      relative: sample i is the same whatever the layout
#   3. the weighted form "W1 P1 W2 P2" trains
#   4. bad files and flags end with exit 2 and a message saying what is
#      wrong, also under mpirun (printed once)
#   5. `preprocess --sft` data trains on its responses only: the loss mask
#      beside the tokens is read with them
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
mpiexec=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
check() { # name condition-exit-code
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); echo "PASS $1"; else failed=$((failed + 1)); echo "FAIL $1"; fi
}
losses() { grep '"type": "train"' "$1" | sed 's/.*"lm_loss": \([^,]*\),.*/\1/'; }
expect_fail() { # name needle command...
  local name=$1 needle=$2
  shift 2
  "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  if [ $rc -eq 2 ] && grep -q -- "$needle" "$work/err" && [ "$(grep -c "tessera train: error" "$work/err")" -eq 1 ]; then
    check "$name" 0
  else
    echo "  rc=$rc, stderr:"; sed 's/^/    /' "$work/err"; check "$name" 1
  fi
}

# a small corpus: 600 lines of words from a 24-word vocabulary
awk 'BEGIN { srand(3); split("the a cat dog sat on mat and ran to big red small tree house " \
  "bird sang flew over river in park under sun", w, " ");
  for (i = 0; i < 600; i++) { n = 4 + int(rand() * 20); s = "";
    for (j = 0; j < n; j++) s = s (j ? " " : "") w[1 + int(rand() * 24)]; print s } }' \
  > "$work/corpus.txt"
"$tessera" preprocess --input "$work/corpus.txt" --output-prefix "$work/c" \
  --tokenizer-type byte --append-eod > "$work/pre.out"
check "preprocess writes c_text_document" $?
grep -q -- "--vocab-size 257" "$work/pre.out"
check "preprocess prints the vocabulary size to train with" $?

common=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32
        --micro-batch-size 4 --global-batch-size 8 --lr 3e-3 --lr-warmup-iters 5
        --data-path "$work/c_text_document" --vocab-size 257 --split 90,10,0
        --log-interval 1 --log-level warn --seed 11)

"$tessera" train "${common[@]}" --train-iters 60 --eval-interval 30 --eval-iters 4 \
  --metrics-file "$work/learn.jsonl" >/dev/null
check "train on .bin/.idx with validation" $?
first=$(losses "$work/learn.jsonl" | head -n 5 | awk '{s += $1} END {print s / NR}')
last=$(losses "$work/learn.jsonl" | tail -n 5 | awk '{s += $1} END {print s / NR}')
echo "  loss $first -> $last"
awk -v a="$first" -v b="$last" 'BEGIN {exit !(b < 0.8 * a)}'
check "the loss falls by more than 20%" $?
[ "$(grep -c '"type": "valid"' "$work/learn.jsonl")" -eq 2 ]
check "two validations on the valid split" $?

"$tessera" train "${common[@]}" --train-iters 12 --metrics-file "$work/dp1.jsonl" >/dev/null
"$mpiexec" -np 2 --oversubscribe "$tessera" train "${common[@]}" --train-iters 12 \
  --metrics-file "$work/dp2.jsonl" >/dev/null
check "2 data-parallel ranks run" $?
paste <(losses "$work/dp1.jsonl") <(losses "$work/dp2.jsonl") | awk '
  NF != 2 {bad = 1} { r = ($1 - $2) / $1; if (r < 0) r = -r; if (r > worst) worst = r; if (r > 1e-4) bad = 1 }
  END { printf "  dp2 vs 1 rank: worst relative loss difference %.3g over %d steps\n", worst, NR; exit bad || NR != 12 }'
check "2 ranks == 1 rank within 1e-4 relative (same samples)" $?

sed 's/cat/bat/g' "$work/corpus.txt" | "$tessera" preprocess --input /dev/stdin \
  --output-prefix "$work/d" >/dev/null
"$tessera" train "${common[@]/$work\/c_text_document/0.3 $work/c_text_document 0.7 $work/d_text_document}" \
  --train-iters 6 --metrics-file "$work/blend_quoted.jsonl" >/dev/null
check "weighted --data-path \"0.3 P1 0.7 P2\" trains" $?
# Megatron's spelling: the blend as separate words, the same run
words=()
for w in "${common[@]}"; do
  if [ "$w" = "$work/c_text_document" ]; then
    words+=(0.3 "$work/c_text_document" 0.7 "$work/d_text_document")
  else
    words+=("$w")
  fi
done
"$tessera" train "${words[@]}" --train-iters 6 --metrics-file "$work/blend_words.jsonl" >/dev/null &&
  cmp -s <(losses "$work/blend_quoted.jsonl") <(losses "$work/blend_words.jsonl")
check "--data-path 0.3 P1 0.7 P2 as separate words: the same losses as quoted" $?

noflag=("${common[@]/--vocab-size/--seed}")
expect_fail "missing --vocab-size: exit 2" "give --vocab-size" \
  "$tessera" train "${noflag[@]/257/1}" --train-iters 6
expect_fail "token outside --vocab-size: exit 2, names file and token" "c_text_document.bin: token 256" \
  "$tessera" train "${common[@]/257/256}" --train-iters 6
cp "$work/c_text_document.bin" "$work/t_text_document.bin"
head -c 100 "$work/c_text_document.idx" > "$work/t_text_document.idx"
expect_fail "truncated .idx: exit 2" "truncated" \
  "$tessera" train "${common[@]/c_text_document/t_text_document}" --train-iters 6
cp "$work/c_text_document.idx" "$work/t_text_document.idx"
head -c 1000 "$work/c_text_document.bin" > "$work/t_text_document.bin"
expect_fail "truncated .bin: exit 2" "runs outside" \
  "$tessera" train "${common[@]/c_text_document/t_text_document}" --train-iters 6
printf 'XXIDIDX' | dd of="$work/t_text_document.idx" conv=notrunc status=none
expect_fail "bad magic under mpirun -np 2: exit 2, printed once" "magic" \
  "$mpiexec" -np 2 --oversubscribe "$tessera" train "${common[@]/c_text_document/t_text_document}" --train-iters 6
expect_fail "missing prefix: exit 2" "PREFIX.bin and PREFIX.idx" \
  "$tessera" train "${common[@]/c_text_document/none_text_document}" --train-iters 6
expect_fail "empty valid split with --eval-interval: exit 2" "split 'valid'" \
  "$tessera" train "${common[@]/90,10,0/100,0,0}" --train-iters 6 --eval-interval 1
expect_fail "malformed --data-path: exit 2" "WEIGHT PREFIX" \
  "$tessera" train "${common[@]/$work\/c_text_document/0.5 a 0.5}" --train-iters 6

# 5. instruction data: random prompts, a constant response. With the loss
# mask of --sft only the response is trained on and soon predicted; the
# same tokens without their mask leave the random prompts in the loss.
awk 'BEGIN { srand(9); for (i = 0; i < 400; i++) { p = "";
  for (j = 0; j < 12; j++) p = p sprintf("%c", 97 + int(rand() * 26));
  printf "{\"prompt\": \"%s\", \"response\": \"=ok\"}\n", p } }' >"$work/sft.jsonl"
"$tessera" preprocess --sft --input "$work/sft.jsonl" --output-prefix "$work/i" \
  --tokenizer-type byte --append-eod >"$work/sft.out" 2>&1
grep -q "400 conversations, 6400 tokens, 1600 (25.0%) trained on" "$work/sft.out"
check "preprocess --sft: 400 conversations, a quarter of the tokens trained on" $?
sft=(--data-path "$work/i_sft_document" --vocab-size 257 --num-layers 2 --hidden-size 64
     --num-attention-heads 4 --seq-length 32 --micro-batch-size 4 --global-batch-size 8
     --lr 3e-3 --train-iters 40 --log-interval 1 --seed 3)
"$tessera" train "${sft[@]}" --metrics-file "$work/sft.jsonl.log" >/dev/null 2>&1
masked=$(losses "$work/sft.jsonl.log" | tail -1)
mkdir -p "$work/nomask" && cp "$work/i_sft_document.bin" "$work/i_sft_document.idx" "$work/nomask/"
"$tessera" train "${sft[@]/$work\/i_sft_document/$work/nomask/i_sft_document}" \
  --metrics-file "$work/nomask.log" >/dev/null 2>&1
unmasked=$(losses "$work/nomask.log" | tail -1)
awk -v a="$masked" -v b="$unmasked" 'BEGIN { exit !(a > 0 && a < 0.3 * b) }'
check "training on the loss mask learns the response: final loss $masked vs $unmasked without the mask" $?

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
