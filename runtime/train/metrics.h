/*
 * metrics.h - the per-interval training log line (Megatron's layout) and
 * the same numbers as one JSON object per line in --metrics-file.
 */
#ifndef TSR_RUNTIME_METRICS_H
#define TSR_RUNTIME_METRICS_H

#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>

#include "tessera/status.h"

typedef struct tsr_train_metrics {
    int64_t iteration, train_iters, consumed_samples;
    double ms_per_iteration, learning_rate;
    int global_batch_size;
    double lm_loss, loss_scale, grad_norm;
    int64_t skipped_iterations, nan_iterations;
    double tokens_per_second, tflops_per_second;
    double moe_aux_loss; /* MoE layers' own loss terms per micro batch; < 0: none */
} tsr_train_metrics;

typedef struct tsr_eval_metrics {
    int64_t iteration;
    double loss, perplexity, answer_accuracy; /* accuracy < 0: not reported */
    double tokens;
} tsr_eval_metrics;

/* Opens the metrics file, truncated, or appended to by a run that resumes
 * (so that a job stopped and requeued keeps one file of the whole run);
 * NULL path: no file. */
tsr_status tsr_metrics_open(const char *path, bool append, FILE **out);

void tsr_metrics_format_line(const tsr_train_metrics *m, char *buf, size_t len);
void tsr_metrics_write_json(FILE *file, const tsr_train_metrics *m);
void tsr_metrics_format_eval(const tsr_eval_metrics *m, char *buf, size_t len);
void tsr_metrics_write_eval_json(FILE *file, const tsr_eval_metrics *m);

#endif /* TSR_RUNTIME_METRICS_H */
