/*
 * test_weights16.c - where the weights live under --bf16 / --fp16: the
 * sparse block that backs the model's fp32 view only where modules read
 * it (and faults elsewhere), which parameters are never read in fp32,
 * the trainer's fp32 master taken from the carved initial values, the
 * 16-bit copies and the view written from it, and the checkpoint image.
 * fp16 is used for the trainer cases: its products run on every CPU.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"
#include "data/dataset.h"
#include "harness.h"
#include "tessera/kernels.h"
#include "tessera/module.h"
#include "test_net.h"
#include "train/trainer.h"

static void test_sparse_pages_counted_once(void)
{
    size_t page = tsr_sparse_page_bytes(), last = SIZE_MAX;
    CU_ASSERT_EQUAL(tsr_sparse_new_pages(0, 0, &last), 0u);
    CU_ASSERT_EQUAL(tsr_sparse_new_pages(10, 20, &last), page);       /* page 0 */
    CU_ASSERT_EQUAL(tsr_sparse_new_pages(100, page, &last), page);    /* pages 0-1: 1 new */
    CU_ASSERT_EQUAL(tsr_sparse_new_pages(page + 8, 8, &last), 0u);    /* page 1 again */
    CU_ASSERT_EQUAL(tsr_sparse_new_pages(5 * page, 1, &last), page);  /* page 5 */
    CU_ASSERT_EQUAL(tsr_sparse_new_pages(5 * page + 1, 2 * page, &last), 2 * page);
}

static void test_sparse_commit_keeps_contents_and_plan_leaves_it_out(void)
{
    size_t page = tsr_sparse_page_bytes();
    tsr_sparse_block b;
    CU_ASSERT_EQUAL_FATAL(tsr_sparse_reserve(10 * page + 3, &b), TSR_OK);
    CU_ASSERT_EQUAL(b.bytes, 11 * page);
    CU_ASSERT_EQUAL(b.committed, 0u);
    CU_ASSERT_EQUAL_FATAL(tsr_sparse_commit(&b, 16, 64), TSR_OK);
    CU_ASSERT_EQUAL(b.base[16], 0);
    memset(b.base + 16, 7, 64);
    /* a later range sharing the page: what was written stays */
    CU_ASSERT_EQUAL_FATAL(tsr_sparse_commit(&b, 200, 3 * page), TSR_OK);
    CU_ASSERT_EQUAL(b.base[16], 7);
    CU_ASSERT_EQUAL(b.base[79], 7);
    CU_ASSERT_EQUAL(b.base[200 + 3 * page - 1], 0);
    CU_ASSERT_EQUAL(b.committed, 4 * page);
    CU_ASSERT_NOT_EQUAL(tsr_sparse_commit(&b, 10 * page, 2 * page), TSR_OK); /* past the end */
    tsr_sparse_release(&b);
    CU_ASSERT_PTR_NULL(b.base);

    tsr_memory_plan plan;
    memset(&plan, 0, sizeof plan);
    tsr_plan_add_floats(&plan, TSR_MEM_PARAMS, 16);
    tsr_plan_add_sparse(&plan, TSR_MEM_PARAMS, 3 * page);
    CU_ASSERT_EQUAL(plan.bytes[TSR_MEM_PARAMS], 64 + 3 * page); /* counted in the plan */
    CU_ASSERT_EQUAL(tsr_plan_total_bytes(&plan), 64 + 3 * page);
    CU_ASSERT_EQUAL_FATAL(tsr_plan_allocate(&plan), TSR_OK);
    CU_ASSERT_EQUAL(plan.arenas[TSR_MEM_PARAMS].capacity, 64u); /* not in the arena */
    tsr_plan_release(&plan);
}

