/*
 * metrics.c - formatting of the training and evaluation reports.
 *
 * JSON numbers use %.9g (floats) so that a curve read back from the file
 * has the precision of the run; non-finite values are written as null
 * (JSON has no NaN).
 */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <string.h>

tsr_status tsr_metrics_open(const char *path, bool append, FILE **out)
{
    *out = NULL;
    if (path == NULL)
        return TSR_OK;
    FILE *f = fopen(path, append ? "a" : "w");
    if (f == NULL)
        return tsr_error_set(TSR_ERR_IO, "cannot open --metrics-file %s for writing: %s", path,
                             strerror(errno));
    *out = f;
    return TSR_OK;
}

void tsr_metrics_format_line(const tsr_train_metrics *m, char *buf, size_t len)
{
    snprintf(buf, len,
             " iteration %8lld/%8lld | consumed samples: %12lld | elapsed time per iteration "
             "(ms): %.1f | learning rate: %.6E | global batch size: %5d | lm loss: %.6E | "
             "loss scale: %.1f | grad norm: %.3f | number of skipped iterations: %3lld | "
             "number of nan iterations: %3lld | tokens per second: %.1f | TFLOP/s: %.3f |",
             (long long)m->iteration, (long long)m->train_iters, (long long)m->consumed_samples,
             m->ms_per_iteration, m->learning_rate, m->global_batch_size, m->lm_loss,
             m->loss_scale, m->grad_norm, (long long)m->skipped_iterations,
             (long long)m->nan_iterations, m->tokens_per_second, m->tflops_per_second);
    size_t used = strlen(buf);
    if (m->moe_aux_loss >= 0.0 && used < len)
        snprintf(buf + used, len - used, " load balancing loss: %.6E |", m->moe_aux_loss);
}

static void json_number(FILE *f, const char *key, double v, int last)
{
    if (isfinite(v))
        fprintf(f, "\"%s\": %.9g%s", key, v, last ? "" : ", ");
    else
        fprintf(f, "\"%s\": null%s", key, last ? "" : ", ");
}

void tsr_metrics_write_json(FILE *f, const tsr_train_metrics *m)
{
    if (f == NULL)
        return;
    fprintf(f, "{\"type\": \"train\", \"iteration\": %lld, \"train_iters\": %lld, "
               "\"consumed_samples\": %lld, ",
            (long long)m->iteration, (long long)m->train_iters, (long long)m->consumed_samples);
    json_number(f, "elapsed_ms_per_iteration", m->ms_per_iteration, 0);
    json_number(f, "learning_rate", m->learning_rate, 0);
    fprintf(f, "\"global_batch_size\": %d, ", m->global_batch_size);
    json_number(f, "lm_loss", m->lm_loss, 0);
    json_number(f, "loss_scale", m->loss_scale, 0);
    json_number(f, "grad_norm", m->grad_norm, 0);
    fprintf(f, "\"skipped_iterations\": %lld, \"nan_iterations\": %lld, ",
            (long long)m->skipped_iterations, (long long)m->nan_iterations);
    if (m->moe_aux_loss >= 0.0)
        json_number(f, "moe_aux_loss", m->moe_aux_loss, 0);
    json_number(f, "tokens_per_second", m->tokens_per_second, 0);
    json_number(f, "tflops_per_second", m->tflops_per_second, 1);
    fputs("}\n", f);
    fflush(f);
}

void tsr_metrics_format_eval(const tsr_eval_metrics *m, char *buf, size_t len)
{
    int n = snprintf(buf, len,
                     " validation loss at iteration %lld | lm loss value: %.6E | lm loss PPL: "
                     "%.6E |",
                     (long long)m->iteration, m->loss, m->perplexity);
    if (m->answer_accuracy >= 0.0 && n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, " answer accuracy: %.4f |", m->answer_accuracy);
}

void tsr_metrics_write_eval_json(FILE *f, const tsr_eval_metrics *m)
{
    if (f == NULL)
        return;
    fprintf(f, "{\"type\": \"valid\", \"iteration\": %lld, ", (long long)m->iteration);
    json_number(f, "lm_loss", m->loss, 0);
    json_number(f, "perplexity", m->perplexity, 0);
    json_number(f, "tokens", m->tokens, m->answer_accuracy < 0.0);
    if (m->answer_accuracy >= 0.0)
        json_number(f, "answer_accuracy", m->answer_accuracy, 1);
    fputs("}\n", f);
    fflush(f);
}
