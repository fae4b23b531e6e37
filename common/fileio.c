/* Atomic file replacement and small file reads. */
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <sys/stat.h>

#include "fileio.h"
#include "util.h"

static int write_all(int fd, const void *data, size_t len) {
        const char *p = data;

        while (len > 0) {
                ssize_t k = write(fd, p, len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += k;
                len -= (size_t) k;
        }
        return 0;
}

int fsync_parent(const char *path) {
        _cleanup_(freep) char *copy = strdup(path);
        _cleanup_(closep) int fd = -1;

        if (!copy)
                return -ENOMEM;
        fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        return fsync(fd) < 0 ? negative_errno() : 0;
}

bool atomic_temp_target(const char *name, char *ret, size_t n) {
        const char *dot = strrchr(name, '.');
        size_t len;

        if (strncmp(name, ".#", 2) != 0 || !dot || dot <= name + 2 || !dot[1] ||
            strspn(dot + 1, "0123456789") != strlen(dot + 1))
                return false;
        len = (size_t) (dot - name - 2);
        if (len >= n)
                return false;
        memcpy(ret, name + 2, len);
        ret[len] = 0;
        return true;
}

int write_file_atomic_full(const char *path, const void *data, size_t len, mode_t mode,
                           bool sync_dir) {
        _cleanup_(freep) char *tmp = NULL;
        _cleanup_(closep) int fd = -1;
        const char *base = strrchr(path, '/');
        int r;

        /* A dot file next to the target: no reader of *.yaml, *.link, *.conf or keyfiles picks
         * it up while it is being written. */
        base = base ? base + 1 : path;
        if (asprintf(&tmp, "%.*s.#%s.%d", (int) (base - path), path, base, (int) getpid()) < 0)
                return -ENOMEM;
        (void) unlink(tmp);
        /* O_EXCL with the final mode: the file is never readable beyond that mode. */
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0)
                return negative_errno();
        r = fchmod(fd, mode) < 0 ? negative_errno() : 0; /* the umask must not widen or narrow it */
        if (r == 0)
                r = write_all(fd, data, len);
        /* Always: a rename that reaches the disk before the data would leave an empty file. */
        if (r == 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r == 0 && rename(tmp, path) < 0)
                r = negative_errno();
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        return sync_dir ? fsync_parent(path) : 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        return write_file_atomic_full(path, data, len, mode, true);
}

int fsync_path(const char *path) {
        _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return negative_errno();
        if (fsync(fd) < 0)
                return negative_errno();
        return fsync_parent(path);
}

int read_file(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_(fclosep) FILE *f = fopen(path, "re");
        _cleanup_(freep) char *buf = NULL;
        size_t n;

        if (!f)
                return negative_errno();
        buf = malloc(max + 1);
        if (!buf)
                return -ENOMEM;
        n = fread(buf, 1, max + 1, f);
        if (ferror(f))
                return -EIO;
        if (n > max)
                return -EFBIG;
        buf[n] = 0;
        if (ret_len)
                *ret_len = n;
        *ret = TAKE_PTR(buf);
        return 0;
}

int mkdir_parents(const char *path, mode_t mode) {
        _cleanup_(freep) char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return negative_errno();
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

int path_join_root(const char *root, const char *path, char **ret) {
        if (!root || !*root || streq(root, "/"))
                root = "";
        return asprintf(ret, "%s%s", root, path) < 0 ? -ENOMEM : 0;
}
