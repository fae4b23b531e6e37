/* multinic-bridge: watches the node's MultiNicNodeConfig and hands it to multinicd. */
#include <curl/curl.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "agent-bus.h"
#include "bridge.h"
#include "config.h"
#include "log.h"

#define OWNER_CHANGED_MATCH                                                                        \
        "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"               \
        "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" AGENT_BUS_NAME "'"

typedef struct Args {
        uint16_t port;
        unsigned resync_seconds, watch_timeout_seconds;
        unsigned retry_first_ms, retry_cap_ms;
} Args;

static void help(void) {
        printf("Usage: multinic-bridge [OPTIONS]\n\n"
               "Watches this node's MultiNicNodeConfig and applies it through multinicd.\n"
               "In a pod everything comes from the service account and NODE_NAME.\n\n"
               "  -h --help                  Show this help\n"
               "     --version               Show the version\n"
               "     --api-url=URL           Kubernetes API (https://$KUBERNETES_SERVICE_HOST:\n"
               "                             $KUBERNETES_SERVICE_PORT)\n"
               "     --token-file=FILE       Bearer token, read again for every request\n"
               "     --ca-file=FILE          CA bundle the API's certificate must chain to\n"
               "     --namespace=NS          Namespace of the object (the service account's)\n"
               "     --node-name=NAME        This node, the object's name ($NODE_NAME)\n"
               "     --port=PORT             /metrics, /healthz and /readyz (9464; 0: none)\n"
               "     --resync=SECONDS        Apply again this often, in case (300)\n"
               "     --watch-timeout=SECONDS Length of one watch request (300)\n"
               "     --retry-backoff=FIRST,CAP\n"
               "                             Seconds before the first retry of a failed apply,\n"
               "                             doubling up to CAP (0.5,60)\n"
               "     --debug                 Log at debug level\n");
}

static int parse_unsigned(const char *s, unsigned max, unsigned *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v > max || s[0] == '-')
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

/* Seconds with up to three decimals, 0.001 up to a day, as milliseconds. */
static int parse_ms(const char *s, const char **ret_end, unsigned *ret) {
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno || end == s || !(v >= 0.001 && v <= 86400) || s[0] == '-' || s[0] == '+' ||
            s[0] == ' ')
                return -EINVAL;
        *ret = (unsigned) (v * 1000 + 0.5);
        *ret_end = end;
        return 0;
}

/* FIRST,CAP in seconds, FIRST no more than CAP. */
static int parse_backoff(const char *s, Args *a) {
        const char *end;

        if (parse_ms(s, &end, &a->retry_first_ms) < 0 || *end != ',' ||
            parse_ms(end + 1, &end, &a->retry_cap_ms) < 0 || *end ||
            a->retry_first_ms > a->retry_cap_ms)
                return -EINVAL;
        return 0;
}

enum {
        ARG_VERSION = 0x100,
        ARG_API,
        ARG_TOKEN,
        ARG_CA,
        ARG_NS,
        ARG_NODE,
        ARG_PORT,
        ARG_RESYNC,
        ARG_WATCH,
        ARG_BACKOFF,
        ARG_DEBUG,
};

/* The configuration's string that the option sets, or NULL for an option of another kind. */
static char **config_field(KubeConfig *k, int c) {
        switch (c) {
        case ARG_API:
                return &k->api_url;
        case ARG_TOKEN:
                return &k->token_file;
        case ARG_CA:
                return &k->ca_file;
        case ARG_NS:
                return &k->namespace;
        case ARG_NODE:
                return &k->node_name;
        default:
                return NULL;
        }
}

/* The value of a numeric option, checked: 0, or -EINVAL. */
static int parse_value(int c, const char *value, Args *a) {
        unsigned port;

        switch (c) {
        case ARG_PORT:
                if (parse_unsigned(value, 65535, &port) < 0)
                        return -EINVAL;
                a->port = (uint16_t) port;
                return 0;
        case ARG_RESYNC:
                return parse_unsigned(value, 86400, &a->resync_seconds);
        case ARG_WATCH:
                /* Not 0 (the server's choice): a silent watch is judged by its length. */
                if (parse_unsigned(value, 3600, &a->watch_timeout_seconds) < 0 ||
                    a->watch_timeout_seconds == 0)
                        return -EINVAL;
                return 0;
        case ARG_BACKOFF:
                return parse_backoff(value, a);
        default:
                return -EINVAL;
        }
}

