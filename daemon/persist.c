/* Rendering and writing of the persistence files: netplan, NetworkManager keyfile plus systemd
 * .link, and sysctl.d. Every file starts with PERSIST_MARKER; no other file is ever touched, but
 * the temporary files of multinicd's own writes. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <uuid/uuid.h>

#include "fileio.h"
#include "persist.h"
#include "util.h"

#define NETPLAN_DIR "/etc/netplan"
#define KEYFILE_DIR "/etc/NetworkManager/system-connections"
#define LINK_DIR "/etc/systemd/network"
#define SYSCTL_DIR "/etc/sysctl.d"
#define STATE_DIR "/var/lib/multinic"
#define LINK_FALLBACK_GUARD "Type=ether"

/* Where multinicd writes files and how they are named: to find orphans (marked files that no NIC
 * needs any more) and the temporary files ".#<name>.<pid>" that a crash left. The state file is
 * not a persistence file: only its temporary files are cleaned up here. */
static const struct {
        const char *dir, *glob;
        bool orphans;
} persist_locations[] = {
        { NETPLAN_DIR, "90-multinic-*.yaml", true },
        { KEYFILE_DIR, "multinic-*.nmconnection", true },
        { LINK_DIR, "10-multinic-*.link", true },
        { SYSCTL_DIR, "90-multinic.conf", true },
        { STATE_DIR, "state.json", false },
};

const char *persist_backend_to_string(PersistBackend b) {
        static const char *const table[_PERSIST_BACKEND_MAX] = {
                [PERSIST_NONE] = "none",
                [PERSIST_NETPLAN] = "netplan",
                [PERSIST_NETWORKMANAGER] = "networkmanager",
        };

        return b >= 0 && b < _PERSIST_BACKEND_MAX ? table[b] : "auto";
}

int persist_backend_from_string(const char *s) {
        if (streq(s, "auto"))
                return PERSIST_AUTO;
        for (int b = 0; b < _PERSIST_BACKEND_MAX; b++)
                if (streq(s, persist_backend_to_string((PersistBackend) b)))
                        return b;
        return -EINVAL;
}

/* The value of KEY= in os-release text, unquoted, in buf. */
static bool os_release_get(const char *text, const char *key, char *buf, size_t n) {
        size_t klen = strlen(key);

        for (const char *line = text; line && *line; line = strchr(line, '\n'), line += !!line) {
                const char *v;
                size_t len;

                if (strncmp(line, key, klen) != 0 || line[klen] != '=')
                        continue;
                v = line + klen + 1;
                len = strcspn(v, "\n");
                if (len >= 2 && (v[0] == '"' || v[0] == '\'') && v[len - 1] == v[0]) {
                        v++;
                        len -= 2;
                }
                snprintf(buf, n, "%.*s", (int) len, v);
                return true;
        }
        return false;
}

