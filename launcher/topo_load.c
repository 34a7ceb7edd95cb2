/*
 * topo_load.c - hwloc topology loading with I/O devices kept (topo_load.h).
 */
#include "topo_load.h"

#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <sys/stat.h>

#include "data/file_check.h"
#include "topo_synthetic.h"

/* hwloc's PCI plugin keeps libpciaccess's device list in that library's
 * globals and unloads the plugin (and the library) when the last topology
 * is destroyed, which turns that live state into a leak that leak checkers
 * report and cannot attribute. Holding one reference of our own keeps the
 * library mapped for the life of the process. Never closed on purpose. */
static void keep_pciaccess_loaded(void)
{
    static void *handle = NULL; /* set once per process */
    if (handle == NULL)
        handle = dlopen("libpciaccess.so.0", RTLD_LAZY | RTLD_GLOBAL);
}

tsr_status tsr_topo_load(const char *xml_path, const char *synthetic, hwloc_topology_t *out)
{
    *out = NULL;
    if (xml_path != NULL && synthetic != NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--topology and --synthetic are alternatives; give one of them");
    /* before hwloc sees them: hwloc would block on a FIFO and build a
     * machine of any size. A missing file is left to the message below,
     * which says how to make one. */
    tsr_status st = TSR_OK;
    struct stat info;
    if (xml_path != NULL && (stat(xml_path, &info) == 0 || errno != ENOENT))
        st = tsr_file_check_input(xml_path, "--topology");
    if (synthetic != NULL)
        st = tsr_topo_synthetic_check(synthetic);
    if (st != TSR_OK)
        return st;
    keep_pciaccess_loaded();
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "hwloc_topology_init failed");
    /* GPUs, NICs and their PCI parents; bridges only where they carry them */
    hwloc_topology_set_io_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    /* GPUs are found through PCI (and CUDA/NVML OS devices in XML files);
     * the OpenCL and GL backends would only add start-up time, an ICD
     * loader and an X display probe, which also leaks */
    static const char *const unused[] = {"opencl", "gl", "levelzero", "rsmi"};
    for (size_t i = 0; i < sizeof unused / sizeof unused[0]; i++)
        hwloc_topology_set_components(topo, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, unused[i]);
    if (xml_path != NULL && hwloc_topology_set_xml(topo, xml_path) != 0) {
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "--topology %s could not be read as an hwloc XML topology; "
                           "create one with 'lstopo --of xml FILE.xml'",
                           xml_path);
        goto fail;
    }
    if (synthetic != NULL && hwloc_topology_set_synthetic(topo, synthetic) != 0) {
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "--synthetic \"%s\" is not a valid hwloc synthetic description; "
                           "example: \"pack:2 numa:2 core:8 pu:2\"",
                           synthetic);
        goto fail;
    }
    if (hwloc_topology_load(topo) != 0) {
        /* set_xml only records the file: well-formed XML that is not an
         * hwloc topology (another root element) fails here */
        if (xml_path != NULL)
            st = tsr_error_set(TSR_ERR_INVALID_ARG,
                               "--topology %s is not an hwloc XML topology (hwloc found no "
                               "<topology> root it can load); create one with 'lstopo --of "
                               "xml FILE.xml'",
                               xml_path);
        else if (synthetic != NULL)
            st = tsr_error_set(TSR_ERR_INVALID_ARG,
                               "hwloc could not build the --synthetic topology \"%s\"; "
                               "example: \"pack:2 numa:2 core:8 pu:2\"",
                               synthetic);
        else
            st = tsr_error_set(TSR_ERR_IO, "hwloc could not load this machine's topology");
        goto fail;
    }
    if (hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU) <= 0) {
        st = tsr_error_set(TSR_ERR_FORMAT, "the topology has no processing unit (PU)");
        goto fail;
    }
    *out = topo;
    return TSR_OK;
fail:
    hwloc_topology_destroy(topo);
    return st;
}
