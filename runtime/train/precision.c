/*
 * precision.c - the bf16 state of a training run (see precision.h).
 */
#include "precision.h"

#include <string.h>

#include "tessera/log.h"

#define MIN_OPERAND_FLOATS ((size_t)1 << 16)

static size_t operand_floats(const tsr_config *cfg, const tsr_model *model)
{
    size_t floats = model->largest_operand;
    if (floats == 0)
        floats = (size_t)cfg->micro_batch_size * (size_t)cfg->seq_length *
                 (size_t)cfg->hidden_size * 4;
    return floats > MIN_OPERAND_FLOATS ? floats : MIN_OPERAND_FLOATS;
}

static size_t weight_count(const tsr_model *model)
{
    return model->param_count + model->frozen_count;
}

void tsr_precision_plan(const tsr_config *cfg, const tsr_model *model, tsr_memory_plan *plan)
{
    if (!cfg->bf16)
        return;
    tsr_plan_add_bytes(plan, TSR_MEM_PARAMS, weight_count(model) * sizeof(uint16_t));
    tsr_plan_add_bytes(plan, TSR_MEM_SCRATCH,
                       tsr_matmul_bf16_workspace_bytes(operand_floats(cfg, model)));
}

tsr_status tsr_precision_init(tsr_precision *p, const tsr_config *cfg, const tsr_model *model,
                              tsr_memory_plan *plan)
{
    memset(p, 0, sizeof *p);
    if (!cfg->bf16)
        return TSR_OK;
    size_t operands = operand_floats(cfg, model);
    void *workspace = NULL;
    tsr_status st = tsr_plan_take_bytes(plan, TSR_MEM_PARAMS,
                                        weight_count(model) * sizeof(uint16_t),
                                        (void **)&p->weights_bf16);
    if (st == TSR_OK)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH,
                                 tsr_matmul_bf16_workspace_bytes(operands), &workspace);
    if (st == TSR_OK)
        st = tsr_matmul_bf16_create(workspace, operands, &p->matmul);
    if (st == TSR_OK)
        st = tsr_matmul_bf16_map(p->matmul, model->params, p->weights_bf16, model->param_count);
    if (st == TSR_OK && model->frozen_count > 0)
        st = tsr_matmul_bf16_map(p->matmul, model->frozen, p->weights_bf16 + model->param_count,
                                 model->frozen_count);
    if (st != TSR_OK) {
        tsr_precision_release(p);
        return st;
    }
    tsr_log_once(TSR_LOG_INFO,
                 "bf16: linear products through oneDNN (%s), fp32 accumulation; bf16 weight "
                 "copies %.1f MiB beside the fp32 master; operand workspace %.1f MiB",
                 tsr_matmul_bf16_impl(p->matmul),
                 (double)(weight_count(model) * sizeof(uint16_t)) / 1048576.0,
                 (double)tsr_matmul_bf16_workspace_bytes(operands) / 1048576.0);
    return TSR_OK;
}

void tsr_precision_refresh(tsr_precision *p)
{
    if (p->matmul == NULL)
        return;
    tsr_matmul_bf16_refresh(p->matmul);
    tsr_matmul_bf16_activate(p->matmul);
}

tsr_status tsr_precision_take_status(tsr_precision *p)
{
    return p->matmul != NULL ? tsr_matmul_bf16_take_status(p->matmul) : TSR_OK;
}

void tsr_precision_release(tsr_precision *p)
{
    tsr_matmul_bf16_destroy(p->matmul);
    p->matmul = NULL;
    p->weights_bf16 = NULL;
}
