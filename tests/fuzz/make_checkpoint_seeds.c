/*
 * make_checkpoint_seeds.c - writes the seed corpus of fuzz_checkpoint:
 * real checkpoints saved by tsr_checkpoint_save from the fixed model of
 * fuzz_checkpoint_model.h (so the fuzzer starts past every check, at the
 * tensor reads), then variants that each stop at one check: another
 * model, other tensor shapes, a changed or missing attribute, a pointer
 * naming another iteration, truncated and corrupted files, bad pointer
 * text. Each seed is: uint16 LE length of the pointer text, the text, the
 * HDF5 bytes (see fuzz_checkpoint.c).
 *
 *   make_checkpoint_seeds OUTDIR     (OUTDIR: tests/fuzz/corpus/checkpoint)
 *
 * Built with -DTSR_BUILD_FUZZ=ON only; run by hand when the format changes.
 * One more seed, tessera_train_h8, is a checkpoint of the real model (it
 * passes the attribute checks of the fixed configuration, then lacks the
 * fixed table's tensors), made with
 *   tessera train --num-layers 1 --hidden-size 8 --num-attention-heads 2 \
 *       --seq-length 16 --micro-batch-size 1 --train-iters 1 \
 *       --make-vocab-size-divisible-by 1 --save DIR
 * and packed as "1\n" + DIR/iter_0000001.h5 (42 KiB).
 */
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_checkpoint_model.h"

static const char *out_dir;

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static void emit(const char *name, const char *text, const unsigned char *h5, size_t h5_len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    size_t n = strlen(text);
    unsigned char hdr[2] = {(unsigned char)(n & 0xff), (unsigned char)(n >> 8)};
    fwrite(hdr, 1, 2, f);
    fwrite(text, 1, n, f);
    if (h5_len)
        fwrite(h5, 1, h5_len, f);
    fclose(f);
    printf("%s: %zu bytes\n", name, 2 + n + h5_len);
}

/* Saves a checkpoint of `iteration` from cfg and tensors into dir and
 * returns the file's bytes. */
static unsigned char *save(const char *dir, const tsr_config *cfg, const tsr_tensor_desc *tensors,
                           int64_t iteration, size_t *len)
{
    float p[FUZZ_CKPT_FLOATS], m[FUZZ_CKPT_FLOATS], v[FUZZ_CKPT_FLOATS];
    for (int i = 0; i < FUZZ_CKPT_FLOATS; i++) {
        p[i] = 0.5f * (float)i - 3.0f;
        m[i] = 0.01f * (float)i;
        v[i] = 0.001f * (float)(i * i);
    }
    tsr_checkpoint_content c = {tensors, FUZZ_CKPT_TENSORS, p, m, v, {NULL, 0, false}, NULL};
    tsr_checkpoint_state st = {iteration, iteration * 4, iteration, 0, 1234,
                               TSR_CHECKPOINT_FORMAT_VERSION};
    if (tsr_checkpoint_save(dir, cfg, &st, &c, MPI_COMM_SELF) != TSR_OK) {
        fprintf(stderr, "save failed: %s\n", tsr_last_error());
        exit(1);
    }
    char path[4096];
    tsr_checkpoint_path(dir, iteration, path, sizeof path);
    return slurp(path, len);
}

/* Saves a valid checkpoint, then rewrites one of its root attributes
 * (value < 0: deletes it). */
static unsigned char *edit_attr(const char *dir, int64_t iteration, const char *name,
                                int64_t value, size_t *len)
{
    tsr_config cfg;
    fuzz_ckpt_config(&cfg);
    free(save(dir, &cfg, fuzz_ckpt_tensors, iteration, len));
    char path[4096];
    tsr_checkpoint_path(dir, iteration, path, sizeof path);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (value < 0) {
        H5Adelete(f, name);
    } else {
        hid_t a = H5Aopen(f, name, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT64, &value);
        H5Aclose(a);
    }
    H5Fclose(f);
    return slurp(path, len);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    MPI_Init(&argc, &argv);
    char dir[] = "/tmp/tsr-ckpt-seeds-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 1;
    tsr_config cfg;
    fuzz_ckpt_config(&cfg);
    size_t n = 0;

    unsigned char *good = save(dir, &cfg, fuzz_ckpt_tensors, 1, &n);
    size_t good_len = n;
    emit("valid_iter1", "1\n", good, good_len);
    emit("pointer_names_iter2", "2\n", good, good_len);
    emit("pointer_garbage", "latest\n", good, good_len);
    emit("pointer_negative", "-1\n", good, good_len);
    emit("pointer_empty", "", good, good_len);
    emit("no_file", "1\n", NULL, 0);
    emit("truncated_half", "1\n", good, good_len / 2);
    emit("truncated_1k", "1\n", good, good_len < 1024 ? good_len : 1024);
    emit("truncated_tail", "1\n", good, good_len - 64);
    unsigned char *bad = malloc(good_len);
    memcpy(bad, good, good_len);
    for (size_t i = 700; i < good_len; i += 997)
        bad[i] ^= 0x5a;
    emit("corrupted_bytes", "1\n", bad, good_len);
    emit("not_hdf5", "1\n", (const unsigned char *)"not an HDF5 file\n", 17);

    unsigned char *b = save(dir, &cfg, fuzz_ckpt_tensors, 250, &n);
    emit("valid_iter250", "250", b, n);
    free(b);
    b = edit_attr(dir, 250, "format_version", 2, &n);
    emit("format_version2", "250\n", b, n);
    free(b);
    b = edit_attr(dir, 250, "seed", -1, &n);
    emit("missing_seed", "250\n", b, n);
    free(b);
    b = edit_attr(dir, 250, "iteration", 7, &n);
    emit("iteration_attr_differs", "250\n", b, n);
    free(b);

    tsr_config other;
    fuzz_ckpt_config(&other);
    other.hidden_size = 16;
    b = save(dir, &other, fuzz_ckpt_tensors, 3, &n);
    emit("other_model", "3\n", b, n);
    free(b);

    tsr_tensor_desc shapes[FUZZ_CKPT_TENSORS];
    memcpy(shapes, fuzz_ckpt_tensors, sizeof shapes);
    shapes[2].cols = 5; /* dense_weight 4x5 instead of 4x6 */
    b = save(dir, &cfg, shapes, 4, &n);
    emit("other_shape", "4\n", b, n);
    free(b);
    memcpy(shapes, fuzz_ckpt_tensors, sizeof shapes);
    shapes[1].cols = 2, shapes[1].col_count = 2; /* the vector as a 4x2 matrix */
    shapes[2].offset = 40;
    b = save(dir, &cfg, shapes, 5, &n);
    emit("vector_as_matrix", "5\n", b, n);
    free(b);
    memcpy(shapes, fuzz_ckpt_tensors, sizeof shapes);
    shapes[1].name = "final_layernorm_weight"; /* a tensor the model lacks */
    b = save(dir, &cfg, shapes, 6, &n);
    emit("missing_tensor", "6\n", b, n);
    free(b);

    free(bad);
    free(good);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    MPI_Finalize();
    return 0;
}
