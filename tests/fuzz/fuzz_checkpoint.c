/*
 * fuzz_checkpoint.c - libFuzzer target for what judges a checkpoint before
 * and while its tensors are read: the latest_checkpointed_iteration.txt
 * parser, the root attributes compared with the configuration
 * (tsr_checkpoint_read_metadata) and each tensor's shape check and block
 * read, all through tsr_checkpoint_load().
 *
 * Input: a little-endian uint16 n, then n bytes of
 * latest_checkpointed_iteration.txt, then the bytes of the HDF5 file. The
 * file is written where the pointer file sends the loader (iter_0000000.h5
 * when the text holds no iteration; not at all when empty), in a private
 * temporary directory. Every input must end in TSR_OK or TSR_ERR_FORMAT;
 * an accepted file is loaded a second time with a sharded optimizer state.
 *
 * MPI is initialised once, in LLVMFuzzerInitialize (replay.c calls it
 * too), and loads run on MPI_COMM_SELF through parallel HDF5's MPI-IO
 * driver, as a one-rank job does. HDF5 itself is not instrumented: a crash
 * inside libhdf5 on a hostile file is HDF5's, not tessera's.
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_checkpoint_model.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The scratch directory: per process, made once, removed at exit. */
static char fuzz_dir[256];

static void cleanup(void)
{
    if (fuzz_dir[0] != '\0')
        rmdir(fuzz_dir);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized)
        MPI_Finalize();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited)
        MPI_Init(NULL, NULL);
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/tsr-fuzz-ckpt-XXXXXX", base);
    if (mkdtemp(fuzz_dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    atexit(cleanup);
    return 0;
}

static int write_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t put = len ? fwrite(data, 1, len, f) : 0;
    return fclose(f) == 0 && put == len ? 0 : -1;
}

static tsr_status load(const tsr_config *cfg, const tsr_param_shard *shard, int64_t *iteration)
{
    float params[FUZZ_CKPT_FLOATS], m[FUZZ_CKPT_FLOATS], v[FUZZ_CKPT_FLOATS];
    tsr_checkpoint_content c = {fuzz_ckpt_tensors, FUZZ_CKPT_TENSORS, params, m, v, *shard, NULL};
    tsr_checkpoint_state state;
    memset(&state, 0, sizeof state);
    tsr_status st = tsr_checkpoint_load("--load", fuzz_dir, cfg, &state, &c, MPI_COMM_SELF);
    if (getenv("TSR_FUZZ_VERBOSE") != NULL) /* to see which check each seed reaches */
        fprintf(stderr, "load%s: %s: %s\n", shard->sharded_state ? " (sharded)" : "",
                tsr_status_string(st), st == TSR_OK ? "" : tsr_last_error());
    if (st != TSR_OK && st != TSR_ERR_FORMAT)
        abort(); /* a bad checkpoint is a format error, nothing else */
    if (st == TSR_OK && state.iteration != *iteration)
        abort(); /* load promises the pointer and the file agree */
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_dir[0] == '\0')
        LLVMFuzzerInitialize(NULL, NULL);
    if (size < 2)
        return 0;
    size_t text_len = (size_t)data[0] | (size_t)data[1] << 8;
    if (text_len > size - 2)
        text_len = size - 2;
    const uint8_t *text = data + 2, *h5 = data + 2 + text_len;
    size_t h5_len = size - 2 - text_len;

    char latest[512], ckpt[4096];
    snprintf(latest, sizeof latest, "%s/latest_checkpointed_iteration.txt", fuzz_dir);
    if (write_file(latest, text, text_len) != 0)
        abort();
    /* where the loader will look: parse as it does, on a terminated copy */
    char buf[64];
    size_t n = text_len < sizeof buf - 1 ? text_len : sizeof buf - 1;
    memcpy(buf, text, n);
    buf[n] = '\0';
    long long it = -1;
    if (sscanf(buf, "%lld", &it) != 1 || it < 0)
        it = 0;
    int64_t iteration = it;
    tsr_checkpoint_path(fuzz_dir, iteration, ckpt, sizeof ckpt);
    if (h5_len > 0 && write_file(ckpt, h5, h5_len) != 0)
        abort();

    tsr_config cfg;
    fuzz_ckpt_config(&cfg);
    tsr_param_shard whole = {NULL, 0, false};
    tsr_param_shard sharded = {fuzz_ckpt_ranges, 2, true};
    if (load(&cfg, &whole, &iteration) == TSR_OK)
        load(&cfg, &sharded, &iteration);

    unlink(ckpt);
    unlink(latest);
    return 0;
}
