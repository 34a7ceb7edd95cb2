/*
 * test_bind_plan.c - the rank -> cores / NUMA node / GPU mapping on
 * synthetic topologies and on the hand-written XML topologies in
 * topologies/ (their header comments state the expected maps, derived by
 * hand from the rules in launcher/bind_plan.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind_plan.h"
#include "harness.h"
#include "topo_devices.h"
#include "topo_load.h"

#define XML(name) TSR_TEST_TOPOLOGY_DIR "/" name

static hwloc_topology_t load(const char *xml, const char *synthetic)
{
    hwloc_topology_t topo = NULL;
    tsr_status st = tsr_topo_load(xml, synthetic, &topo);
    CU_ASSERT_EQUAL_FATAL(st, TSR_OK);
    return topo;
}

/* True if the bitmap equals the list, e.g. "4-5,12-13". */
static int set_is(hwloc_const_bitmap_t set, const char *list)
{
    hwloc_bitmap_t want = hwloc_bitmap_alloc();
    hwloc_bitmap_list_sscanf(want, list);
    int same = hwloc_bitmap_isequal(set, want);
    if (!same) {
        char got[256];
        hwloc_bitmap_list_snprintf(got, sizeof got, set);
        fprintf(stderr, "  expected {%s}, got {%s}\n", list, got);
    }
    hwloc_bitmap_free(want);
    return same;
}

static tsr_bind_plan plan_of(hwloc_topology_t topo, int rank, int ranks, tsr_bind_policy policy)
{
    tsr_bind_request req = {rank, ranks, policy, NULL, 0};
    tsr_bind_plan plan;
    CU_ASSERT_EQUAL_FATAL(tsr_bind_plan_compute(topo, &req, &plan), TSR_OK);
    return plan;
}

static void test_cpu_one_rank_per_numa_node(void)
{
    /* PUs are numbered 2 per core, cores 4 per NUMA node: rank i owns
     * cores 4i..4i+3 = PUs 8i..8i+7 on NUMA node i */
    hwloc_topology_t topo = load(NULL, "pack:2 numa:2 core:4 pu:2");
    for (int r = 0; r < 4; r++) {
        tsr_bind_plan p = plan_of(topo, r, 4, TSR_BIND_CORE);
        char cpus[32], numa[8];
        snprintf(cpus, sizeof cpus, "%d-%d", 8 * r, 8 * r + 7);
        snprintf(numa, sizeof numa, "%d", r);
        CU_ASSERT_TRUE(set_is(p.cpuset, cpus));
        CU_ASSERT_TRUE(set_is(p.nodeset, numa));
        CU_ASSERT_EQUAL(p.first_core, 4 * r);
        CU_ASSERT_EQUAL(p.core_count, 4);
        CU_ASSERT_EQUAL(p.threads, 4);
        CU_ASSERT_EQUAL(p.shared, 0);
        CU_ASSERT_EQUAL(p.gpu, -1);
        tsr_bind_plan_release(&p);
    }
    hwloc_topology_destroy(topo);
}

static void test_cpu_uneven_split(void)
{
    /* 16 cores, 3 ranks: floor(i*16/3) -> blocks [0,5) [5,10) [10,16) */
    hwloc_topology_t topo = load(NULL, "pack:2 numa:2 core:4 pu:1");
    const int first[] = {0, 5, 10}, count[] = {5, 5, 6};
    const char *cpus[] = {"0-4", "5-9", "10-15"}, *numa[] = {"0-1", "1-2", "2-3"};
    for (int r = 0; r < 3; r++) {
        tsr_bind_plan p = plan_of(topo, r, 3, TSR_BIND_CORE);
        CU_ASSERT_EQUAL(p.first_core, first[r]);
        CU_ASSERT_EQUAL(p.core_count, count[r]);
        CU_ASSERT_EQUAL(p.threads, count[r]);
        CU_ASSERT_TRUE(set_is(p.cpuset, cpus[r]));
        CU_ASSERT_TRUE(set_is(p.nodeset, numa[r]));
        tsr_bind_plan_release(&p);
    }
    hwloc_topology_destroy(topo);
}

