/* File helpers: atomic replacement with final permissions from the start, and whole-file reads. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Writes to a temporary file in the same directory created with mode, fsyncs, renames over
 * path and fsyncs the directory: readers see the old file or the new one, never a part. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* The same; without sync_dir, the directory is not fsynced: the new file is whole for any
 * process at once, but after a power loss the old one may come back, until fsync_path(). */
int write_file_atomic_full(const char *path, const void *data, size_t len, mode_t mode,
                           bool sync_dir);
/* fsyncs the file at path and the directory that holds it. */
int fsync_path(const char *path);

/* Whether name is that of write_file_atomic()'s temporary file, ".#<target>.<pid>"; ret gets
 * <target>. A crash between create and rename leaves one behind. */
bool atomic_temp_target(const char *name, char *ret, size_t n);

/* fsyncs the directory that holds path, so that a rename or unlink in it survives a crash. */
int fsync_parent(const char *path);

/* Reads a whole file (at most max bytes) into a NUL-terminated buffer. */
int read_file(const char *path, size_t max, char **ret, size_t *ret_len);

/* Creates a directory and its parents with mode. */
int mkdir_parents(const char *path, mode_t mode);

/* root + path, where path is absolute; root "/" or empty gives path itself. */
int path_join_root(const char *root, const char *path, char **ret);
