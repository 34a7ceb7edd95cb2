/*
 * test_dp_checkpoint_mpi.c - checkpoints written by data-parallel ranks
 * that each own slices of the flat buffer (mpirun -np 3): every element of
 * every tensor lands at its global position exactly once, whether the
 * optimizer state is sharded (packed moments) or not, and the file reads
 * back into any other ownership: whole arrays, the same shards, and the
 * shards of another data-parallel size.
 *
 * Values encode their flat index (param i = i + 0.5, moments 1000 + i and
 * 2000 + i), so any misplaced element is caught exactly.
 */
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "harness.h"
#include "sharding/grad_buckets.h"
#include "tessera/log.h"

#define N 220

/* a: a whole 13 x 7 matrix; b: a vector of 50; c: the 12 x 5 block at
 * (4, 3) of a 20 x 9 matrix (a tensor-parallel shard, say). Gaps between
 * them belong to no tensor. */
static const tsr_tensor_desc tensors[3] = {
    {"a", 13, 7, 0, 13, 0, 7, 0, true, false, false, 0},
    {"b", 50, 1, 0, 50, 0, 1, 96, true, false, false, 0},
    {"c", 20, 9, 4, 12, 3, 5, 160, true, false, false, 0},
};

static bool in_tensor(size_t e)
{
    return e < 91 || (e >= 96 && e < 146) || (e >= 160 && e < 220);
}

static void make_dir(char *dir, size_t len)
{
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0) {
        snprintf(dir, len, "/tmp/tsr_dp_ckpt_XXXXXX");
        if (mkdtemp(dir) == NULL)
            dir[0] = '\0';
    }
    MPI_Bcast(dir, (int)len, MPI_CHAR, 0, MPI_COMM_WORLD);
}

static void remove_dir(const char *dir)
{
    int rank = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank != 0)
        return;
    char path[512];
    tsr_checkpoint_path(dir, 7, path, sizeof path);
    unlink(path);
    snprintf(path, sizeof path, "%s/latest_checkpointed_iteration.txt", dir);
    unlink(path);
    rmdir(dir);
}

/* Fills this rank's arrays: the whole parameter buffer, and moments either
 * whole or packed by the shard. */
static void fill(const tsr_param_shard *shard, float *params, float *m, float *v)
{
    for (size_t e = 0; e < N; e++)
        params[e] = (float)e + 0.5f;
    if (!shard->sharded_state) {
        for (size_t e = 0; e < N; e++) {
            m[e] = 1000.0f + (float)e;
            v[e] = 2000.0f + (float)e;
        }
        return;
    }
    for (size_t i = 0; i < shard->range_count; i++) {
        const tsr_shard_range *r = &shard->ranges[i];
        for (size_t k = 0; k < r->count; k++) {
            m[r->state_offset + k] = 1000.0f + (float)(r->offset + k);
            v[r->state_offset + k] = 2000.0f + (float)(r->offset + k);
        }
    }
}

/* Counts elements of the tensors that differ from what fill() wrote. */
static int wrong_elements(const tsr_param_shard *shard, const float *params, const float *m,
                          const float *v)
{
    int wrong = 0;
    for (size_t e = 0; e < N; e++)
        if (in_tensor(e))
            wrong += params[e] != (float)e + 0.5f;
    if (!shard->sharded_state) {
        for (size_t e = 0; e < N; e++)
            if (in_tensor(e))
                wrong += m[e] != 1000.0f + (float)e || v[e] != 2000.0f + (float)e;
        return wrong;
    }
    for (size_t i = 0; i < shard->range_count; i++) {
        const tsr_shard_range *r = &shard->ranges[i];
        for (size_t k = 0; k < r->count; k++)
            if (in_tensor(r->offset + k))
                wrong += m[r->state_offset + k] != 1000.0f + (float)(r->offset + k) ||
                         v[r->state_offset + k] != 2000.0f + (float)(r->offset + k);
    }
    return wrong;
}

/* Reads each dataset whole with plain HDF5 on rank 0 and checks that
 * every element sits at its global position (independently of the
 * selection code both saving and loading use). */