static bool word_in(const char *words, const char *const *set) {
        char buf[256], *save = NULL;

        snprintf(buf, sizeof(buf), "%s", words);
        for (char *w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
                for (size_t i = 0; set[i]; i++)
                        if (streq(w, set[i]))
                                return true;
        return false;
}

PersistBackend persist_backend_detect(const char *root) {
        static const char *const netplan_ids[] = { "ubuntu", "debian", NULL };
        static const char *const rhel_ids[] = { "rhel",  "centos", "rocky", "almalinux",
                                                "fedora", "ol",    NULL };
        _cleanup_(freep) char *path = NULL, *text = NULL, *netplan = NULL;
        char ids[256] = "", like[200] = "";
        struct stat st;

        if (path_join_root(root, "/etc/os-release", &path) < 0 ||
            read_file(path, 64 * 1024, &text, NULL) < 0)
                return PERSIST_NONE;
        os_release_get(text, "ID", ids, sizeof(ids));
        if (os_release_get(text, "ID_LIKE", like, sizeof(like)))
                snprintf(ids + strlen(ids), sizeof(ids) - strlen(ids), " %s", like);

        if (word_in(ids, rhel_ids))
                return PERSIST_NETWORKMANAGER;
        if (!word_in(ids, netplan_ids) || path_join_root(root, NETPLAN_DIR, &netplan) < 0)
                return PERSIST_NONE;
        /* Debian uses netplan only where it is set up (cloud images); else ifupdown. */
        return stat(netplan, &st) == 0 && S_ISDIR(st.st_mode) ? PERSIST_NETPLAN : PERSIST_NONE;
}

void persist_set_done(PersistSet *set) {
        for (size_t i = 0; i < set->n_files; i++)
                free(set->files[i].content);
        free(set->files);
        *set = (PersistSet) {};
}

typedef struct Strings {
        char mac[MAC_STRLEN];
        char addr[INET_ADDRSTRLEN];
        char net[INET_ADDRSTRLEN];
} Strings;

static void strings_init(Strings *s, const ManagedNic *m) {
        mac_format(m->mac, s->mac);
        inet_ntop(AF_INET, &m->address.local, s->addr, sizeof(s->addr));
        inet_ntop(AF_INET, &m->route.dst, s->net, sizeof(s->net));
        if (!m->has_route) {
                struct in_addr n = { .s_addr = m->address.local.s_addr &
                                               htonl(prefix_to_mask(m->address.prefixlen)) };
                inet_ntop(AF_INET, &n, s->net, sizeof(s->net));
        }
}

/* One file being rendered: a memory stream, and the NIC's values as text. */
typedef struct Render {
        char *buf;
        size_t len;
        FILE *f;
        Strings s;
} Render;

static int render_begin(Render *r, const ManagedNic *m) {
        *r = (Render) {};
        r->f = open_memstream(&r->buf, &r->len);
        if (!r->f)
                return -ENOMEM;
        strings_init(&r->s, m);
        fprintf(r->f, "%s\n", PERSIST_MARKER);
        return 0;
}

/* Closes the stream and hands its text over; -ENOMEM if anything failed to fit. */
static int render_end(Render *r, char **ret) {
        bool failed = ferror(r->f);

        if (fclose(r->f) != 0 || failed) {
                free(r->buf);
                return -ENOMEM;
        }
        *ret = r->buf;
        return 0;
}

/* MACs are quoted so that no YAML loader reads them as numbers (base 60 in YAML 1.1). */
int render_netplan(const ManagedNic *m, char **ret) {
        Render r;
        FILE *f;

        if (render_begin(&r, m) < 0)
                return -ENOMEM;
        f = r.f;
        fprintf(f, "network:\n  version: 2\n  ethernets:\n    %s:\n", m->name);
        fprintf(f, "      match:\n        macaddress: \"%s\"\n      set-name: %s\n", r.s.mac,
                m->name);
        if (m->mtu > 0)
                fprintf(f, "      mtu: %u\n", m->mtu);
        fprintf(f, "      dhcp4: false\n      dhcp6: false\n");
        fprintf(f, "      addresses:\n        - \"%s/%u\"\n", r.s.addr, m->address.prefixlen);
        if (m->has_route)
                fprintf(f, "      routes:\n        - to: \"%s/%u\"\n          from: \"%s\"\n"
                           "          scope: link\n          table: %u\n",
                        r.s.net, m->route.dst_len, r.s.addr, m->route.table);
        if (m->has_rule)
                fprintf(f, "      routing-policy:\n        - from: \"%s\"\n          table: %u\n"
                           "          priority: %u\n",
                        r.s.addr, m->rule.table, m->rule.priority);
        return render_end(&r, ret);
}

void keyfile_uuid(const uint8_t mac[6], char ret[37]) {
        /* A fixed namespace of multinic's own: the same MAC always gets the same profile UUID. */
        static const uuid_t ns = { 0x6d, 0x75, 0x6c, 0x74, 0x69, 0x6e, 0x40, 0x69,
                                   0x83, 0x63, 0x2e, 0x69, 0x6f, 0x2f, 0x6e, 0x6d };
        char name[MAC_STRLEN];
        uuid_t u;

        mac_format(mac, name);
        uuid_generate_sha1(u, ns, name, strlen(name));
        uuid_unparse_lower(u, ret);
}

/* route-table puts NetworkManager's prefix route in the NIC's table rather than main, which is
 * what noprefixroute plus the table route do at runtime. */
int render_keyfile(const ManagedNic *m, char **ret) {
        char uuid[37];
        Render r;
        FILE *f;

        if (render_begin(&r, m) < 0)
                return -ENOMEM;
        f = r.f;
        keyfile_uuid(m->mac, uuid);
        fprintf(f, "[connection]\nid=multinic-%s\nuuid=%s\ntype=ethernet\n"
                   "interface-name=%s\nautoconnect=true\n\n", m->name, uuid, m->name);
        fprintf(f, "[ethernet]\nmac-address=%s\n", r.s.mac);
        if (m->mtu > 0)
                fprintf(f, "mtu=%u\n", m->mtu);
        fprintf(f, "\n[ipv4]\nmethod=manual\naddress1=%s/%u\nnever-default=true\n", r.s.addr,
                m->address.prefixlen);
        if (m->has_route)
                fprintf(f, "route-table=%u\nroute-metric=0\nroute1=%s/%u\n"
                           "route1_options=scope=253,src=%s,table=%u\n",
                        m->route.table, r.s.net, m->route.dst_len, r.s.addr, m->route.table);
        if (m->has_rule)
                fprintf(f, "routing-rule1=priority %u from %s table %u\n", m->rule.priority,
                        r.s.addr, m->rule.table);
        fprintf(f, "\n[ipv6]\nmethod=disabled\n");
        return render_end(&r, ret);
}

/* The guard that keeps VLANs, bridges, bonds and macvlans that share the MAC from matching:
 * Driver=, which udev compares with ethtool's driver name, since systemd v239 (RHEL 8) compares
 * Type= only with udev's DEVTYPE, which NICs lack, while v245 and later take "ether" for it. The
 * stacked devices' drivers ("802.1Q VLAN Support", "bridge", "bonding", "macvlan") differ from
 * any NIC's. Type=ether is the fallback for a NIC whose driver is not known. */
int render_link(const ManagedNic *m, const char *driver, char **ret) {
        Render r;

        if (render_begin(&r, m) < 0)
                return -ENOMEM;
        fprintf(r.f, "[Match]\nMACAddress=%s\n", r.s.mac);
        if (driver && *driver) {
                /* A glob list: a space or a glob character in the name matches itself as "?". */
                fputs("Driver=", r.f);
                for (const char *c = driver; *c; c++)
                        fputc(isalnum((unsigned char) *c) || strchr("_-.:+", *c) ? *c : '?', r.f);
                fputc('\n', r.f);
        } else
                fputs(LINK_FALLBACK_GUARD "\n", r.f);
        fprintf(r.f, "\n[Link]\nName=%s\n", m->name);
        if (m->mtu > 0)
                fprintf(r.f, "MTUBytes=%u\n", m->mtu);
        return render_end(&r, ret);
}

static int nic_driver(const ManagedNic *m, char *ret, size_t n) {
        struct ethtool_drvinfo info = { .cmd = ETHTOOL_GDRVINFO };
        struct ifreq ifr = {};
        _cleanup_(closep) int fd = -1;

        /* The ioctls go through any socket; the unit allows AF_UNIX and AF_NETLINK only. */
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", m->name);
        /* The name may belong to another device by now: only the NIC with the MAC counts. */
        if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
                return negative_errno();
        if (memcmp(ifr.ifr_hwaddr.sa_data, m->mac, 6) != 0)
                return -ENODEV;
        ifr.ifr_data = (void *) &info;
        if (ioctl(fd, SIOCETHTOOL, &ifr) < 0)
                return negative_errno();
        if (!info.driver[0])
                return -ENODATA;
        snprintf(ret, n, "%.*s", (int) sizeof(info.driver), info.driver);
        return 0;
}

void persist_learn_drivers(State *s, const State *before) {
        for (size_t i = 0; i < s->n_nics; i++) {
                ManagedNic *m = &s->nics[i];
                const ManagedNic *old;

                if (nic_driver(m, m->driver, sizeof(m->driver)) >= 0)
                        continue;
                /* Not there now (its port detached, say): what was learned while it was. */
                old = state_find(before, m->mac);
                snprintf(m->driver, sizeof(m->driver), "%s", old ? old->driver : "");
        }
}

int render_sysctl(const State *state, const Config *config, char **ret) {
        const ManagedNic none = {};
        Render r;

        if (render_begin(&r, &none) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < state->n_nics; i++)
                for (size_t k = 0; k < _DEVCONF_MAX; k++)
                        /* The slash form, since an interface name may hold a dot. */
                        fprintf(r.f, "net/ipv4/conf/%s/%s = %d\n", state->nics[i].name,
                                devconf_to_string((Devconf) k), config->devconf[k]);
        return render_end(&r, ret);
}

static int set_add(PersistSet *set, size_t nic, mode_t mode, char *content, const char *dir,
                   const char *prefix, const char *name, const char *suffix) {
        PersistFile *n = realloc(set->files, (set->n_files + 1) * sizeof(*n));

        if (!n) {
                free(content);
                return -ENOMEM;
        }
        set->files = n;
        n = &n[set->n_files++];
        *n = (PersistFile) { .content = content, .mode = mode, .nic = nic };
        snprintf(n->path, sizeof(n->path), "%s/%s%s%s", dir, prefix, name, suffix);
        return 0;
}

static int render_nic(PersistBackend b, const ManagedNic *m, size_t nic, PersistSet *set) {
        char *text = NULL;
        int r;

        if (b == PERSIST_NETPLAN) {
                r = render_netplan(m, &text);
                return r < 0 ? r : set_add(set, nic, 0600, text, NETPLAN_DIR, "90-multinic-",
                                           m->name, ".yaml");
        }
        r = render_keyfile(m, &text);
        if (r >= 0)
                r = set_add(set, nic, 0600, text, KEYFILE_DIR, "multinic-", m->name,
                            ".nmconnection");
        if (r >= 0)
                r = render_link(m, m->driver[0] ? m->driver : NULL, &text);
        if (r >= 0)
                r = set_add(set, nic, 0644, text, LINK_DIR, "10-multinic-", m->name, ".link");
        return r;
}

int persist_render(PersistBackend b, const State *state, const Config *config, PersistSet *ret) {
        PersistSet set = {};
        char *text;
        int r = 0;

        if (b != PERSIST_NONE)
                for (size_t i = 0; r >= 0 && i < state->n_nics; i++)
                        r = render_nic(b, &state->nics[i], i, &set);
        if (r >= 0 && b != PERSIST_NONE && config->sysctls && state->n_nics > 0) {
                r = render_sysctl(state, config, &text);
                if (r >= 0)
                        r = set_add(&set, SIZE_MAX, 0644, text, SYSCTL_DIR, "", "90-multinic",
                                    ".conf");
        }
        if (r < 0) {
                persist_set_done(&set);
                return r;
        }
        *ret = set;
        return 0;
}

static bool has_marker(const char *text) {
        size_t n = strlen(PERSIST_MARKER);

        return strncmp(text, PERSIST_MARKER, n) == 0 && (text[n] == '\n' || text[n] == 0);
}

/* Whether the file at path already is what f asks for: its content, its mode, and the owner a
 * write would give it (the writer, and the group of a setgid directory). NetworkManager ignores a
 * keyfile that another user owns, whatever its content. */
static bool file_is_current(const char *path, const char *dir, const char *old,
                            const PersistFile *f) {
        struct stat st, dst;
        gid_t gid = getegid();

        if (!old || !streq(old, f->content) || stat(path, &st) < 0)
                return false;
        if (stat(dir, &dst) == 0 && (dst.st_mode & S_ISGID))
                gid = dst.st_gid;
        return (st.st_mode & 07777) == f->mode && st.st_uid == geteuid() && st.st_gid == gid;
}

int persist_write(const char *root, const PersistFile *f, char **ret_old, bool *ret_written) {
        _cleanup_(freep) char *path = NULL, *dir = NULL, *old = NULL;
        int r;

        *ret_written = false;
        r = path_join_root(root, f->path, &path);
        if (r < 0)
                return r;
        r = read_file(path, 1 << 20, &old, NULL);
        if (r < 0 && r != -ENOENT)
                return r;
        if (old && !has_marker(old))
                return -EEXIST;
        dir = strndup(path, (size_t) (strrchr(path, '/') - path));
        if (!dir)
                return -ENOMEM;
        /* Already right: leave the file, and its mtime, alone. */
        if (file_is_current(path, dir, old, f))
                goto done;

        r = mkdir_parents(dir, 0755);
        if (r < 0)
                return r;
        r = write_file_atomic(path, f->content, strlen(f->content), f->mode);
        if (r < 0)
                return r;
        *ret_written = true;
done:
        if (ret_old)
                *ret_old = TAKE_PTR(old);
        return 0;
}

int persist_restore(const char *root, const PersistFile *f, const char *old) {
        _cleanup_(freep) char *path = NULL;
        int r;

        r = path_join_root(root, f->path, &path);
        if (r < 0)
                return r;
        if (old)
                return write_file_atomic(path, old, strlen(old), f->mode);
        if (unlink(path) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        /* Else the file may be back after a crash, and the NIC's rollback undone on disk. */
        return fsync_parent(path);
}

static bool set_has(const PersistSet *set, const char *path) {
        for (size_t i = 0; i < set->n_files; i++)
                if (streq(set->files[i].path, path))
                        return true;
        return false;
}

/* Whether the entry name in dir is ours to delete: a marked file named like ours that the set
 * does not hold, or a temporary file of ours. multinicd writes one file at a time and runs once
 * per root (it owns its bus name), so a temporary file seen here is one a crash left. */
static bool is_leftover(const char *full, const char *dir, const char *glob, bool orphans,
                        const char *name, const PersistSet *set) {
        _cleanup_(freep) char *path = NULL, *text = NULL;
        char rel[sizeof(((PersistFile *) NULL)->path)], target[NAME_MAX + 1];

        if (atomic_temp_target(name, target, sizeof(target)))
                return fnmatch(glob, target, 0) == 0;
        if (!orphans || fnmatch(glob, name, 0) != 0 ||
            (size_t) snprintf(rel, sizeof(rel), "%s/%s", dir, name) >= sizeof(rel) ||
            set_has(set, rel) || asprintf(&path, "%s/%s", full, name) < 0)
                return false;
        /* Without the marker it is not ours, and never touched. */
        return read_file(path, 1 << 20, &text, NULL) >= 0 && has_marker(text);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir)

static int remove_leftovers_in(const char *root, const char *dir, const char *glob, bool orphans,
                               const PersistSet *set) {
        _cleanup_(freep) char *full = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        int n = 0;

        if (path_join_root(root, dir, &full) < 0)
                return -ENOMEM;
        d = opendir(full);
        if (!d)
                return errno == ENOENT ? 0 : negative_errno();
        while ((de = readdir(d)))
                if (is_leftover(full, dir, glob, orphans, de->d_name, set) &&
                    unlinkat(dirfd(d), de->d_name, 0) == 0)
                        n++;
        /* Once per directory, so that no deleted file is back after a crash. */
        if (n > 0 && fsync(dirfd(d)) < 0)
                return negative_errno();
        return n;
}

int persist_remove_orphans(const char *root, const PersistSet *set) {
        int n = 0, r;

        for (size_t i = 0; i < ELEMENTSOF(persist_locations); i++) {
                r = remove_leftovers_in(root, persist_locations[i].dir, persist_locations[i].glob,
                                        persist_locations[i].orphans, set);
                if (r < 0)
                        return r;
                n += r;
        }
        return n;
}
