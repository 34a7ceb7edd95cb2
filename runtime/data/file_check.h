/*
 * file_check.h - checks on the files a user names (datasets, tokenizer
 * files, topology files, output paths) before tessera opens them.
 *
 * A FIFO opened for reading blocks until some process writes to it, a
 * directory or a device "opens" and then fails (or never ends) when read,
 * and a path over PATH_MAX fails with an errno that names no path. These
 * functions turn each such case into TSR_ERR_INVALID_ARG with a message
 * that names the path and what it is, so the CLI exits 2 before anything
 * is allocated or any rank waits on another.
 *
 * `what` names the flag or role of the path in messages ("--vocab-file");
 * NULL leaves the path alone to speak for itself.
 *
 * Callers: indexed.c, hdf5_tokens.c, tokenizer.c, cmd_preprocess.c,
 * cmd_slurm.c, topo_load.c.
 */
#ifndef TSR_DATA_FILE_CHECK_H
#define TSR_DATA_FILE_CHECK_H

#include <stddef.h>

#include "tessera/status.h"

/* Opens `path` read-only and returns its descriptor in *fd_out (owned by
 * the caller, close()) if it is a regular file. The open never blocks: a
 * FIFO swapped in after a stat() is still refused. */
tsr_status tsr_file_open_input(const char *path, const char *what, int *fd_out);

/* The checks of tsr_file_open_input without keeping the file open, for
 * libraries that open files by name (HDF5, hwloc). */
tsr_status tsr_file_check_input(const char *path, const char *what);

/* For input read once, front to back: like tsr_file_check_input, but a
 * FIFO or a character device is accepted, so that `--input <(zcat x.gz)`
 * and /dev/stdin work; directories, sockets and block devices are not. */
tsr_status tsr_file_check_stream(const char *path, const char *what);

/* Checks that `path` can be created or replaced: it is not a directory, a
 * FIFO or a socket, its directory exists and this process may write
 * there. Creates nothing. A character device (/dev/null) is accepted. */
tsr_status tsr_file_check_output(const char *path, const char *what);

/* Copies the directory part of `path` ("." when it has none, "/" for a
 * file in the root) into dir. */
void tsr_file_directory_of(const char *path, char *dir, size_t size);

#endif /* TSR_DATA_FILE_CHECK_H */
