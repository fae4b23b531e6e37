/* Logging of the daemon: structured journal entries, or plain lines on stderr. */
#pragma once

#include <stdint.h>
#include <syslog.h>

#include "util.h"

typedef enum LogTarget {
        LOG_TARGET_AUTO,
        LOG_TARGET_CONSOLE,
        LOG_TARGET_JOURNAL,
} LogTarget;

void log_setup(LogTarget target, int max_level);
int log_target_from_string(const char *s);

/* Logs with INTERFACE= and MAC= when given; returns -|error| so callers can return it. */
int log_link_full(int level, int error, const char *ifname, const uint8_t *mac,
                  const char *fmt, ...) _printf_(5, 6);

/* One line per change made to a NIC, with MULTINIC_ACTION= for filtering. */
void log_change(const char *ifname, const uint8_t *mac, const char *action, const char *detail);
/* One line per change undone in a rollback: MULTINIC_ACTION=undo-<action>. */
void log_undo(const char *ifname, const uint8_t *mac, const char *action, const char *detail);

/* One line per field a reconcile found changed behind multinicd's back, with
 * MULTINIC_DRIFT_FIELD=, MULTINIC_WANTED= and MULTINIC_FOUND=. */
void log_drift(const char *ifname, const uint8_t *mac, const char *field, const char *wanted,
               const char *found);

/* One line per D-Bus call that may change the host: who asked, how it was authorized ("root",
 * "polkit-allowed", "polkit-denied", ...), and what came of it. */
void log_call(const char *method, uint32_t uid, uint32_t pid, const char *authorization,
              const char *outcome);

#define log_info(...) log_link_full(LOG_INFO, 0, NULL, NULL, __VA_ARGS__)
#define log_debug(...) log_link_full(LOG_DEBUG, 0, NULL, NULL, __VA_ARGS__)
#define log_warning(...) log_link_full(LOG_WARNING, 0, NULL, NULL, __VA_ARGS__)
#define log_error_errno(r, ...) log_link_full(LOG_ERR, r, NULL, NULL, __VA_ARGS__)
#define log_warning_errno(r, ...) log_link_full(LOG_WARNING, r, NULL, NULL, __VA_ARGS__)
#define log_link_info(ifname, mac, ...) log_link_full(LOG_INFO, 0, ifname, mac, __VA_ARGS__)
#define log_link_warning_errno(ifname, mac, r, ...)                                                \
        log_link_full(LOG_WARNING, r, ifname, mac, __VA_ARGS__)
