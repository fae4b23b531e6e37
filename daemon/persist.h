/* Persistence: the files that make the host's own network stack recreate the NICs at boot. */
#pragma once

#include <sys/types.h>

#include "plan.h"
#include "state.h"

#define PERSIST_MARKER "# Managed by multinicd: it rewrites or deletes this file; do not edit."

typedef enum PersistBackend {
        PERSIST_NONE,
        PERSIST_NETPLAN,
        PERSIST_NETWORKMANAGER,
        _PERSIST_BACKEND_MAX,
        PERSIST_AUTO = -1,
} PersistBackend;

const char *persist_backend_to_string(PersistBackend b);
/* "auto" gives PERSIST_AUTO; an unknown name -EINVAL. */
int persist_backend_from_string(const char *s);
/* From <root>/etc/os-release: Ubuntu and Debian with /etc/netplan use netplan, the RHEL family
 * NetworkManager, anything else none. */
PersistBackend persist_backend_detect(const char *root);

/* One file multinicd wants on disk. */
typedef struct PersistFile {
        char path[128]; /* absolute, below the root */
        char *content;
        mode_t mode;
        size_t nic; /* index into the state's NICs; SIZE_MAX for a file shared by all */
} PersistFile;

typedef struct PersistSet {
        PersistFile *files;
        size_t n_files;
} PersistSet;

void persist_set_done(PersistSet *set);

/* Every file of the backend for the managed NICs: pure, no file system access. */
int persist_render(PersistBackend b, const State *state, const Config *config, PersistSet *ret);

int render_netplan(const ManagedNic *m, char **ret);
int render_keyfile(const ManagedNic *m, char **ret);
/* driver NULL: not known, and the file's guard is Type=ether, which systemd before v245 never
 * matches with a NIC. */
int render_link(const ManagedNic *m, const char *driver, char **ret);
int render_sysctl(const State *state, const Config *config, char **ret);
void keyfile_uuid(const uint8_t mac[6], char ret[37]);
/* Each NIC's driver, as ethtool reports it (and udev's Driver= matches it) for the link named
 * like the NIC that carries its MAC, in the calling process's network namespace; for a NIC not
 * there now, the driver before had for it. */
void persist_learn_drivers(State *s, const State *before);

/* Writes one file unless it already has this content, mode and owner. A file there without the
 * marker is never replaced (-EEXIST). ret_old gets the previous content (NULL if there was
 * none), for undo. */
int persist_write(const char *root, const PersistFile *f, char **ret_old, bool *ret_written);
/* Puts back what persist_write replaced: the old content, or no file (and the directory
 * fsynced). */
int persist_restore(const char *root, const PersistFile *f, const char *old);
/* Deletes every file multinicd owns (marker first) in the persistence directories that the set
 * does not hold, and the temporary files of its atomic writes that a crash left there and in the
 * state directory; then fsyncs each directory it deleted from. Returns the number deleted. */
int persist_remove_orphans(const char *root, const PersistSet *set);
