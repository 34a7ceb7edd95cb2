/*
 * train_prediction.c - see train_prediction.h.
 */
#include "train_prediction.h"

#include <omp.h>
#include <string.h>

#include "collectives/comm.h"
#include "rank_env.h"
#include "tessera/log.h"
#include "time_inputs.h"

tsr_status tsr_train_prediction_check(const tsr_config *cfg)
{
    tsr_machine m;
    return cfg->cluster != NULL ? tsr_machine_load(cfg->cluster, &m) : TSR_OK;
}

/* The prediction of the slowest stage: each term its largest over the
 * world's ranks (a collective). */
static tsr_status predict_slowest(const tsr_machine *m, const tsr_time_inputs *in,
                                  tsr_comm *world, tsr_time_prediction *out)
{
    tsr_time_predict(m, in, out);
    return tsr_comm_allreduce(out, out, sizeof *out / sizeof(double), TSR_COMM_FP64, TSR_COMM_MAX,
                              world, NULL);
}

tsr_status tsr_train_prediction_make(const tsr_config *cfg, const tsr_net *net, tsr_grid *grid,
                                     tsr_train_prediction *out)
{
    memset(out, 0, sizeof *out);
    if (cfg->cluster == NULL)
        return TSR_OK;
    tsr_status st = tsr_machine_load(cfg->cluster, &out->machine);
    if (st != TSR_OK)
        return st;
    tsr_comm *world = tsr_grid_world(grid);
    tsr_rank_info info = tsr_rank_info_from_env();
    tsr_time_inputs_of(cfg, net, tsr_comm_size(world), info.local_size, omp_get_max_threads(),
                       tsr_time_pipeline_bubble(tsr_net_get_dims(net)), &out->inputs);
    st = predict_slowest(&out->machine, &out->inputs, world, &out->time);
    if (st != TSR_OK)
        return st;
    out->on = true;
    out->baseline_rss = (double)tsr_peak_rss_bytes();
    const tsr_time_prediction *t = &out->time;
    tsr_log_once(TSR_LOG_INFO,
                 "predicted iteration %.2f ms on %s: compute %.2f, elementwise %.2f, tp %.2f, "
                 "pp %.2f, ep %.2f, dp %.2f, pipeline bubble %.2f ms",
                 t->total * 1e3, out->machine.name, t->compute * 1e3, t->elementwise * 1e3,
                 t->tp * 1e3, t->pp * 1e3, t->ep * 1e3, t->dp * 1e3, t->bubble * 1e3);
    return TSR_OK;
}

tsr_status tsr_train_expert_load_report(const tsr_net *net, tsr_grid *grid, FILE *metrics,
                                        double *busiest)
{
    *busiest = 1.0;
    tsr_expert_load_stats load;
    tsr_status st = tsr_net_expert_load_measure(net, grid, &load);
    if (st != TSR_OK || !load.measured)
        return st;
    *busiest = load.exchange;
    tsr_log_once(TSR_LOG_INFO,
                 "expert load: the busiest rank of each exchange computed %.3fx the rows an "
                 "even routing gives (the last %lld MoE layer forwards); over the run the "
                 "busiest rank %.3fx, the least busy %.3fx",
                 load.exchange, (long long)load.exchanges, load.busiest, load.least);
    if (metrics != NULL)
        fprintf(metrics,
                "{\"type\": \"expert_load\", \"exchange\": %.6g, \"exchanges\": %lld, "
                "\"busiest\": %.6g, \"least_busy\": %.6g}\n",
                load.exchange, (long long)load.exchanges, load.busiest, load.least);
    return TSR_OK;
}

tsr_status tsr_train_prediction_report(const tsr_train_prediction *p, const tsr_trainer *tr,
                                       tsr_grid *grid, size_t plan_bytes, double expert_load,
                                       FILE *metrics)
{
    if (!p->on || tr->timed_iterations <= 0)
        return TSR_OK;
    double measured = tr->timed_seconds / (double)tr->timed_iterations;
    double rss = (double)tsr_peak_rss_bytes(), planned = (double)plan_bytes + p->baseline_rss;
    tsr_log_once(TSR_LOG_INFO,
                 "iteration time: measured %.2f ms (mean of %lld iterations after the first), "
                 "predicted %.2f ms on %s: measured / predicted %.3f; memory: peak RSS %.1f MiB, "
                 "predicted %.1f MiB (plan + %.1f MiB of process before it): %.3f",
                 measured * 1e3, (long long)tr->timed_iterations, p->time.total * 1e3,
                 p->machine.name, measured / p->time.total, rss / 1048576.0, planned / 1048576.0,
                 p->baseline_rss / 1048576.0, rss / planned);
    /* the prediction takes the routing as even; the run tells how it was */
    tsr_time_prediction at_load = p->time;
    if (expert_load != 1.0) {
        tsr_time_inputs in = p->inputs;
        in.expert_load = expert_load;
        tsr_status st = predict_slowest(&p->machine, &in, tsr_grid_world(grid), &at_load);
        if (st != TSR_OK)
            return st;
        tsr_log_once(TSR_LOG_INFO,
                     "iteration time at the measured expert load %.3f: predicted %.2f ms "
                     "(compute %.2f, ep %.2f): measured / predicted %.3f",
                     expert_load, at_load.total * 1e3, at_load.compute * 1e3, at_load.ep * 1e3,
                     measured / at_load.total);
    }
    if (metrics != NULL)
        fprintf(metrics,
                "{\"type\": \"prediction\", \"machine\": \"%s\", \"measured_ms\": %.6g, "
                "\"predicted_ms\": %.6g, \"ratio\": %.6g, \"compute_ms\": %.6g, "
                "\"elementwise_ms\": %.6g, \"tp_ms\": %.6g, \"pp_ms\": %.6g, \"ep_ms\": %.6g, "
                "\"dp_ms\": %.6g, \"bubble_ms\": %.6g, \"expert_load\": %.6g, "
                "\"predicted_at_load_ms\": %.6g, \"predicted_memory_bytes\": %.0f, "
                "\"peak_rss_bytes\": %.0f}\n",
                p->machine.name, measured * 1e3, p->time.total * 1e3, measured / p->time.total,
                p->time.compute * 1e3, p->time.elementwise * 1e3, p->time.tp * 1e3,
                p->time.pp * 1e3, p->time.ep * 1e3, p->time.dp * 1e3, p->time.bubble * 1e3,
                expert_load, at_load.total * 1e3, planned, rss);
    return TSR_OK;
}
