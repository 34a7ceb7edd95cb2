/*
 * topo_devices.c - GPU and NIC discovery in an hwloc topology
 * (topo_devices.h).
 */
#include "topo_devices.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NVIDIA_VENDOR 0x10de

static int starts_with(const char *s, const char *prefix)
{
    return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

static int is_gpu_osdev(hwloc_obj_t os)
{
    if (os->type != HWLOC_OBJ_OS_DEVICE)
        return 0;
    const char *kind = hwloc_obj_get_info_by_name(os, "CoProcType");
    if (os->attr->osdev.type == HWLOC_OBJ_OSDEV_COPROC)
        return (os->subtype != NULL && strcmp(os->subtype, "CUDA") == 0) ||
               (kind != NULL && strcmp(kind, "CUDA") == 0) || starts_with(os->name, "cuda");
    if (os->attr->osdev.type == HWLOC_OBJ_OSDEV_GPU)
        return (os->subtype != NULL && strcmp(os->subtype, "NVML") == 0) ||
               starts_with(os->name, "nvml");
    return 0;
}

static int is_nic_osdev(hwloc_obj_t os)
{
    return os->type == HWLOC_OBJ_OS_DEVICE && (os->attr->osdev.type == HWLOC_OBJ_OSDEV_NETWORK ||
                                               os->attr->osdev.type == HWLOC_OBJ_OSDEV_OPENFABRICS);
}

static int has_child(hwloc_obj_t pci, int (*pred)(hwloc_obj_t))
{
    for (hwloc_obj_t c = pci->io_first_child; c != NULL; c = c->next_sibling)
        if (pred(c))
            return 1;
    return 0;
}

static int is_gpu_pci(hwloc_obj_t pci)
{
    unsigned cls = pci->attr->pcidev.class_id;
    if (pci->attr->pcidev.vendor_id == NVIDIA_VENDOR && (cls == 0x0300 || cls == 0x0302))
        return 1;
    return has_child(pci, is_gpu_osdev);
}

static int is_nic_pci(hwloc_obj_t pci)
{
    return (pci->attr->pcidev.class_id >> 8) == 0x02 || has_child(pci, is_nic_osdev);
}

static hwloc_obj_t pci_ancestor(hwloc_obj_t obj)
{
    for (hwloc_obj_t p = obj->parent; p != NULL; p = p->parent)
        if (p->type == HWLOC_OBJ_PCI_DEVICE)
            return p;
    return NULL;
}

void tsr_topo_local_numa(hwloc_topology_t topo, hwloc_const_cpuset_t cpuset,
                         hwloc_nodeset_t nodeset)
{
    static const unsigned long flags[] = {0, HWLOC_LOCAL_NUMANODE_FLAG_SMALLER_LOCALITY,
                                          HWLOC_LOCAL_NUMANODE_FLAG_LARGER_LOCALITY};
    hwloc_bitmap_zero(nodeset);
    unsigned max = (unsigned)hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    if (max == 0)
        return;
    hwloc_obj_t *nodes = calloc(max, sizeof *nodes);
    if (nodes == NULL)
        return;
    struct hwloc_location where;
    where.type = HWLOC_LOCATION_TYPE_CPUSET;
    where.location.cpuset = (hwloc_cpuset_t)cpuset;
    for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
        unsigned n = max;
        if (hwloc_get_local_numanode_objs(topo, &where, &n, nodes, flags[f]) == 0 && n > 0) {
            for (unsigned i = 0; i < n && i < max; i++)
                hwloc_bitmap_set(nodeset, nodes[i]->os_index);
            break;
        }
    }
    free(nodes);
}