/* One option as getopt_long returned it: 1 to go on, 0 to exit successfully (--help,
 * --version), or a negative errno once the usage error is logged, as a JSON line like any
 * other rather than getopt's plain text. */
static int parse_option(int c, char *argv[], KubeConfig *k, Args *a) {
        const char *option = argv[optind - 1];
        char **field = config_field(k, c);

        if (field) {
                free(*field);
                *field = strdup(optarg);
                return *field ? 1 : blog(BLOG_ERROR, ENOMEM, "Out of memory", NULL);
        }
        switch (c) {
        case 'h':
                help();
                return 0;
        case ARG_VERSION:
                printf("multinic-bridge %s\n", PACKAGE_VERSION);
                return 0;
        case ARG_DEBUG:
                blog_set_level(BLOG_DEBUG);
                return 1;
        case ARG_PORT:
        case ARG_RESYNC:
        case ARG_WATCH:
        case ARG_BACKOFF:
                if (parse_value(c, optarg, a) < 0)
                        return blog(BLOG_ERROR, EINVAL, "Invalid option value", "option", option,
                                    NULL);
                return 1;
        case ':':
                return blog(BLOG_ERROR, EINVAL, "Option needs a value", "option", option, NULL);
        default:
                return blog(BLOG_ERROR, EINVAL, "Unknown option; see --help", "option", option,
                            NULL);
        }
}

/* 1 to run, 0 to exit successfully, or a negative errno after a usage error. */
static int parse_argv(int argc, char *argv[], KubeConfig *k, Args *a) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "api-url", required_argument, NULL, ARG_API },
                { "token-file", required_argument, NULL, ARG_TOKEN },
                { "ca-file", required_argument, NULL, ARG_CA },
                { "namespace", required_argument, NULL, ARG_NS },
                { "node-name", required_argument, NULL, ARG_NODE },
                { "port", required_argument, NULL, ARG_PORT },
                { "resync", required_argument, NULL, ARG_RESYNC },
                { "watch-timeout", required_argument, NULL, ARG_WATCH },
                { "retry-backoff", required_argument, NULL, ARG_BACKOFF },
                { "debug", no_argument, NULL, ARG_DEBUG },
                {},
        };
        int c, r;

        *a = (Args) { .port = 9464, .resync_seconds = 300, .watch_timeout_seconds = 300,
                      .retry_first_ms = 500, .retry_cap_ms = 60000 };
        opterr = 0; /* parse_option logs usage errors itself */
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                r = parse_option(c, argv, k, a);
                if (r <= 0)
                        return r;
        }
        if (optind < argc)
                return blog(BLOG_ERROR, EINVAL, "Unexpected argument; see --help", "argument",
                            argv[optind], NULL);
        return 1;
}

static int on_watch_msg(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Bridge *b = userdata;
        WatchMsg *m;

        while (read(fd, &m, sizeof(m)) == sizeof(m)) {
                bridge_set_object(b, m->object);
                free(m);
        }
        return 0;
}

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Bridge *b = userdata;
        const char *name, *old_owner, *new_owner;

        /* The match names multinicd already; the name is checked again in case the bus did not
         * filter, and losing its owner alone leaves nothing to apply to. */
        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 ||
            !streq(name, AGENT_BUS_NAME) || !*new_owner)
                return 0;
        /* multinicd (re)started: what it manages may have been lost with a reboot. */
        blog(BLOG_INFO, 0, "multinicd appeared on the bus; applying again", "owner", new_owner,
             NULL);
        /* At once: a retry pending since multinicd was away would only wait for nothing. */
        bridge_retry_cancel(b);
        b->force = true;
        bridge_reconcile(b);
        return 0;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        bridge_refresh_status(userdata);
        return 0;
}

