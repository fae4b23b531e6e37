/* LD_PRELOAD shim for the tests: the kernel's EBUSY to renaming a link that is up, as kernels
 * before 6.4 answer, so that multinicd's down-rename-up path runs on any kernel. */
#include <dlfcn.h>
#include <net/if.h>
#include <stdbool.h>
#include <netlink/route/link.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

int rtnl_link_change(struct nl_sock *sk, struct rtnl_link *orig, struct rtnl_link *changes,
                     int flags);

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
        if (rtnl_link_get_name(changes) && link_is_up(rtnl_link_get_ifindex(orig))) {
                fprintf(stderr, "rename-ebusy: refusing to rename up link %d\n",
                        rtnl_link_get_ifindex(orig));
                return -NLE_BUSY;
        }
        return real(sk, orig, changes, flags);
}
