/* Journal or console logging with the per-interface fields operators filter on. */
#include <stdarg.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "log.h"
#include "spec.h"

static LogTarget log_target = LOG_TARGET_CONSOLE;
static int log_max_level = LOG_INFO;

void log_setup(LogTarget target, int max_level) {
        if (target == LOG_TARGET_AUTO)
                target = getenv("JOURNAL_STREAM") ? LOG_TARGET_JOURNAL : LOG_TARGET_CONSOLE;
        log_target = target;
        log_max_level = max_level;
}

int log_target_from_string(const char *s) {
        if (streq(s, "auto"))
                return LOG_TARGET_AUTO;
        if (streq(s, "console"))
                return LOG_TARGET_CONSOLE;
        if (streq(s, "journal"))
                return LOG_TARGET_JOURNAL;
        return -EINVAL;
}

/* A journal entry with INTERFACE=, MAC= and ERRNO= only where they say something. */
static void journal_send(int level, int error, const char *ifname, const char *mac,
                         const char *msg) {
        char message[1200], priority[32], interface[64], macfield[32], errnofield[32];
        struct iovec iov[5];
        size_t n = 0;

        snprintf(message, sizeof(message), "MESSAGE=%s%s%s", ifname ? ifname : "",
                 ifname ? ": " : "", msg);
        iov[n++] = (struct iovec) { message, strlen(message) };
        snprintf(priority, sizeof(priority), "PRIORITY=%i", level);
        iov[n++] = (struct iovec) { priority, strlen(priority) };
        if (ifname) {
                snprintf(interface, sizeof(interface), "INTERFACE=%s", ifname);
                iov[n++] = (struct iovec) { interface, strlen(interface) };
        }
        if (mac) {
                snprintf(macfield, sizeof(macfield), "MAC=%s", mac);
                iov[n++] = (struct iovec) { macfield, strlen(macfield) };
        }
        if (error > 0) {
                snprintf(errnofield, sizeof(errnofield), "ERRNO=%i", error);
                iov[n++] = (struct iovec) { errnofield, strlen(errnofield) };
        }
        (void) sd_journal_sendv(iov, (int) n);
}

int log_link_full(int level, int error, const char *ifname, const uint8_t *mac,
                  const char *fmt, ...) {
        char msg[1024], macbuf[MAC_STRLEN] = "";
        int saved = errno;
        va_list ap;

        error = error < 0 ? -error : error;
        if (level > log_max_level)
                return -error;

        errno = error; /* lets %m in fmt print the error */
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        errno = saved;
        if (mac)
                mac_format(mac, macbuf);

        if (log_target == LOG_TARGET_JOURNAL)
                journal_send(level, error, ifname, mac ? macbuf : NULL, msg);
        else
                fprintf(stderr, "multinicd: %s%s%s\n", ifname ? ifname : "", ifname ? ": " : "",
                        msg);
        return -error;
}

void log_call(const char *method, uint32_t uid, uint32_t pid, const char *authorization,
              const char *outcome) {
        if (log_target == LOG_TARGET_JOURNAL)
                sd_journal_send("MESSAGE=%s called by uid %u pid %u, authorization %s: %s", method,
                                uid, pid, authorization, outcome, "PRIORITY=%i", LOG_INFO,
                                "MULTINIC_METHOD=%s", method, "MULTINIC_CALLER_UID=%u", uid,
                                "MULTINIC_CALLER_PID=%u", pid, "MULTINIC_AUTHORIZATION=%s",
                                authorization, "MULTINIC_OUTCOME=%s", outcome, NULL);
        else
                fprintf(stderr, "multinicd: %s called by uid %u pid %u, authorization %s: %s\n",
                        method, uid, pid, authorization, outcome);
}

void log_change(const char *ifname, const uint8_t *mac, const char *action, const char *detail) {
        char macbuf[MAC_STRLEN];

        if (LOG_INFO > log_max_level)
                return;
        mac_format(mac, macbuf);
        if (log_target == LOG_TARGET_JOURNAL)
                sd_journal_send("MESSAGE=%s: %s", ifname, detail, "PRIORITY=%i", LOG_INFO,
                                "INTERFACE=%s", ifname, "MAC=%s", macbuf, "MULTINIC_ACTION=%s",
                                action, NULL);
        else
                fprintf(stderr, "multinicd: %s: %s\n", ifname, detail);
}

void log_drift(const char *ifname, const uint8_t *mac, const char *field, const char *wanted,
               const char *found) {
        char macbuf[MAC_STRLEN];

        if (LOG_WARNING > log_max_level)
                return;
        mac_format(mac, macbuf);
        if (log_target == LOG_TARGET_JOURNAL)
                sd_journal_send("MESSAGE=%s: %s changed behind multinicd's back: %s, wanted %s; "
                                "healed", ifname, field, found, wanted,
                                "PRIORITY=%i", LOG_WARNING, "INTERFACE=%s", ifname, "MAC=%s",
                                macbuf, "MULTINIC_DRIFT_FIELD=%s", field,
                                "MULTINIC_WANTED=%s", wanted, "MULTINIC_FOUND=%s", found,
                                NULL);
        else
                fprintf(stderr, "multinicd: %s: %s changed behind multinicd's back: %s, wanted %s; "
                        "healed\n", ifname, field, found, wanted);
}

void log_undo(const char *ifname, const uint8_t *mac, const char *action, const char *detail) {
        char name[64], text[200];

        snprintf(name, sizeof(name), "undo-%s", action);
        snprintf(text, sizeof(text), "undid '%s'", detail);
        log_change(ifname, mac, name, text);
}
