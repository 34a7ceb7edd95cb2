#!/usr/bin/env bash
# plugin_bad_input.sh TESSERA MPIEXEC PLUGIN BAD_DIR - what a user sees when
# --model or --model-plugin is wrong, under `mpirun -np 2`: exit code 2 and
# one message, printed once over all ranks, that names the plugin (or the
# model) and the problem. PLUGIN is the working parallel_gpt plugin; BAD_DIR
# holds the broken ones built from bad_plugins.c. The cases go through
# tests/cli/run_cases.sh --mpirun, from a table written here (the paths are
# the build's).
set -u
tessera=$1
mpiexec=$2
plugin=$3
bad=$4
source "$(dirname "$0")/../harness/e2e.sh"
run_cases=$(dirname "$0")/../cli/run_cases.sh

printf 'this is a text file, not a shared object\n' >"$work/not_a_plugin.so"
mkdir "$work/a_directory.so"
table=$work/cases.table
cat >"$table" <<CASES
# unknown names list what is registered (the built-in models first, then the plugin's)
--model no_such_model is not a registered model (registered: gpt | train --model no_such_model
, parallel_gpt; --model-plugin $plugin added none of that name | train --model-plugin $plugin --model no_such_model
--model-plugin $work/missing.so does not exist | train --model-plugin $work/missing.so --model parallel_gpt
--model-plugin $work/a_directory.so is not a file | train --model-plugin $work/a_directory.so --model parallel_gpt
--model-plugin $work/not_a_plugin.so is not a shared object tessera can load: | train --model-plugin $work/not_a_plugin.so --model parallel_gpt
--model-plugin $bad/libbad_nosym.so lacks the registration function tsr_plugin_register() | train --model-plugin $bad/libbad_nosym.so --model parallel_gpt
--model-plugin $bad/libbad_fails.so: its tsr_plugin_register() failed (invalid argument): this plugin refuses to register (test) | train --model-plugin $bad/libbad_fails.so --model parallel_gpt
--model-plugin $bad/libbad_empty.so registered no model | train --model-plugin $bad/libbad_empty.so --model parallel_gpt
# the builder refuses the plugin's spec before anything is allocated
model 'bad_split' from plugin $bad/libbad_badspec.so: parameter decoder.layers.0.odd_linear.weight is split by rows, but its 3 rows are not divisible by --tensor-model-parallel-size 2 | train --model-plugin $bad/libbad_badspec.so --model bad_split --tensor-model-parallel-size 2
model 'bad_activation' from plugin $bad/libbad_badspec.so: module decoder.layers.0.scratch_activation (scratch_activation): scratch buffer work is marked an activation | train --model-plugin $bad/libbad_badspec.so --model bad_activation
model 'bad_duplicate' from plugin $bad/libbad_badspec.so: two parameters are named decoder.layers.0.duplicate.weight; give the modules distinct names | train --model-plugin $bad/libbad_badspec.so --model bad_duplicate
CASES

bash "$run_cases" --mpirun "$mpiexec" 2 "$tessera" "$table"
check "bad --model / --model-plugin: exit 2, one message naming the plugin and the problem, once" $?

finish
