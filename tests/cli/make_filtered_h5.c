/*
 * make_filtered_h5.c - writes an HDF5 token file whose /tokens dataset is
 * stored through a filter that no libhdf5 has, for bad_input_files.sh.
 *
 *   make_filtered_h5 OUT.h5
 *
 * The filter (id 257, from the range HDF5 reserves for tests, named
 * "tessera-absent-filter") is registered only inside this program and
 * passes data through unchanged, so the file is well formed, and any
 * reader without the filter must refuse it. Exits 1 if HDF5 fails.
 */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>

enum { ABSENT_FILTER = 257 };

static size_t pass_through(unsigned flags, size_t nelmts, const unsigned cd_values[],
                           size_t nbytes, size_t *buf_size, void **buf)
{
    (void)flags, (void)nelmts, (void)cd_values, (void)buf_size, (void)buf;
    return nbytes;
}

static const H5Z_class2_t absent_filter = {
    H5Z_CLASS_T_VERS, ABSENT_FILTER, 1, 1, "tessera-absent-filter", NULL, NULL, pass_through,
};

static int write_vector(hid_t file, const char *name, hid_t type, hid_t memtype, hid_t dcpl,
                        hsize_t n, const void *data)
{
    hid_t space = H5Screate_simple(1, &n, NULL);
    hid_t dset = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int ok = dset >= 0 && H5Dwrite(dset, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
    if (dset >= 0)
        H5Dclose(dset);
    H5Sclose(space);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT.h5\n", argv[0]);
        return 2;
    }
    static const int32_t tokens[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const int64_t offsets[3] = {0, 4, 8};
    hsize_t chunk = 4;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int ok = H5Zregister(&absent_filter) >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, 1, &chunk) >= 0 &&
             H5Pset_filter(dcpl, ABSENT_FILTER, H5Z_FLAG_MANDATORY, 0, NULL) >= 0;
    hid_t file = ok ? H5Fcreate(argv[1], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT) : -1;
    ok = file >= 0 &&
         write_vector(file, "tokens", H5T_STD_I32LE, H5T_NATIVE_INT32, dcpl, 8, tokens) &&
         write_vector(file, "document_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, H5P_DEFAULT, 3,
                      offsets);
    if (file >= 0 && H5Fclose(file) < 0)
        ok = 0;
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (!ok)
        fprintf(stderr, "make_filtered_h5: HDF5 could not write %s\n", argv[1]);
    return ok ? 0 : 1;
}
