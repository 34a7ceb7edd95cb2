/*
 * test_packed_documents.c - documents packed into one sample under
 * --reset-attention-mask --reset-position-ids compute what each computes
 * alone.
 *
 * A sample holds document A (11 tokens, the last the end-of-document
 * token) then document B (21 tokens). With both flags, no token of B sees
 * A and B's positions restart at 0, so B's logits must equal those of B
 * alone at the start of a sample (followed by padding that causal
 * attention hides), and A's those of A alone; and the gradient of a loss
 * on B's targets only must equal, for every parameter, that of the same
 * loss on B alone. This is the block-diagonal mask with restarted
 * positions the reference would build, checked against the model that
 * tests/reference proves equal to PyTorch on single documents. Run for
 * learned positions (GPT-2 style: the position table's rows and their
 * gradient) and rotary ones (LLaMA style). Controls: without
 * --reset-position-ids B's logits differ, as they do with neither flag.
 * Tolerance: 2e-5 relative L2 (the same sums, in other tile orders).
 */
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "harness.h"
#include "reference_configs.h"
#include "tessera/kernels.h"
#include "tessera/log.h"
#include "test_net.h"

#define T 32
#define LEN_A 11
#define LEN_B (T - LEN_A)
#define VOCAB 40
#define EOD 39
#define TOLERANCE 2e-5

typedef struct model {
    tsr_config cfg;
    tsr_test_net t;
    tsr_memory_plan plan;
    tsr_model m;
} model;

static void build(model *x, bool rope, bool reset_mask, bool reset_positions)
{
    memset(x, 0, sizeof *x);
    tsr_config_defaults(&x->cfg);
    x->cfg.num_layers = 2;
    x->cfg.hidden_size = 64;
    x->cfg.num_attention_heads = 4;
    x->cfg.seq_length = T;
    x->cfg.micro_batch_size = 1;
    x->cfg.vocab_size = VOCAB;
    x->cfg.init_method_std = 0.2; /* attention far from uniform, positions that matter */
    if (rope)
        tsr_reference_llama_style(&x->cfg, 2);
    x->cfg.reset_attention_mask = reset_mask;
    x->cfg.reset_position_ids = reset_positions;
    x->cfg.eod_token = reset_mask ? EOD : -1;
    CU_ASSERT_EQUAL_FATAL(tsr_test_net_build(&x->t, &x->cfg, VOCAB, NULL, 0), TSR_OK);
    tsr_net_plan(x->t.net, &x->plan);
    CU_ASSERT_EQUAL_FATAL(tsr_plan_allocate(&x->plan), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_net_carve(x->t.net, NULL, &x->plan), TSR_OK);
    x->m = tsr_net_as_model(x->t.net);
}

static void release(model *x)
{
    tsr_plan_release(&x->plan);
    tsr_test_net_free(&x->t);
}

/* tokens: A = 11 tokens ending with EOD, B = 21 tokens without one */
static void samples(int32_t packed[T + 1], int32_t alone_a[T + 1], int32_t alone_b[T + 1])
{
    for (int i = 0; i <= T; i++) {
        int32_t v = (int32_t)((i * 7 + 3) % (VOCAB - 1));
        packed[i] = v;
        alone_a[i] = i < LEN_A ? v : (int32_t)((i * 5) % (VOCAB - 1));
        alone_b[i] = i + LEN_A <= T ? (int32_t)(((i + LEN_A) * 7 + 3) % (VOCAB - 1)) : 1;
    }
    packed[LEN_A - 1] = alone_a[LEN_A - 1] = EOD;
    for (int i = 0; i <= T; i++)
        if (i + LEN_A <= T)
            alone_b[i] = packed[i + LEN_A];
}

static void doc_starts(const int32_t *tokens, int32_t *doc_start)
{
    int32_t start = 0;
    for (int i = 0; i < T; i++) {
        doc_start[i] = start;
        if (tokens[i] == EOD)
            start = i + 1;
    }
}

