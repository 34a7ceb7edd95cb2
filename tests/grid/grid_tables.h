/*
 * grid_tables.h - expected group memberships of four 8-rank layouts,
 * written out by hand from Megatron's rank order (tp fastest, then cp, ep,
 * dp, pp). Each row lists every group of a kind, one after the other,
 * members in group-rank order. Shared by the unit test (pure layout) and the
 * mpirun test (real communicators).
 */
#ifndef TSR_TEST_GRID_TABLES_H
#define TSR_TEST_GRID_TABLES_H

#include "sharding/grid.h"

typedef struct grid_case {
    const char *name;
    int tp, cp, ep, pp;
    const char *order;
    int group_size[TSR_GROUP_COUNT];
    int members[TSR_GROUP_COUNT][8];
} grid_case;

/* kinds: tp, cp, ep, dp, dp_cp, expert_dp, pp, mp, embedding */
static const grid_case grid_cases[] = {
    {"TP2xPP2xDP2", 2, 1, 1, 2, "tp-cp-ep-dp-pp",
     {2, 1, 1, 2, 2, 2, 2, 4, 2},
     {{0, 1, 2, 3, 4, 5, 6, 7},
      {0, 1, 2, 3, 4, 5, 6, 7},
      {0, 1, 2, 3, 4, 5, 6, 7},
      {0, 2, 1, 3, 4, 6, 5, 7},
      {0, 2, 1, 3, 4, 6, 5, 7},
      {0, 2, 1, 3, 4, 6, 5, 7},
      {0, 4, 1, 5, 2, 6, 3, 7},
      {0, 1, 4, 5, 2, 3, 6, 7},
      {0, 4, 1, 5, 2, 6, 3, 7}}},
    {"TP2xEP2xDP2", 2, 1, 2, 1, "tp-cp-ep-dp-pp",
     {2, 1, 2, 4, 4, 2, 1, 2, 1},
     {{0, 1, 2, 3, 4, 5, 6, 7},
      {0, 1, 2, 3, 4, 5, 6, 7},
      {0, 2, 1, 3, 4, 6, 5, 7},
      {0, 2, 4, 6, 1, 3, 5, 7},
      {0, 2, 4, 6, 1, 3, 5, 7},
      {0, 4, 1, 5, 2, 6, 3, 7},
      {0, 1, 2, 3, 4, 5, 6, 7},
      {0, 1, 2, 3, 4, 5, 6, 7},
      {0, 1, 2, 3, 4, 5, 6, 7}}},
    {"TP4xPP2", 4, 1, 1, 2, "tp-cp-ep-dp-pp",
     {4, 1, 1, 1, 1, 1, 2, 8, 2},
     {{0, 1, 2, 3, 4, 5, 6, 7},
      {0, 1, 2, 3, 4, 5, 6, 7},
      {0, 1, 2, 3, 4, 5, 6, 7},
      {0, 1, 2, 3, 4, 5, 6, 7},
      {0, 1, 2, 3, 4, 5, 6, 7},
      {0, 1, 2, 3, 4, 5, 6, 7},
      {0, 4, 1, 5, 2, 6, 3, 7},
      {0, 1, 2, 3, 4, 5, 6, 7},
      {0, 4, 1, 5, 2, 6, 3, 7}}},
    {"CP2xTP2xDP2", 2, 2, 1, 1, "tp-cp-ep-dp-pp",
     {2, 2, 1, 2, 4, 4, 1, 2, 1},
     {{0, 1, 2, 3, 4, 5, 6, 7},
      {0, 2, 1, 3, 4, 6, 5, 7},
      {0, 1, 2, 3, 4, 5, 6, 7},
      {0, 4, 1, 5, 2, 6, 3, 7},
      {0, 2, 4, 6, 1, 3, 5, 7},
      {0, 2, 4, 6, 1, 3, 5, 7},
      {0, 1, 2, 3, 4, 5, 6, 7},
      {0, 1, 2, 3, 4, 5, 6, 7},
      {0, 1, 2, 3, 4, 5, 6, 7}}},
    /* a non-default order: pipeline before data parallel */
    {"TP2xPP2xDP2 tp-pp-cp-ep-dp", 2, 1, 1, 2, "tp-pp-cp-ep-dp",
     {2, 1, 1, 2, 2, 2, 2, 4, 2},
     {{0, 1, 2, 3, 4, 5, 6, 7},
      {0, 1, 2, 3, 4, 5, 6, 7},
      {0, 1, 2, 3, 4, 5, 6, 7},
      {0, 4, 1, 5, 2, 6, 3, 7},
      {0, 4, 1, 5, 2, 6, 3, 7},
      {0, 4, 1, 5, 2, 6, 3, 7},
      {0, 2, 1, 3, 4, 6, 5, 7},
      {0, 1, 2, 3, 4, 5, 6, 7},
      {0, 2, 1, 3, 4, 6, 5, 7}}},
};

#define GRID_CASE_COUNT (sizeof grid_cases / sizeof grid_cases[0])

#endif /* TSR_TEST_GRID_TABLES_H */