/* A read of a page that was never committed ends the process (in a child). */
static bool read_faults(const char *p)
{
    pid_t pid = fork();
    if (pid == 0) {
        /* the default action, not a sanitizer's report of the expected fault */
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        volatile char c = *(const volatile char *)p;
        (void)c;
        _exit(0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return false;
    return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_sparse_uncommitted_read_faults(void)
{
    size_t page = tsr_sparse_page_bytes();
    tsr_sparse_block b;
    CU_ASSERT_EQUAL_FATAL(tsr_sparse_reserve(4 * page, &b), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_sparse_commit(&b, page, 8), TSR_OK);
    CU_ASSERT_FALSE(read_faults(b.base + page + page - 1)); /* the committed page */
    CU_ASSERT_TRUE(read_faults(b.base + 2 * page));
    CU_ASSERT_TRUE(read_faults(b.base));
    tsr_sparse_release(&b);
}

static tsr_config small_gpt(bool fp16)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    cfg.num_layers = 2;
    cfg.hidden_size = 256; /* the weights without fp32 reads span whole pages */
    cfg.num_attention_heads = 4;
    cfg.ffn_hidden_size = 1024;
    cfg.seq_length = 16;
    cfg.max_position_embeddings = 16;
    cfg.micro_batch_size = 1;
    cfg.global_batch_size = 1;
    cfg.train_iters = 1;
    cfg.data_path = "synthetic:random";
    cfg.lr = 1e-2;
    cfg.lr_decay_style = TSR_LR_CONSTANT;
    cfg.initial_loss_scale = 1024.0; /* no overflow: the first step updates */
    cfg.eval_interval = 0;
    cfg.fp16 = fp16;
    return cfg;
}

#define VOCAB 256 /* synthetic:random's default */

typedef struct pair {
    tsr_config cfg32, cfg16;
    tsr_test_net n32, n16;
    tsr_memory_plan p32, p16;
} pair;

static void pair_make(pair *p)
{
    memset(p, 0, sizeof *p);
    p->cfg32 = small_gpt(false);
    p->cfg16 = small_gpt(true);
    CU_ASSERT_EQUAL_FATAL(tsr_test_net_build(&p->n32, &p->cfg32, VOCAB, NULL, 0), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_test_net_build(&p->n16, &p->cfg16, VOCAB, NULL, 0), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_test_net_carve(&p->n32, &p->p32), TSR_OK);
}

static void pair_free(pair *p)
{
    tsr_test_net_free(&p->n32);
    tsr_test_net_free(&p->n16);
    tsr_plan_release(&p->p32);
    tsr_plan_release(&p->p16);
}

static bool named(const tsr_net_param *p, const char *suffix)
{
    size_t n = strlen(p->name), s = strlen(suffix);
    return n >= s && strcmp(p->name + n - s, suffix) == 0;
}

/* The flag follows what each module does with the weight: the linear
 * layers' weights feed products only, and the token table (tied: also the
 * head's product weight) is looked up by tsr_embedding_forward, which
 * reads its 16-bit copy too; positions, norms and biases are read in
 * fp32. */
static void test_no_fp32_read_parameters(void)
{
    pair p;
    pair_make(&p);
    size_t count = 0;
    const tsr_net_param *table = tsr_net_params(p.n16.net, &count);
    int no_fp32 = 0, fp32 = 0;
    for (size_t i = 0; i < count; i++) {
        bool only = (table[i].flags & TSR_PARAM_NO_FP32_READ) != 0;
        bool linear = named(&table[i], "linear_qkv.weight") ||
                      named(&table[i], "linear_proj.weight") ||
                      named(&table[i], "linear_fc1.weight") ||
                      named(&table[i], "linear_fc2.weight") ||
                      named(&table[i], "word_embeddings.weight");
        CU_ASSERT_EQUAL(only, linear);
        no_fp32 += only;
        fp32 += !only;
    }
    CU_ASSERT_EQUAL(no_fp32, 9);
    CU_ASSERT_TRUE(fp32 > 8);
    const tsr_model m = tsr_net_as_model(p.n16.net);
    CU_ASSERT_TRUE(m.fp32_view);
    CU_ASSERT_FALSE(tsr_net_as_model(p.n32.net).fp32_view);
    for (size_t s = 1; s < m.span_count; s++) /* neighbours differ in a flag */
        CU_ASSERT_TRUE(m.spans[s].decay != m.spans[s - 1].decay ||
                       m.spans[s].no_fp32_read != m.spans[s - 1].no_fp32_read);
    pair_free(&p);
}

/* The view is planned as the pages of its fp32 spans, far less than the
 * fp32 buffer; the initial values land in the gradients, equal to the
 * fp32 net's parameters; the pages wholly of a weight without fp32 reads
 * fault. */
static void test_view_planned_and_initial_values_in_grads(void)
{
    pair p;
    pair_make(&p);
    memset(&p.p16, 0, sizeof p.p16);
    tsr_net_plan(p.n16.net, &p.p16);
    tsr_model m32 = tsr_net_as_model(p.n32.net);
    size_t full = m32.param_count * sizeof(float);
    size_t sparse = p.p16.sparse[TSR_MEM_PARAMS];
    CU_ASSERT_TRUE(sparse > 0 && sparse < full / 4);
    CU_ASSERT_EQUAL(p.p16.bytes[TSR_MEM_PARAMS] + full,
                    p.p32.bytes[TSR_MEM_PARAMS] + sparse);
    CU_ASSERT_EQUAL_FATAL(tsr_plan_allocate(&p.p16), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_net_carve(p.n16.net, NULL, &p.p16), TSR_OK);
    tsr_model m16 = tsr_net_as_model(p.n16.net);
    CU_ASSERT_EQUAL_FATAL(m16.param_count, m32.param_count);
    CU_ASSERT_EQUAL(memcmp(m16.grads, m32.params, full), 0);
    const tsr_net_param *fc1 =
        tsr_test_net_find(p.n16.net, "decoder.layers.0.mlp.linear_fc1.weight");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fc1);
    size_t page = tsr_sparse_page_bytes();
    const char *start = (const char *)(m16.params + fc1->offset);
    const char *inner = start + (page - (uintptr_t)start % page) + page; /* wholly its own page */
    CU_ASSERT_TRUE(read_faults(inner));
    const tsr_net_param *wte = tsr_test_net_find(p.n16.net, "embedding.word_embeddings.weight");
    CU_ASSERT_PTR_NOT_NULL_FATAL(wte);
    start = (const char *)(m16.params + wte->offset);
    CU_ASSERT_TRUE(read_faults(start + (page - (uintptr_t)start % page) + page));
    const tsr_net_param *norm = tsr_test_net_find(p.n16.net, "decoder.final_layernorm.weight");
    CU_ASSERT_PTR_NOT_NULL_FATAL(norm);
    CU_ASSERT_FALSE(read_faults((const char *)(m16.params + norm->offset)));
    pair_free(&p);
}

/* The trainer's master is the initial values; the copies are their fp16
 * roundings; refresh writes the view of the fp32-read spans with them;
 * an update moves the master and the copies, and the checkpoint image
 * is the master. */
static void test_trainer_master_copies_and_view(void)
{
    pair p;
    pair_make(&p);
    memset(&p.p16, 0, sizeof p.p16);
    tsr_net_plan(p.n16.net, &p.p16);
    tsr_model planned = tsr_net_as_model(p.n16.net);
    tsr_trainer_plan(&p.cfg16, planned.param_count, &p.p16);
    tsr_trainer_plan_precision(&p.cfg16, &planned, 1, &p.p16);
    CU_ASSERT_EQUAL_FATAL(tsr_plan_allocate(&p.p16), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_net_carve(p.n16.net, NULL, &p.p16), TSR_OK);
    tsr_dataset *ds = NULL;
    CU_ASSERT_EQUAL_FATAL(tsr_dataset_open(&p.cfg16, &ds), TSR_OK);
    tsr_trainer tr;
    CU_ASSERT_EQUAL_FATAL(tsr_trainer_init(&tr, &p.cfg16, ds, tsr_net_as_model(p.n16.net), NULL,
                                           0.0, &p.p16),
                          TSR_OK);
    tsr_model m32 = tsr_net_as_model(p.n32.net), m = tr.model;
    size_t n = m.param_count;
    CU_ASSERT_PTR_NOT_NULL_FATAL(tr.master);
    CU_ASSERT_EQUAL(memcmp(tr.master, m32.params, n * sizeof(float)), 0);
    const uint16_t *copies = tr.precision.weight_copies; /* IEEE half bits */
    CU_ASSERT_EQUAL(tr.precision.element_bytes, sizeof(uint16_t));
    size_t mismatched = 0;
    for (size_t i = 0; i < n; i++)
        mismatched += copies[i] != tsr_fp16_of_float(m32.params[i]);
    CU_ASSERT_EQUAL(mismatched, 0u);
    tsr_precision_refresh(&tr.precision);
    mismatched = 0;
    for (size_t s = 0; s < m.span_count; s++)
        for (size_t i = m.spans[s].offset; !m.spans[s].no_fp32_read &&
                                           i < m.spans[s].offset + m.spans[s].count;
             i++)
            mismatched += m.params[i] != tsr_float_of_fp16(copies[i]);
    CU_ASSERT_EQUAL(mismatched, 0u);
    /* one training iteration: the master moves, the copies follow it */
    tsr_status st = tsr_trainer_run(&tr, NULL);
    if (st != TSR_OK)
        fprintf(stderr, "%s\n", tsr_last_error());
    CU_ASSERT_EQUAL_FATAL(st, TSR_OK);
    size_t moved = 0;
    mismatched = 0;
    for (size_t i = 0; i < n; i++) {
        moved += tr.master[i] != m32.params[i];
        mismatched += copies[i] != tsr_fp16_of_float(tr.master[i]);
    }
    CU_ASSERT_TRUE(moved > n / 2);
    CU_ASSERT_EQUAL(mismatched, 0u);
    float *image = tsr_trainer_weight_image(&tr);
    CU_ASSERT_PTR_EQUAL(image, m.grads);
    tsr_trainer_master_image(&tr);
    CU_ASSERT_EQUAL(memcmp(image, tr.master, n * sizeof(float)), 0);
    tsr_trainer_release(&tr);
    tsr_dataset_close(ds);
    pair_free(&p);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_sparse_pages_counted_once),
    TSR_TEST(test_sparse_commit_keeps_contents_and_plan_leaves_it_out),
    TSR_TEST(test_sparse_uncommitted_read_faults),
    TSR_TEST(test_no_fp32_read_parameters),
    TSR_TEST(test_view_planned_and_initial_values_in_grads),
    TSR_TEST(test_trainer_master_copies_and_view),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("weights16", cases)};
    return tsr_test_main(suites, 1);
}
