/* multinicd: configures a node's secondary NICs on request over D-Bus. */
#include <getopt.h>
#include <signal.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "fileio.h"
#include "log.h"
#include "manager-bus.h"
#include "manager.h"
#include "monitor.h"
#include "persist.h"

#define CONFIG_FILE "/etc/multinic/multinicd.conf"

typedef struct Options {
        const char *root;
        const char *config_file; /* NULL: <root>/etc/multinic/multinicd.conf if it exists */
        LogTarget log_target;
        int persistence; /* PersistBackend, PERSIST_AUTO: from os-release */
        Config config;
} Options;

static void help(void) {
        printf("Usage: multinicd [OPTIONS]\n\n"
               "Configures a node's secondary NICs on request over D-Bus (io.multinic.Agent1).\n\n"
               "  -h --help                  Show this help\n"
               "     --version               Show the version\n"
               "     --root=DIR              Prefix of every file path read or written (/)\n"
               "     --config=FILE           Configuration file (<root>" CONFIG_FILE ")\n"
               "     --table-base=N          Routing table of NIC id 0; id i uses N+i (100)\n"
               "     --priority-base=N       Rule priority of NIC id 0; id i uses N+i (1000)\n"
               "     --policy-routing=BOOL   Source-based policy routing (yes)\n"
               "     --sysctls=BOOL          Per-NIC arp_ignore, arp_announce, rp_filter (yes)\n"
               "     --persistence=BACKEND   auto, netplan, networkmanager or none (auto)\n"
               "     --check-interval=SECONDS Look for drift no event reports this often (60)\n"
               "     --log-target=TARGET     auto, console or journal (auto)\n");
}

static int parse_bool(const char *s) {
        if (streq(s, "yes") || streq(s, "true") || streq(s, "1") || streq(s, "on"))
                return 1;
        if (streq(s, "no") || streq(s, "false") || streq(s, "0") || streq(s, "off"))
                return 0;
        return -EINVAL;
}

static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max || s[0] == '-')
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}

/* One setting, from the command line or the configuration file. */
static int config_set(Options *o, const char *key, const char *value) {
        Config *c = &o->config;
        bool *flag;
        int b;

        if (streq(key, "persistence") || streq(key, "Persistence")) {
                b = persist_backend_from_string(value);
                if (b == -EINVAL)
                        return b;
                o->persistence = b;
                return 0;
        }
        /* Table 0 is no table; rule priority 0 is the local table's rule, and every NIC's
         * rule must come before the main table's at 32766. */
        if (streq(key, "table-base") || streq(key, "TableBase"))
                return parse_u32(value, 1, 0xF0000000U, &c->table_base);
        if (streq(key, "priority-base") || streq(key, "RulePriorityBase"))
                return parse_u32(value, 1, 32765 - SPEC_ID_MAX, &c->priority_base);
        if (streq(key, "check-interval") || streq(key, "CheckInterval"))
                return parse_u32(value, 1, 86400, &c->check_interval);
        if (streq(key, "policy-routing") || streq(key, "PolicyRouting"))
                flag = &c->policy_routing;
        else if (streq(key, "sysctls") || streq(key, "Sysctls"))
                flag = &c->sysctls;
        else
                return -ENOENT;
        b = parse_bool(value);
        if (b < 0)
                return b;
        *flag = b;
        return 0;
}

static char *strip(char *s) {
        char *e;

        while (*s == ' ' || *s == '\t')
                s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
                *--e = 0;
        return s;
}

/* Key=Value lines; '#' and ';' start comments; a [Section] header is accepted and ignored. */
static int config_load(const char *path, bool must_exist, Options *o) {
        _cleanup_(fclosep) FILE *f = fopen(path, "re");
        char line[512];
        unsigned n = 0;
        int r;

        if (!f)
                return errno == ENOENT && !must_exist
                               ? 0
                               : log_error_errno(errno, "Cannot read %s: %m", path);
        while (fgets(line, sizeof(line), f)) {
                char *s, *eq;

                n++;
                if (!strchr(line, '\n') && !feof(f))
                        return log_error_errno(E2BIG, "%s:%u: line longer than %zu bytes", path, n,
                                               sizeof(line) - 2);
                s = strip(line);
                if (!*s || *s == '#' || *s == ';' || *s == '[')
                        continue;
                eq = strchr(s, '=');
                if (!eq) {
                        log_warning("%s:%u: not Key=Value, ignoring", path, n);
                        continue;
                }
                *eq = 0;
                r = config_set(o, strip(s), strip(eq + 1));
                if (r == -ENOENT)
                        return log_error_errno(EINVAL, "%s:%u: unknown setting %s", path, n,
                                               strip(s));
                if (r < 0)
                        return log_error_errno(EINVAL, "%s:%u: invalid setting %s: '%s'", path, n,
                                               strip(s), strip(eq + 1));
        }
        return 0;
}

