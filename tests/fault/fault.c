/* LD_PRELOAD shim for the tests: kernel answers that this kernel would not give, chosen by
 * environment variables, so that multinicd's handling of them runs on any kernel.
 *   MULTINIC_FAULT_RENAME_EBUSY=1   renaming a link that is up fails with EBUSY, as kernels
 *                                   before 6.4 answer
 *   MULTINIC_FAULT_ADDR_ADD=A.B.C.D adding that IPv4 address fails with ENOSPC
 *   MULTINIC_FAULT_KILL_AT_ADDR_ADD=A.B.C.D
 *                                   the process is killed (SIGKILL) just before it adds that
 *                                   address: a daemon that dies half-way through an Apply
 *   MULTINIC_FAULT_STATE_SAVE_DELAY_MS=N
 *                                   every write of the managed state file waits N ms before
 *                                   its rename: a window in which to kill the daemon */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <net/if.h>
#include <signal.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

int rtnl_link_change(struct nl_sock *sk, struct rtnl_link *orig, struct rtnl_link *changes,
                     int flags);
int rtnl_addr_add(struct nl_sock *sk, struct rtnl_addr *addr, int flags);

static bool link_is_up(int ifindex) {
        struct ifreq ifr = {};
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        bool up = false;

        if (fd < 0)
                return false;
        if (if_indextoname((unsigned) ifindex, ifr.ifr_name) &&
            ioctl(fd, SIOCGIFFLAGS, &ifr) == 0)
                up = ifr.ifr_flags & IFF_UP;
        close(fd);
        return up;
}

int rtnl_link_change(struct nl_sock *sk, struct rtnl_link *orig, struct rtnl_link *changes,
                     int flags) {
        static int (*real)(struct nl_sock *, struct rtnl_link *, struct rtnl_link *, int);

        if (!real)
                real = (int (*)(struct nl_sock *, struct rtnl_link *, struct rtnl_link *, int))
                        dlsym(RTLD_NEXT, "rtnl_link_change");
        if (getenv("MULTINIC_FAULT_RENAME_EBUSY") && rtnl_link_get_name(changes) &&
            link_is_up(rtnl_link_get_ifindex(orig))) {
                fprintf(stderr, "fault: refusing to rename up link %d\n",
                        rtnl_link_get_ifindex(orig));
                return -NLE_BUSY;
        }
        return real(sk, orig, changes, flags);
}

int rtnl_addr_add(struct nl_sock *sk, struct rtnl_addr *addr, int flags) {
        static int (*real)(struct nl_sock *, struct rtnl_addr *, int);
        const char *fail = getenv("MULTINIC_FAULT_ADDR_ADD");
        const char *die_at = getenv("MULTINIC_FAULT_KILL_AT_ADDR_ADD");
        char buf[INET_ADDRSTRLEN] = "";
        struct nl_addr *local = rtnl_addr_get_local(addr);

        if (!real)
                real = (int (*)(struct nl_sock *, struct rtnl_addr *, int)) dlsym(RTLD_NEXT,
                                                                                "rtnl_addr_add");
        if (local && nl_addr_get_len(local) == 4)
                inet_ntop(AF_INET, nl_addr_get_binary_addr(local), buf, sizeof(buf));
        if (die_at && strcmp(die_at, buf) == 0) {
                fprintf(stderr, "fault: killed before adding address %s\n", buf);
                raise(SIGKILL);
        }
        if (fail && strcmp(fail, buf) == 0) {
                fprintf(stderr, "fault: refusing to add address %s\n", buf);
                return -NLE_NOMEM;
        }
        return real(sk, addr, flags);
}

int rename(const char *from, const char *to) {
        static int (*real)(const char *, const char *);
        const char *delay = getenv("MULTINIC_FAULT_STATE_SAVE_DELAY_MS");
        size_t n = strlen(to);

        if (!real)
                real = (int (*)(const char *, const char *)) dlsym(RTLD_NEXT, "rename");
        if (delay && n >= 11 && strcmp(to + n - 11, "/state.json") == 0) {
                long ms = strtol(delay, NULL, 10);
                struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

                fprintf(stderr, "fault: holding the state file back for %ld ms\n", ms);
                nanosleep(&ts, NULL);
        }
        return real(from, to);
}
