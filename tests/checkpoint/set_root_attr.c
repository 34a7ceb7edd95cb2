/*
 * set_root_attr.c - test tool: set_root_attr FILE NAME VALUE overwrites the
 * int64 root attribute NAME of an HDF5 file (a damaged or forged
 * checkpoint counter for tests/checkpoint/reliability_e2e.sh).
 */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: set_root_attr FILE NAME VALUE\n");
        return 2;
    }
    long long value = strtoll(argv[3], NULL, 10);
    hid_t file = H5Fopen(argv[1], H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t attr = file < 0 ? -1 : H5Aopen(file, argv[2], H5P_DEFAULT);
    herr_t err = attr < 0 ? -1 : H5Awrite(attr, H5T_NATIVE_LLONG, &value);
    if (attr >= 0)
        H5Aclose(attr);
    if (file >= 0)
        H5Fclose(file);
    return err < 0 ? 1 : 0;
}
