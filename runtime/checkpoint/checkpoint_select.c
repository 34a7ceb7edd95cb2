/*
 * checkpoint_select.c - which elements of a tensor this rank writes or
 * reads, as HDF5 selections.
 *
 * A data-parallel share of the flat parameter buffer cuts a tensor's
 * block at arbitrary elements, so a piece is a flat range of the block in
 * row-major order. In the global dataset that is a partial row, some whole
 * rows and another partial row: the union (H5S_SELECT_OR) of at most three
 * boxes, which HDF5 traverses in row-major order, the order of the
 * contiguous memory it is paired with.
 */
#include <errno.h>

#include "checkpoint_internal.h"

int tsr_checkpoint_range_boxes(const tsr_tensor_desc *t, int64_t a, int64_t b,
                               tsr_checkpoint_box boxes[3])
{
    int64_t cc = t->col_count;
    int64_t r0 = a / cc, c0 = a % cc;             /* first element */
    int64_t r1 = (b - 1) / cc, c1 = (b - 1) % cc; /* last element */
    int n = 0;
    if (r0 == r1) {
        boxes[n++] = (tsr_checkpoint_box){r0, c0, 1, c1 - c0 + 1};
    } else {
        int64_t whole_first = c0 == 0 ? r0 : r0 + 1;
        int64_t whole_last = c1 == cc - 1 ? r1 : r1 - 1;
        if (c0 != 0)
            boxes[n++] = (tsr_checkpoint_box){r0, c0, 1, cc - c0};
        if (whole_first <= whole_last)
            boxes[n++] = (tsr_checkpoint_box){whole_first, 0, whole_last - whole_first + 1, cc};
        if (c1 != cc - 1)
            boxes[n++] = (tsr_checkpoint_box){r1, 0, 1, c1 + 1};
    }
    for (int i = 0; i < n; i++) {
        boxes[i].row += t->row_start;
        boxes[i].col += t->col_start;
    }
    return n;
}

int tsr_checkpoint_global_dims(const tsr_tensor_desc *t, hsize_t dims[3])
{
    if (t->experts > 1) {
        dims[0] = (hsize_t)t->experts;
        dims[1] = (hsize_t)(t->rows / t->experts);
        dims[2] = (hsize_t)t->cols;
        return 3;
    }
    dims[0] = (hsize_t)t->rows;
    dims[1] = (hsize_t)t->cols;
    return t->cols == 1 ? 1 : 2;
}

/* A box of global rows and columns into the selection: one hyperslab, or
 * under experts stored (experts, rows, cols) one per expert it crosses
 * (in row-major order still: expert by expert). */
static herr_t select_box(hid_t space, const tsr_tensor_desc *t, const tsr_checkpoint_box *box,
                         bool first)
{
    if (t->experts <= 1) {
        hsize_t start[2] = {(hsize_t)box->row, (hsize_t)box->col};
        hsize_t count[2] = {(hsize_t)box->rows, (hsize_t)box->cols};
        return H5Sselect_hyperslab(space, first ? H5S_SELECT_SET : H5S_SELECT_OR, start, NULL,
                                   count, NULL);
    }
    int64_t per = t->rows / t->experts;
    herr_t err = 0;
    for (int64_t r = box->row; r < box->row + box->rows && err >= 0;) {
        int64_t e = r / per, within = r % per;
        int64_t n = per - within < box->row + box->rows - r ? per - within
                                                           : box->row + box->rows - r;
        hsize_t start[3] = {(hsize_t)e, (hsize_t)within, (hsize_t)box->col};
        hsize_t count[3] = {1, (hsize_t)n, (hsize_t)box->cols};
        err = H5Sselect_hyperslab(space, first ? H5S_SELECT_SET : H5S_SELECT_OR, start, NULL,
                                  count, NULL);
        first = false;
        r += n;
    }
    return err;
}

herr_t tsr_checkpoint_select_range(hid_t space, const tsr_tensor_desc *t, int64_t a, int64_t b,
                                   hid_t *memspace)
{
    tsr_checkpoint_box boxes[3];
    int n = tsr_checkpoint_range_boxes(t, a, b, boxes);
    herr_t err = 0;
    for (int i = 0; i < n && err >= 0; i++)
        err = select_box(space, t, &boxes[i], i == 0);
    hsize_t elements = (hsize_t)(b - a);
    *memspace = H5Screate_simple(1, &elements, NULL);
    return err < 0 || *memspace < 0 ? -1 : 0;
}

herr_t tsr_checkpoint_transfer_piece(void *ctx, const tsr_tensor_desc *t, int64_t a, int64_t b,
                                     size_t offset_in_array)
{
    tsr_checkpoint_transfer *x = ctx;
    hid_t memspace = -1;
    herr_t err = tsr_checkpoint_select_range(x->space, t, a, b, &memspace);
    errno = 0;
    if (err >= 0)
        err = x->from != NULL
                  ? H5Dwrite(x->set, H5T_NATIVE_FLOAT, memspace, x->space, H5P_DEFAULT,
                             x->from + offset_in_array)
                  : H5Dread(x->set, H5T_NATIVE_FLOAT, memspace, x->space, H5P_DEFAULT,
                            x->into + offset_in_array);
    if (err < 0)
        x->error_number = errno;
    if (memspace >= 0)
        H5Sclose(memspace);
    return err;
}

herr_t tsr_checkpoint_for_pieces(const tsr_tensor_desc *t, const tsr_param_shard *shard,
                                 bool packed, tsr_checkpoint_piece_fn fn, void *ctx)
{
    int64_t size = t->row_count * t->col_count;
    if (size <= 0)
        return 0;
    if (shard == NULL || shard->ranges == NULL)
        return fn(ctx, t, 0, size, t->offset);
    size_t begin = t->offset, end = t->offset + (size_t)size;
    for (size_t i = 0; i < shard->range_count; i++) {
        const tsr_shard_range *r = &shard->ranges[i];
        size_t lo = begin > r->offset ? begin : r->offset;
        size_t hi = end < r->offset + r->count ? end : r->offset + r->count;
        if (lo >= hi)
            continue;
        size_t at = packed ? r->state_offset + (lo - r->offset) : lo;
        herr_t err = fn(ctx, t, (int64_t)(lo - begin), (int64_t)(hi - begin), at);
        if (err < 0)
            return err;
    }
    return 0;
}