static int on_resync(sd_event_source *s, uint64_t usec, void *userdata) {
        Bridge *b = userdata;

        b->force = true;
        bridge_reconcile(b);
        return sd_event_source_set_time_relative(s, b->resync_usec) < 0
                       ? 0
                       : sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

/* What the watcher sent after the loop stopped listening. */
static void drain(int fd) {
        WatchMsg *m;

        while (read(fd, &m, sizeof(m)) == sizeof(m)) {
                cJSON_Delete(m->object);
                free(m);
        }
}

static int setup_bus(Bridge *b) {
        int r;

        r = sd_bus_open_system(&b->bus);
        if (r < 0)
                return blog(BLOG_ERROR, r, "Cannot connect to the system bus", NULL);
        /* A pod whose bus is gone is of no use: end, and let the kubelet start it again. */
        r = sd_bus_set_exit_on_disconnect(b->bus, true);
        if (r >= 0)
                r = sd_bus_attach_event(b->bus, b->event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                /* Only multinicd's name: every client that connects gets a name of its own. */
                r = sd_bus_add_match(b->bus, NULL, OWNER_CHANGED_MATCH, on_owner_changed, b);
        if (r >= 0)
                r = sd_bus_match_signal(b->bus, NULL, AGENT_BUS_NAME, AGENT_OBJECT_PATH,
                                        "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                        on_properties_changed, b);
        return r < 0 ? blog(BLOG_ERROR, r, "Cannot watch multinicd on the bus", NULL) : 0;
}

static int setup_watcher(Bridge *b, const Args *a, int *ret_fd) {
        int fds[2];
        int r;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        (void) fcntl(fds[0], F_SETFL, O_NONBLOCK);
        r = sd_event_add_io(b->event, NULL, fds[0], EPOLLIN, on_watch_msg, b);
        if (r < 0)
                return r;
        b->watcher = (Watcher) { .kube = &b->kube, .metrics = &b->metrics, .fd = fds[1],
                                 .timeout_seconds = a->watch_timeout_seconds };
        *ret_fd = fds[0];
        return watcher_start(&b->watcher);
}

static int run(Bridge *b, const Args *a) {
        char err[256] = "";
        sigset_t mask;
        int r, rfd = -1;

        b->retry_first_ms = a->retry_first_ms;
        b->retry_cap_ms = a->retry_cap_ms;
        r = kube_config_complete(&b->kube, err, sizeof(err));
        if (r < 0)
                return blog(BLOG_ERROR, r, "Unusable configuration", "detail", err, NULL);
        r = sd_event_default(&b->event);
        if (r < 0)
                return r;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) sd_event_add_signal(b->event, NULL, SIGTERM, NULL, NULL);
        (void) sd_event_add_signal(b->event, NULL, SIGINT, NULL, NULL);
        r = setup_bus(b);
        if (r < 0)
                return r;
        if (metrics_serve(&b->metrics, a->port) < 0)
                return blog(BLOG_ERROR, EADDRINUSE, "Cannot serve /metrics", NULL);
        if (a->resync_seconds > 0) {
                b->resync_usec = (uint64_t) a->resync_seconds * 1000000ULL;
                (void) sd_event_add_time_relative(b->event, NULL, CLOCK_MONOTONIC, b->resync_usec,
                                                  0, on_resync, b);
        }
        r = setup_watcher(b, a, &rfd);
        if (r < 0)
                return blog(BLOG_ERROR, r, "Cannot start watching", NULL);
        blog(BLOG_INFO, 0, "Watching", "api", b->kube.api_url, "namespace", b->kube.namespace,
             "node", b->kube.node_name, NULL);
        r = sd_event_loop(b->event);
        watcher_stop(&b->watcher);
        close(b->watcher.fd);
        drain(rfd);
        close(rfd);
        if (r > 0)
                return blog(BLOG_ERROR, ENOTCONN, "Lost the system bus; exiting", NULL);
        return r;
}

int main(int argc, char *argv[]) {
        /* Drift that multinicd found before the bridge started was told by the bridge before. */
        Bridge b = { .done_generation = -1, .drift_seen_usec = clock_usec(CLOCK_REALTIME) };
        Args a;
        int r;

        srandom((unsigned) time(NULL) ^ (unsigned) getpid());
        metrics_init(&b.metrics);
        r = parse_argv(argc, argv, &b.kube, &a);
        if (r > 0) {
                curl_global_init(CURL_GLOBAL_DEFAULT);
                r = run(&b, &a);
                curl_global_cleanup();
                if (r >= 0)
                        blog(BLOG_INFO, 0, "Stopped", NULL);
        }
        cJSON_Delete(b.object);
        sd_event_source_unref(b.retry);
        sd_bus_flush_close_unref(b.bus);
        sd_event_unref(b.event);
        metrics_done(&b.metrics);
        kube_config_done(&b.kube);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
