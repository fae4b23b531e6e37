/* rtnetlink and udev events, debounced into reconciles on the event loop. */
#include <libudev.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <unistd.h>

#include "log.h"
#include "monitor.h"
#include "netlink.h"

/* A burst of events (a rename is several) ends after DEBOUNCE_USEC without one. A burst that
 * does not end is cut DEBOUNCE_MAX_USEC after its first event, so that a steady stream of events
 * still gets its reconciles, well within the second the contract asks for. */
#define DEBOUNCE_USEC (50ULL * 1000ULL)
#define DEBOUNCE_MAX_USEC (250ULL * 1000ULL)
/* sd-event's default accuracy (250 ms) would swamp both. */
#define DEBOUNCE_ACCURACY_USEC (1ULL * 1000ULL)

struct Monitor {
        struct nl_sock *nl;
        struct udev *udev;
        struct udev_monitor *udev_monitor;
        sd_event_source *nl_source, *udev_source, *timer, *periodic;
        uint64_t burst_start; /* CLOCK_MONOTONIC, the first event of the pending burst */
};

static int on_debounced(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) manager_reconcile(m);
        manager_emit_changed(m);
        manager_save_state(m);
        return 0;
}

static void schedule(Manager *m) {
        Monitor *mon = m->monitor;
        int enabled = SD_EVENT_OFF;
        uint64_t now, at;

        if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
                now = clock_usec(CLOCK_MONOTONIC);
        if (!mon->timer || sd_event_source_get_enabled(mon->timer, &enabled) < 0 ||
            enabled == SD_EVENT_OFF)
                mon->burst_start = now;
        at = now + DEBOUNCE_USEC;
        if (at > mon->burst_start + DEBOUNCE_MAX_USEC)
                at = mon->burst_start + DEBOUNCE_MAX_USEC;
        if (mon->timer) {
                (void) sd_event_source_set_time(mon->timer, at);
                (void) sd_event_source_set_enabled(mon->timer, SD_EVENT_ONESHOT);
                return;
        }
        (void) sd_event_add_time(m->event, &mon->timer, CLOCK_MONOTONIC, at,
                                 DEBOUNCE_ACCURACY_USEC, on_debounced, m);
}

static int ignore_msg(struct nl_msg *msg, void *userdata) {
        return NL_OK;
}

static int on_netlink(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        int r;

        /* The messages only say that something changed; the reconcile reads the kernel anew. */
        do
                r = nl_recvmsgs_default(m->monitor->nl);
        while (r >= 0);
        if (r != -NLE_AGAIN)
                /* Lost events (ENOBUFS) are no loss here: the reconcile looks at everything. */
                log_debug("Reading rtnetlink events: %s", nl_geterror(r));
        schedule(m);
        return 0;
}

static int on_udev(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        struct udev_device *d;

        while ((d = udev_monitor_receive_device(m->monitor->udev_monitor)))
                udev_device_unref(d);
        schedule(m);
        return 0;
}

static int start_netlink(Manager *m) {
        Monitor *mon = m->monitor;
        int r;

        mon->nl = nl_socket_alloc();
        if (!mon->nl)
                return -ENOMEM;
        nl_socket_disable_seq_check(mon->nl);
        nl_socket_modify_cb(mon->nl, NL_CB_VALID, NL_CB_CUSTOM, ignore_msg, NULL);
        r = nl_connect(mon->nl, NETLINK_ROUTE);
        if (r >= 0)
                r = nl_socket_add_memberships(mon->nl, RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR,
                                              RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV4_RULE,
                                              RTNLGRP_IPV4_NETCONF, 0);
        if (r >= 0)
                r = nl_socket_set_nonblocking(mon->nl);
        if (r < 0)
                return netlink_errno(r);
        (void) nl_socket_set_buffer_size(mon->nl, 1 << 20, 0);
        return sd_event_add_io(m->event, &mon->nl_source, nl_socket_get_fd(mon->nl), EPOLLIN,
                               on_netlink, m);
}

/* Only where udevd runs: in containers and tests the netlink event alone says a NIC is there. */
static int start_udev(Manager *m) {
        Monitor *mon = m->monitor;
        int r;

        if (access("/run/udev/control", F_OK) < 0)
                return 0;
        mon->udev = udev_new();
        if (!mon->udev)
                return -ENOMEM;
        mon->udev_monitor = udev_monitor_new_from_netlink(mon->udev, "udev");
        if (!mon->udev_monitor)
                return -ENOMEM;
        r = udev_monitor_filter_add_match_subsystem_devtype(mon->udev_monitor, "net", NULL);
        if (r >= 0)
                r = udev_monitor_enable_receiving(mon->udev_monitor);
        if (r < 0)
                return r;
        return sd_event_add_io(m->event, &mon->udev_source,
                               udev_monitor_get_fd(mon->udev_monitor), EPOLLIN, on_udev, m);
}

/* Some drift sends no event (arp_ignore, arp_announce): look now and then. */
static int on_periodic(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        schedule(m);
        (void) sd_event_source_set_time_relative(s,
                                                 (uint64_t) m->config.check_interval * 1000000ULL);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

int monitor_start(Manager *m) {
        int r;

        m->monitor = calloc(1, sizeof(Monitor));
        if (!m->monitor)
                return -ENOMEM;
        r = start_netlink(m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch rtnetlink: %m");
        r = start_udev(m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch udev: %m");
        r = sd_event_add_time_relative(m->event, &m->monitor->periodic, CLOCK_MONOTONIC,
                                       (uint64_t) m->config.check_interval * 1000000ULL, 0,
                                       on_periodic, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the periodic check: %m");
        /* Whatever changed while multinicd was not running. */
        schedule(m);
        return 0;
}

void monitor_stop(Manager *m) {
        Monitor *mon = m->monitor;

        if (!mon)
                return;
        sd_event_source_disable_unref(mon->timer);
        sd_event_source_disable_unref(mon->periodic);
        sd_event_source_disable_unref(mon->nl_source);
        sd_event_source_disable_unref(mon->udev_source);
        if (mon->nl)
                nl_socket_free(mon->nl);
        udev_monitor_unref(mon->udev_monitor);
        udev_unref(mon->udev);
        free(mon);
        m->monitor = NULL;
}

void monitor_mark_udev_pending(Manager *m, Snapshot *s) {
        struct udev *udev = m->monitor ? m->monitor->udev : NULL;

        for (size_t i = 0; udev && i < s->n_links; i++) {
                LinkInfo *l = &s->links[i];
                struct udev_device *d;

                if (!l->physical_like)
                        continue;
                d = udev_device_new_from_subsystem_sysname(udev, "net", l->name);
                l->udev_pending = d && !udev_device_get_is_initialized(d);
                udev_device_unref(d);
        }
}