/* Fills everything but the PCI fields from obj's locality and OS devices. */
static void describe(hwloc_topology_t topo, hwloc_obj_t obj, tsr_topo_device *d)
{
    memset(d, 0, sizeof *d);
    d->obj = obj;
    hwloc_obj_t anchor = hwloc_get_non_io_ancestor_obj(topo, obj);
    d->locality = anchor != NULL ? anchor->cpuset : hwloc_topology_get_topology_cpuset(topo);
    hwloc_nodeset_t ns = hwloc_bitmap_alloc();
    d->numa_first = -1;
    if (ns != NULL) {
        tsr_topo_local_numa(topo, d->locality, ns);
        d->numa_first = hwloc_bitmap_first(ns);
        if (hwloc_bitmap_iszero(ns))
            snprintf(d->numa, sizeof d->numa, "-");
        else
            hwloc_bitmap_list_snprintf(d->numa, sizeof d->numa, ns);
        hwloc_bitmap_free(ns);
    }
    if (obj->type == HWLOC_OBJ_PCI_DEVICE) {
        const struct hwloc_pcidev_attr_s *a = &obj->attr->pcidev;
        snprintf(d->busid, sizeof d->busid, "%04x:%02x:%02x.%01x", (unsigned)a->domain,
                 (unsigned)a->bus, (unsigned)a->dev, (unsigned)a->func);
        d->vendor = a->vendor_id;
        d->device = a->device_id;
        d->pci_class = a->class_id;
        size_t used = 0;
        for (hwloc_obj_t c = obj->io_first_child; c != NULL; c = c->next_sibling) {
            if (c->type != HWLOC_OBJ_OS_DEVICE || c->name == NULL)
                continue;
            int n = snprintf(d->name + used, sizeof d->name - used, "%s%s", used ? "," : "",
                             c->name);
            if (n < 0 || (size_t)n >= sizeof d->name - used)
                break;
            used += (size_t)n;
        }
    } else if (obj->name != NULL) {
        snprintf(d->name, sizeof d->name, "%s", obj->name);
    }
}

static int compare_devices(const void *pa, const void *pb)
{
    const tsr_topo_device *a = pa, *b = pb;
    int a_pci = a->obj->type == HWLOC_OBJ_PCI_DEVICE, b_pci = b->obj->type == HWLOC_OBJ_PCI_DEVICE;
    if (a_pci != b_pci)
        return b_pci - a_pci; /* PCI first */
    if (a_pci) {
        const struct hwloc_pcidev_attr_s *x = &a->obj->attr->pcidev, *y = &b->obj->attr->pcidev;
        unsigned long kx = ((unsigned long)x->domain << 24) | ((unsigned long)x->bus << 16) |
                           ((unsigned long)x->dev << 8) | x->func;
        unsigned long ky = ((unsigned long)y->domain << 24) | ((unsigned long)y->bus << 16) |
                           ((unsigned long)y->dev << 8) | y->func;
        return kx < ky ? -1 : kx > ky;
    }
    return strcmp(a->name, b->name);
}

static tsr_status collect(hwloc_topology_t topo, int (*pci_pred)(hwloc_obj_t),
                          int (*os_pred)(hwloc_obj_t), tsr_topo_device *out, int max, int *count)
{
    int n = 0;
    for (hwloc_obj_t p = hwloc_get_next_pcidev(topo, NULL); p != NULL;
         p = hwloc_get_next_pcidev(topo, p))
        if (pci_pred(p) && n < max)
            describe(topo, p, &out[n++]);
    for (hwloc_obj_t o = hwloc_get_next_osdev(topo, NULL); o != NULL;
         o = hwloc_get_next_osdev(topo, o))
        if (os_pred(o) && pci_ancestor(o) == NULL && n < max)
            describe(topo, o, &out[n++]);
    qsort(out, (size_t)n, sizeof *out, compare_devices);
    *count = n;
    return TSR_OK;
}

tsr_status tsr_topo_gpus(hwloc_topology_t topo, tsr_topo_device *out, int max, int *count)
{
    return collect(topo, is_gpu_pci, is_gpu_osdev, out, max, count);
}

tsr_status tsr_topo_nics(hwloc_topology_t topo, tsr_topo_device *out, int max, int *count)
{
    return collect(topo, is_nic_pci, is_nic_osdev, out, max, count);
}
