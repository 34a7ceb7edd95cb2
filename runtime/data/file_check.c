/*
 * file_check.c - file type, length and permission checks on user-named
 * paths (file_check.h).
 */
#include "file_check.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How much of a too-long path a message repeats: enough to recognise it,
 * short enough to keep the message on a screen. */
enum { SHOWN_PREFIX = 48 };

/* "--vocab-file " or "" */
static const char *role(const char *what)
{
    return what != NULL ? what : "";
}

static const char *role_space(const char *what)
{
    return what != NULL ? " " : "";
}

static const char *kind_of(mode_t mode)
{
    if (S_ISREG(mode))
        return "a regular file";
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO (named pipe)";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "a file of unknown type";
}

static tsr_status check_length(const char *path, const char *what)
{
    size_t n = strlen(path);
    if (n == 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%s%sthe path is empty; give a file name",
                             role(what), role_space(what));
    if (n < PATH_MAX)
        return TSR_OK;
    return tsr_error_set(TSR_ERR_INVALID_ARG,
                         "%s%s%.*s... is %zu bytes long, more than PATH_MAX (%d) allows; use a "
                         "shorter path (a relative path or a symbolic link)",
                         role(what), role_space(what), SHOWN_PREFIX, path, n, PATH_MAX);
}

/* The status and message of a failed open() or stat() of `path`. */
static tsr_status errno_error(const char *path, const char *what, int err)
{
    const char *why;
    switch (err) {
    case ENOENT: why = "no such file or directory"; break;
    case EACCES: why = "permission denied"; break;
    case ENOTDIR: why = "a component of the path is not a directory"; break;
    case ENAMETOOLONG: why = "a component of the path is longer than NAME_MAX"; break;
    case ELOOP: why = "too many levels of symbolic links"; break;
    default:
        return tsr_error_set(TSR_ERR_IO, "cannot open %s%s%s: %s", role(what), role_space(what),
                             path, strerror(err));
    }
    return tsr_error_set(TSR_ERR_INVALID_ARG, "cannot open %s%s%s: %s", role(what),
                         role_space(what), path, why);
}

static tsr_status not_regular(const char *path, const char *what, mode_t mode)
{
    return tsr_error_set(TSR_ERR_INVALID_ARG,
                         "%s%s%s is %s, not a regular file; give the path of a regular file",
                         role(what), role_space(what), path, kind_of(mode));
}

tsr_status tsr_file_open_input(const char *path, const char *what, int *fd_out)
{
    *fd_out = -1;
    tsr_status st = check_length(path, what);
    if (st != TSR_OK)
        return st;
    /* O_NONBLOCK: opening a FIFO for reading returns at once instead of
     * waiting for a writer; fstat() then refuses it */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno_error(path, what, errno);
    struct stat info;
    if (fstat(fd, &info) != 0) {
        st = tsr_error_set(TSR_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
    } else if (!S_ISREG(info.st_mode)) {
        st = not_regular(path, what, info.st_mode);
    } else {
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
            st = tsr_error_set(TSR_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    }
    if (st != TSR_OK) {
        close(fd);
        return st;
    }
    *fd_out = fd;
    return TSR_OK;
}

/* stat() and, for a regular file, a read permission check; *mode_out is
 * the file's type. */
static tsr_status stat_input(const char *path, const char *what, mode_t *mode_out)
{
    tsr_status st = check_length(path, what);
    if (st != TSR_OK)
        return st;
    struct stat info;
    if (stat(path, &info) != 0)
        return errno_error(path, what, errno);
    if (access(path, R_OK) != 0)
        return errno_error(path, what, errno);
    *mode_out = info.st_mode;
    return TSR_OK;
}

tsr_status tsr_file_check_input(const char *path, const char *what)
{
    mode_t mode = 0;
    tsr_status st = stat_input(path, what, &mode);
    if (st == TSR_OK && !S_ISREG(mode))
        st = not_regular(path, what, mode);
    return st;
}

tsr_status tsr_file_check_stream(const char *path, const char *what)
{
    mode_t mode = 0;
    tsr_status st = stat_input(path, what, &mode);
    if (st == TSR_OK && !S_ISREG(mode) && !S_ISFIFO(mode) && !S_ISCHR(mode))
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "%s%s%s is %s; give a text file (or a pipe) to read", role(what),
                           role_space(what), path, kind_of(mode));
    return st;
}

void tsr_file_directory_of(const char *path, char *dir, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, size, ".");
    else if (slash == path)
        snprintf(dir, size, "/");
    else
        snprintf(dir, size, "%.*s", (int)(slash - path), path);
}

static tsr_status check_directory(const char *path, const char *what)
{
    char dir[PATH_MAX];
    tsr_file_directory_of(path, dir, sizeof dir);
    struct stat info;
    if (stat(dir, &info) != 0) {
        if (errno == ENOENT)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "%s%s%s: the directory %s does not exist; create it first "
                                 "(mkdir -p %s)",
                                 role(what), role_space(what), path, dir, dir);
        return errno_error(dir, what, errno);
    }
    if (!S_ISDIR(info.st_mode))
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%s%s%s: %s is %s, not a directory",
                             role(what), role_space(what), path, dir, kind_of(info.st_mode));
    if (access(dir, W_OK | X_OK) != 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s%s%s: cannot create files in the directory %s (%s); choose a "
                             "directory you can write to",
                             role(what), role_space(what), path, dir,
                             errno == EACCES ? "permission denied" : strerror(errno));
    return TSR_OK;
}

tsr_status tsr_file_check_output(const char *path, const char *what)
{
    tsr_status st = check_length(path, what);
    if (st != TSR_OK)
        return st;
    if (path[strlen(path) - 1] == '/')
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s%s%s ends with '/'; give the name of a file in that directory",
                             role(what), role_space(what), path);
    struct stat info;
    if (stat(path, &info) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return check_directory(path, what);
        return errno_error(path, what, errno);
    }
    if (S_ISDIR(info.st_mode))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s%s%s is a directory; give the name of a file in it",
                             role(what), role_space(what), path);
    if (!S_ISREG(info.st_mode) && !S_ISCHR(info.st_mode))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s%s%s is %s, not a regular file; give the path of a file to "
                             "write",
                             role(what), role_space(what), path, kind_of(info.st_mode));
    if (access(path, W_OK) != 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "%s%s%s cannot be written (%s)", role(what),
                             role_space(what), path,
                             errno == EACCES ? "permission denied" : strerror(errno));
    return TSR_OK;
}