static void check_file_positions(const char *dir)
{
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank != 0)
        return;
    char path[512];
    tsr_checkpoint_path(dir, 7, path, sizeof path);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(file >= 0);
    static const char *groups[3] = {"model", "optimizer/exp_avg", "optimizer/exp_avg_sq"};
    static const float base[3] = {0.5f, 1000.0f, 2000.0f};
    int wrong = 0;
    for (int g = 0; g < 3; g++) {
        for (int i = 0; i < 3; i++) {
            const tsr_tensor_desc *t = &tensors[i];
            char name[128];
            snprintf(name, sizeof name, "%s/%s", groups[g], t->name);
            float data[200];
            hid_t set = H5Dopen2(file, name, H5P_DEFAULT);
            CU_ASSERT_FATAL(set >= 0);
            CU_ASSERT_EQUAL(H5Dread(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
                            0);
            H5Dclose(set);
            for (int64_t r = 0; r < t->rows; r++) {
                for (int64_t c = 0; c < t->cols; c++) {
                    bool inside = r >= t->row_start && r < t->row_start + t->row_count &&
                                  c >= t->col_start && c < t->col_start + t->col_count;
                    size_t e = t->offset + (size_t)((r - t->row_start) * t->col_count +
                                                    (c - t->col_start));
                    float want = inside ? base[g] + (float)e : 0.0f; /* fill value outside */
                    wrong += data[r * t->cols + c] != want;
                }
            }
        }
    }
    H5Fclose(file);
    CU_ASSERT_EQUAL(wrong, 0);
}

/* Loads the checkpoint in dir with the given ownership into fresh arrays
 * and checks every element. */
static void check_load(const char *dir, const tsr_param_shard *shard)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    float *params = calloc(256, sizeof(float)), *m = calloc(256, sizeof(float)),
          *v = calloc(256, sizeof(float));
    tsr_checkpoint_content c = {tensors, 3, params, m, v, *shard, NULL};
    tsr_checkpoint_state state;
    CU_ASSERT_EQUAL_FATAL(tsr_checkpoint_load("--load", dir, &cfg, &state, &c, MPI_COMM_WORLD),
                          TSR_OK);
    CU_ASSERT_EQUAL(state.iteration, 7);
    CU_ASSERT_EQUAL(wrong_elements(shard, params, m, v), 0);
    free(params);
    free(m);
    free(v);
}

static void save_and_reload(bool sharded, int64_t bucket)
{
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    char dir[64];
    make_dir(dir, sizeof dir);
    CU_ASSERT_FATAL(dir[0] != '\0');
    tsr_bucket_layout l;
    CU_ASSERT_EQUAL_FATAL(tsr_bucket_layout_compute(N, size, rank, bucket, sharded, &l), TSR_OK);
    tsr_param_shard shard = tsr_bucket_layout_shard(&l);
    float params[256] = {0}, m[256] = {0}, v[256] = {0};
    fill(&shard, params, m, v);
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    tsr_checkpoint_state state = {7, 70, 7, 0, 1234, TSR_CHECKPOINT_FORMAT_VERSION, false, false, "", 0.0, 0, 0, 0};
    tsr_checkpoint_content c = {tensors, 3, params, m, v, shard, NULL};
    CU_ASSERT_EQUAL_FATAL(tsr_checkpoint_save(dir, &cfg, &state, &c, MPI_COMM_WORLD), TSR_OK);

    check_file_positions(dir);
    tsr_param_shard whole = {NULL, 0, false};
    check_load(dir, &whole); /* as one rank would */
    check_load(dir, &shard); /* the same ownership */
    tsr_bucket_layout other; /* another data-parallel size and bucket size */
    int other_size = size > 1 ? size - 1 : 1;
    CU_ASSERT_EQUAL_FATAL(tsr_bucket_layout_compute(N, other_size, rank % other_size, 64, true,
                                                    &other),
                          TSR_OK);
    tsr_param_shard other_shard = tsr_bucket_layout_shard(&other);
    check_load(dir, &other_shard);
    tsr_bucket_layout_free(&other);
    tsr_bucket_layout_free(&l);
    remove_dir(dir);
}

static void test_sharded_state_one_bucket(void)
{
    save_and_reload(true, 0);
}

static void test_sharded_state_buckets_cut_rows(void)
{
    save_and_reload(true, 40); /* slices of 16 cut the 7- and 5-wide rows */
}

static void test_replicated_state_split_writing(void)
{
    save_and_reload(false, 33);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_sharded_state_one_bucket),
    TSR_TEST(test_sharded_state_buckets_cut_rows),
    TSR_TEST(test_replicated_state_split_writing),
};

int main(int argc, char **argv)
{
    tsr_log_configure(0, 1, TSR_LOG_WARN);
    const tsr_test_suite suites[] = {TSR_SUITE("dp checkpoints", cases)};
    return tsr_test_mpi_main(&argc, &argv, suites, 1);
}
