/* Watching the kernel and udev for changes that call for a reconcile. */
#pragma once

#include "manager.h"

/* Subscribes to rtnetlink's link, IPv4 address, route, rule and netconf groups, and to udev's
 * net events when udev runs; each burst of events leads to one manager_reconcile(). */
int monitor_start(Manager *m);
void monitor_stop(Manager *m);

/* Marks links that udev has not finished with, so that they count as not there yet. */
void monitor_mark_udev_pending(Manager *m, Snapshot *s);