static void test_cpu_blocks_are_disjoint_and_cover(void)
{
    hwloc_topology_t topo = load(NULL, "pack:2 numa:2 core:4 pu:2");
    for (int ranks = 1; ranks <= 16; ranks++) {
        hwloc_bitmap_t seen = hwloc_bitmap_alloc();
        int min = 1 << 30, max = 0;
        for (int r = 0; r < ranks; r++) {
            tsr_bind_plan p = plan_of(topo, r, ranks, TSR_BIND_CORE);
            CU_ASSERT_FALSE(hwloc_bitmap_intersects(seen, p.cpuset));
            hwloc_bitmap_or(seen, seen, p.cpuset);
            min = p.core_count < min ? p.core_count : min;
            max = p.core_count > max ? p.core_count : max;
            tsr_bind_plan_release(&p);
        }
        CU_ASSERT_TRUE(set_is(seen, "0-31"));
        CU_ASSERT_TRUE(max - min <= 1);
        hwloc_bitmap_free(seen);
    }
    hwloc_topology_destroy(topo);
}

static void test_cpu_more_ranks_than_cores_share(void)
{
    /* 2 cores, 4 ranks: rank i takes core floor(i*2/4) = 0,0,1,1 */
    hwloc_topology_t topo = load(NULL, "pack:1 core:2 pu:1");
    const char *cpus[] = {"0", "0", "1", "1"};
    for (int r = 0; r < 4; r++) {
        tsr_bind_plan p = plan_of(topo, r, 4, TSR_BIND_CORE);
        CU_ASSERT_TRUE(set_is(p.cpuset, cpus[r]));
        CU_ASSERT_EQUAL(p.core_count, 1);
        CU_ASSERT_EQUAL(p.threads, 1);
        CU_ASSERT_EQUAL(p.shared, 1);
        tsr_bind_plan_release(&p);
    }
    hwloc_topology_destroy(topo);
}

static void test_policy_numa_and_none(void)
{
    hwloc_topology_t topo = load(NULL, "pack:2 numa:2 core:4 pu:2");
    /* 8 ranks: 2 cores each; --bind numa widens to the whole NUMA node */
    tsr_bind_plan p = plan_of(topo, 5, 8, TSR_BIND_NUMA);
    CU_ASSERT_TRUE(set_is(p.cores, "20-23"));
    CU_ASSERT_TRUE(set_is(p.cpuset, "16-23"));
    CU_ASSERT_TRUE(set_is(p.nodeset, "2"));
    CU_ASSERT_EQUAL(p.threads, 2);
    tsr_bind_plan_release(&p);
    /* --bind none: the whole machine, but threads still follow the share */
    p = plan_of(topo, 5, 8, TSR_BIND_NONE);
    CU_ASSERT_TRUE(set_is(p.cpuset, "0-31"));
    CU_ASSERT_TRUE(set_is(p.cores, "20-23"));
    CU_ASSERT_EQUAL(p.threads, 2);
    tsr_bind_plan_release(&p);
    hwloc_topology_destroy(topo);
}

static void test_topology_without_cores_uses_pus(void)
{
    hwloc_topology_t topo = load(NULL, "pack:1 pu:4");
    tsr_bind_plan p = plan_of(topo, 1, 2, TSR_BIND_CORE);
    CU_ASSERT_TRUE(set_is(p.cpuset, "2-3"));
    CU_ASSERT_EQUAL(p.threads, 2);
    tsr_bind_plan_release(&p);
    hwloc_topology_destroy(topo);
}

static void test_bad_local_rank_is_refused(void)
{
    hwloc_topology_t topo = load(NULL, "pack:1 core:2 pu:1");
    tsr_bind_request req = {2, 2, TSR_BIND_CORE, NULL, 0};
    tsr_bind_plan plan;
    CU_ASSERT_EQUAL(tsr_bind_plan_compute(topo, &req, &plan), TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "local rank 2 of 2"));
    hwloc_topology_destroy(topo);
}