static void logits_of(model *x, const int32_t *tokens, float *out)
{
    int32_t doc[T];
    doc_starts(tokens, doc);
    tsr_microbatch mb = {.tokens = tokens};
    if (x->cfg.reset_attention_mask)
        mb.doc_start = doc;
    int64_t width = 0;
    CU_ASSERT_EQUAL_FATAL(tsr_net_logits_of(x->t.net, &mb, out, &width), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(width, VOCAB);
}

/* Gradient of the mean loss over targets [first, first + n) of tokens. */
static void grads_of(model *x, const int32_t *tokens, int first, int n, float *grads)
{
    int32_t doc[T];
    float mask[T] = {0};
    doc_starts(tokens, doc);
    for (int i = first; i < first + n; i++)
        mask[i] = 1.0f;
    tsr_microbatch mb = {.tokens = tokens, .targets = tokens + 1, .mask = mask};
    if (x->cfg.reset_attention_mask)
        mb.doc_start = doc;
    memset(x->m.grads, 0, x->m.param_count * sizeof(float));
    double loss = 0.0;
    CU_ASSERT_EQUAL_FATAL(x->m.train_microbatch(x->m.self, &mb, 1.0f, &loss), TSR_OK);
    memcpy(grads, x->m.grads, x->m.param_count * sizeof(float));
}

static void check(bool rope)
{
    model x;
    build(&x, rope, true, true);
    int32_t packed[T + 1], a[T + 1], b[T + 1];
    samples(packed, a, b);
    float *lp = malloc(T * VOCAB * sizeof(float)), *la = malloc(T * VOCAB * sizeof(float));
    float *lb = malloc(T * VOCAB * sizeof(float));
    logits_of(&x, packed, lp);
    logits_of(&x, a, la);
    logits_of(&x, b, lb);
    double err_a = tsr_test_rel_l2(lp, la, LEN_A * VOCAB);
    double err_b = tsr_test_rel_l2(lp + LEN_A * VOCAB, lb, LEN_B * VOCAB);
    printf("\n  %s: packed vs alone, logits of A %.2e, of B %.2e", rope ? "rope" : "learned",
           err_a, err_b);
    CU_ASSERT(err_a <= TOLERANCE);
    CU_ASSERT(err_b <= TOLERANCE);

    /* the loss on B's targets (the last one of the sample has no next token) */
    size_t n = x.m.param_count;
    float *gp = malloc(n * sizeof(float)), *gb = malloc(n * sizeof(float));
    grads_of(&x, packed, LEN_A, LEN_B, gp);
    grads_of(&x, b, 0, LEN_B, gb);
    double err_g = tsr_test_rel_l2(gp, gb, n);
    printf("; gradients of B's loss %.2e", err_g);
    CU_ASSERT(err_g <= TOLERANCE);

    /* controls: B's positions not restarted, and no document boundary.
     * Rotary scores depend on position differences only, so within a
     * document a shift of every position changes nothing: with the mask
     * alone B's logits are already B's (and the kernel check below shows
     * the positions do restart) */
    for (int variant = 0; variant < 2; variant++) {
        model y;
        build(&y, rope, variant == 0, false);
        float *ly = malloc(T * VOCAB * sizeof(float));
        logits_of(&y, packed, ly);
        double diff = tsr_test_rel_l2(ly + LEN_A * VOCAB, lb, LEN_B * VOCAB);
        printf("; %s: B differs by %.2e", variant == 0 ? "mask only" : "neither", diff);
        bool relative = rope && variant == 0;
        CU_ASSERT(relative ? diff <= TOLERANCE : diff > 1e-2);
        free(ly);
        release(&y);
    }
    printf("\n");
    free(gp);
    free(gb);
    free(lp);
    free(la);
    free(lb);
    release(&x);
}

static void test_learned_positions_restart_per_document(void)
{
    check(false);
}

/* The rotary kernel with documents rotates B's rows as B alone at 0. */
static void check_rope_kernel(void)
{
    enum { H = 2, D = 8 };
    int32_t packed[T + 1], a[T + 1], b[T + 1], doc[T];
    samples(packed, a, b);
    doc_starts(packed, doc);
    float x[T * H * D], y[T * H * D], alone[T * H * D];
    for (int i = 0; i < T * H * D; i++)
        x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    tsr_rope_forward_docs(y, x, doc, 1, T, H, D, 0, 100.0f);
    tsr_rope_forward(alone, x + LEN_A * H * D, 1, LEN_B, H, D, 0, 100.0f);
    CU_ASSERT(memcmp(y + LEN_A * H * D, alone, LEN_B * H * D * sizeof(float)) == 0);
    tsr_rope_forward(alone, x, 1, T, H, D, 0, 100.0f);
    CU_ASSERT(memcmp(y, alone, LEN_A * H * D * sizeof(float)) == 0);
    CU_ASSERT(memcmp(y + LEN_A * H * D, alone + LEN_A * H * D, LEN_B * H * D * sizeof(float)) !=
              0);
    /* backward: the inverse rotation, accumulated */
    float dx[T * H * D] = {0}, dalone[T * H * D] = {0};
    tsr_rope_backward_docs(dx, x, doc, 1, T, H, D, 0, 100.0f);
    tsr_rope_backward(dalone, x + LEN_A * H * D, 1, LEN_B, H, D, 0, 100.0f);
    CU_ASSERT(memcmp(dx + LEN_A * H * D, dalone, LEN_B * H * D * sizeof(float)) == 0);
}

static void test_rotary_positions_restart_per_document(void)
{
    check_rope_kernel();
    check(true);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_learned_positions_restart_per_document),
    TSR_TEST(test_rotary_positions_restart_per_document),
};

int main(void)
{
    tsr_log_configure(0, 1, TSR_LOG_WARN);
    const tsr_test_suite suites[] = {TSR_SUITE("packed_documents", cases)};
    return tsr_test_main(suites, 1);
}