#define SETTINGS_MAX 16

typedef struct Setting {
        const char *key, *value;
} Setting;

static int parse_argv(int argc, char *argv[], Options *o, Setting *settings, size_t *n_settings) {
        enum { ARG_VERSION = 0x100, ARG_ROOT, ARG_CONFIG, ARG_LOG_TARGET, ARG_SETTING };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "root", required_argument, NULL, ARG_ROOT },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "log-target", required_argument, NULL, ARG_LOG_TARGET },
                { "table-base", required_argument, NULL, ARG_SETTING },
                { "priority-base", required_argument, NULL, ARG_SETTING },
                { "policy-routing", required_argument, NULL, ARG_SETTING },
                { "sysctls", required_argument, NULL, ARG_SETTING },
                { "persistence", required_argument, NULL, ARG_SETTING },
                { "check-interval", required_argument, NULL, ARG_SETTING },
                {},
        };
        int c, idx, t;

        while ((c = getopt_long(argc, argv, "h", options, &idx)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("multinicd %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_ROOT:
                        o->root = optarg;
                        break;
                case ARG_CONFIG:
                        o->config_file = optarg;
                        break;
                case ARG_LOG_TARGET:
                        t = log_target_from_string(optarg);
                        if (t < 0)
                                return log_error_errno(EINVAL, "Invalid --log-target: %s", optarg);
                        o->log_target = (LogTarget) t;
                        break;
                case ARG_SETTING:
                        if (*n_settings >= SETTINGS_MAX)
                                return log_error_errno(E2BIG, "Too many settings given");
                        settings[(*n_settings)++] = (Setting) { options[idx].name, optarg };
                        break;
                default:
                        return -EINVAL;
                }
        if (optind < argc)
                return log_error_errno(EINVAL, "Unexpected argument: %s", argv[optind]);
        return 1;
}

static int options_load(int argc, char *argv[], Options *o) {
        Setting settings[SETTINGS_MAX];
        size_t n = 0;
        _cleanup_(freep) char *path = NULL;
        int r;

        *o = (Options) { .root = "/", .log_target = LOG_TARGET_AUTO, .persistence = PERSIST_AUTO };
        config_init(&o->config);
        r = parse_argv(argc, argv, o, settings, &n);
        if (r <= 0)
                return r;
        log_setup(o->log_target, LOG_INFO);

        r = path_join_root(o->root, o->config_file ? "" : CONFIG_FILE, &path);
        if (r < 0)
                return r;
        r = config_load(o->config_file ? o->config_file : path, o->config_file != NULL, o);
        if (r < 0)
                return r;
        /* The command line wins over the file. */
        for (size_t i = 0; i < n; i++)
                if (config_set(o, settings[i].key, settings[i].value) < 0)
                        return log_error_errno(EINVAL, "Invalid --%s: %s", settings[i].key,
                                               settings[i].value);
        return 1;
}


static int run(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        Options o;
        sigset_t mask;
        int r;

        r = options_load(argc, argv, &o);
        if (r <= 0)
                return r;

        r = manager_new(o.root, &o.config, o.persistence, &m);
        if (r < 0)
                return r;
        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) sd_event_add_signal(m->event, NULL, SIGTERM, NULL, NULL);
        (void) sd_event_add_signal(m->event, NULL, SIGINT, NULL, NULL);

        r = manager_bus_setup(m);
        if (r < 0)
                return r;
        r = monitor_start(m);
        if (r < 0)
                return r;
        log_info("Ready: root %s, tables from %u, rule priorities from %u, persistence %s",
                 o.root, o.config.table_base, o.config.priority_base,
                 persist_backend_to_string(m->backend));
        (void) sd_notify(false, "READY=1\nSTATUS=Waiting for requests");

        r = sd_event_loop(m->event);
        (void) sd_notify(false, "STOPPING=1");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        if (r > 0)
                return log_error_errno(ENOTCONN, "Lost the system bus; exiting");
        return 0;
}

int main(int argc, char *argv[]) {
        return run(argc, argv) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