static void test_gpus_found_in_pci_order(void)
{
    hwloc_topology_t topo = load(XML("two-socket-4gpu.xml"), NULL);
    tsr_topo_device gpus[8], nics[8];
    int n = 0, m = 0;
    CU_ASSERT_EQUAL(tsr_topo_gpus(topo, gpus, 8, &n), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(n, 4);
    const char *bus[] = {"0000:07:00.0", "0000:0b:00.0", "0000:85:00.0", "0000:89:00.0"};
    const int numa[] = {1, 1, 0, 0};
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_STRING_EQUAL(gpus[i].busid, bus[i]);
        CU_ASSERT_EQUAL(gpus[i].numa_first, numa[i]);
        CU_ASSERT_EQUAL(gpus[i].vendor, 0x10de);
    }
    CU_ASSERT_EQUAL(gpus[3].pci_class, 0x0300);
    CU_ASSERT_EQUAL(tsr_topo_nics(topo, nics, 8, &m), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(m, 1);
    CU_ASSERT_STRING_EQUAL(nics[0].busid, "0000:81:00.0");
    CU_ASSERT_STRING_EQUAL(nics[0].name, "mlx5_0,ib0");
    CU_ASSERT_STRING_EQUAL(nics[0].numa, "0");
    hwloc_topology_destroy(topo);
}

static void test_gpu_by_os_device_and_not_amd(void)
{
    hwloc_topology_t topo = load(XML("numa-out-of-order-2gpu.xml"), NULL);
    tsr_topo_device gpus[8];
    int n = 0;
    tsr_topo_gpus(topo, gpus, 8, &n);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(gpus[0].busid, "0000:1a:00.0");
    CU_ASSERT_STRING_EQUAL(gpus[1].busid, "0000:3b:00.0");
    CU_ASSERT_STRING_EQUAL(gpus[1].name, "cuda0");
    CU_ASSERT_EQUAL(gpus[1].pci_class, 0x0380);
    CU_ASSERT_STRING_EQUAL(gpus[0].numa, "1");
    CU_ASSERT_STRING_EQUAL(gpus[1].numa, "0");
    hwloc_topology_destroy(topo);
}

static void test_gpu_ranks_follow_gpu_numa_node(void)
{
    /* PCI order puts package 1's GPUs first: ranks 0-1 go to NUMA 1 */
    hwloc_topology_t topo = load(XML("two-socket-4gpu.xml"), NULL);
    const char *cpus[] = {"4-5,12-13", "6-7,14-15", "0-1,8-9", "2-3,10-11"};
    const char *numa[] = {"1", "1", "0", "0"};
    const char *bus[] = {"0000:07:00.0", "0000:0b:00.0", "0000:85:00.0", "0000:89:00.0"};
    for (int r = 0; r < 4; r++) {
        tsr_bind_plan p = plan_of(topo, r, 4, TSR_BIND_CORE);
        CU_ASSERT_EQUAL(p.gpu, r);
        CU_ASSERT_STRING_EQUAL(p.gpu_busid, bus[r]);
        CU_ASSERT_TRUE(set_is(p.cpuset, cpus[r]));
        CU_ASSERT_TRUE(set_is(p.nodeset, numa[r]));
        CU_ASSERT_EQUAL(p.threads, 2);
        tsr_bind_plan_release(&p);
    }
    /* --bind numa: the GPU's whole NUMA node */
    tsr_bind_plan p = plan_of(topo, 0, 4, TSR_BIND_NUMA);
    CU_ASSERT_TRUE(set_is(p.cpuset, "4-7,12-15"));
    tsr_bind_plan_release(&p);
    hwloc_topology_destroy(topo);
}

static void test_more_ranks_than_gpus_share(void)
{
    /* 8 ranks, 4 GPUs: rank i -> GPU floor(i/2); 4 ranks per NUMA node
     * split its 4 cores one each */
    hwloc_topology_t topo = load(XML("two-socket-4gpu.xml"), NULL);
    const char *cpus[] = {"4,12", "5,13", "6,14", "7,15", "0,8", "1,9", "2,10", "3,11"};
    for (int r = 0; r < 8; r++) {
        tsr_bind_plan p = plan_of(topo, r, 8, TSR_BIND_CORE);
        CU_ASSERT_EQUAL(p.gpu, r / 2);
        CU_ASSERT_TRUE(set_is(p.cpuset, cpus[r]));
        CU_ASSERT_EQUAL(p.threads, 1);
        tsr_bind_plan_release(&p);
    }
    hwloc_topology_destroy(topo);
}

static void test_numa_out_of_order(void)
{
    hwloc_topology_t topo = load(XML("numa-out-of-order-2gpu.xml"), NULL);
    tsr_bind_plan p = plan_of(topo, 0, 2, TSR_BIND_CORE);
    CU_ASSERT_TRUE(set_is(p.cpuset, "0-1"));
    CU_ASSERT_TRUE(set_is(p.nodeset, "1"));
    tsr_bind_plan_release(&p);
    p = plan_of(topo, 1, 2, TSR_BIND_CORE);
    CU_ASSERT_TRUE(set_is(p.cpuset, "2-3"));
    CU_ASSERT_TRUE(set_is(p.nodeset, "0"));
    CU_ASSERT_EQUAL(p.gpu, 1);
    tsr_bind_plan_release(&p);
    /* 3 ranks, 2 GPUs: GPU floor(i*2/3) = 0,0,1; ranks 0,1 split NUMA 1 */
    const char *cpus[] = {"0", "1", "2-3"};
    for (int r = 0; r < 3; r++) {
        p = plan_of(topo, r, 3, TSR_BIND_CORE);
        CU_ASSERT_TRUE(set_is(p.cpuset, cpus[r]));
        tsr_bind_plan_release(&p);
    }
    hwloc_topology_destroy(topo);
}

static void test_visible_gpus_filter(void)
{
    /* CUDA_VISIBLE_DEVICES=2,3: the ranks see package 0's GPUs only */
    hwloc_topology_t topo = load(XML("two-socket-4gpu.xml"), NULL);
    const int visible[] = {2, 3};
    tsr_bind_request req = {1, 2, TSR_BIND_CORE, visible, 2};
    tsr_bind_plan p;
    CU_ASSERT_EQUAL_FATAL(tsr_bind_plan_compute(topo, &req, &p), TSR_OK);
    CU_ASSERT_EQUAL(p.gpu, 1);
    CU_ASSERT_STRING_EQUAL(p.gpu_busid, "0000:89:00.0");
    CU_ASSERT_TRUE(set_is(p.cpuset, "2-3,10-11"));
    tsr_bind_plan_release(&p);
    hwloc_topology_destroy(topo);
}

static void test_parse_visible_gpus(void)
{
    int ids[8], n = -1;
    CU_ASSERT_EQUAL(tsr_bind_parse_visible_gpus("0,2,3", ids, 8, &n), 0);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(ids[2], 3);
    CU_ASSERT_EQUAL(tsr_bind_parse_visible_gpus("", ids, 8, &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(tsr_bind_parse_visible_gpus("GPU-8f2a", ids, 8, &n), -1);
    CU_ASSERT_EQUAL(tsr_bind_parse_visible_gpus("0,,1", ids, 8, &n), -1);
    CU_ASSERT_EQUAL(tsr_bind_parse_visible_gpus("0,1,2", ids, 2, &n), -1);
}

static void test_load_errors(void)
{
    hwloc_topology_t topo = NULL;
    CU_ASSERT_EQUAL(tsr_topo_load(XML("missing.xml"), NULL, &topo), TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(topo);
    CU_ASSERT_EQUAL(tsr_topo_load(NULL, "pack:zero", &topo), TSR_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), "synthetic"));
    CU_ASSERT_EQUAL(tsr_topo_load(XML("two-socket-4gpu.xml"), "pu:2", &topo),
                    TSR_ERR_INVALID_ARG);
}

static const tsr_test_case cpu_cases[] = {
    TSR_TEST(test_cpu_one_rank_per_numa_node),
    TSR_TEST(test_cpu_uneven_split),
    TSR_TEST(test_cpu_blocks_are_disjoint_and_cover),
    TSR_TEST(test_cpu_more_ranks_than_cores_share),
    TSR_TEST(test_policy_numa_and_none),
    TSR_TEST(test_topology_without_cores_uses_pus),
    TSR_TEST(test_bad_local_rank_is_refused),
};

static const tsr_test_case gpu_cases[] = {
    TSR_TEST(test_gpus_found_in_pci_order),
    TSR_TEST(test_gpu_by_os_device_and_not_amd),
    TSR_TEST(test_gpu_ranks_follow_gpu_numa_node),
    TSR_TEST(test_more_ranks_than_gpus_share),
    TSR_TEST(test_numa_out_of_order),
    TSR_TEST(test_visible_gpus_filter),
    TSR_TEST(test_parse_visible_gpus),
    TSR_TEST(test_load_errors),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("bind_plan_cpu", cpu_cases),
                                     TSR_SUITE("bind_plan_gpu", gpu_cases)};
    return tsr_test_main(suites, 2);
}
