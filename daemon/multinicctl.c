/* multinicctl: command-line client of multinicd's D-Bus API. */
#include <ctype.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include "agent-bus.h"
#include "bus-json.h"
#include "cjson-util.h"
#include "config.h"
#include "errors.h"
#include "spec-bus.h"
#include "spec-json.h"
#include "yaml-json.h"

#define BUS_NAME AGENT_BUS_NAME
#define BUS_PATH AGENT_OBJECT_PATH
#define BUS_INTERFACE AGENT_INTERFACE
#define BUS_ERROR_INVALID_SPEC AGENT_ERROR_PREFIX "InvalidSpec"
#define BUS_PROPERTIES_INTERFACE "org.freedesktop.DBus.Properties"

#define USEC_PER_SEC UINT64_C(1000000)
#define TIMEOUT_DEFAULT_SEC 120
#define INPUT_SIZE_MAX (16 * 1024 * 1024)

/* Exit codes: 0 success, 1 failure, 2 invalid input (the file, the command line, the spec). */
#define EXIT_INVALID 2

typedef struct Args {
        const char *verb;
        const char *file;
        bool json;
        bool ask_password;
        bool help;
        bool version;
        uint64_t timeout_usec;
} Args;

typedef struct Verb {
        const char *name;
        const char *usage;
        const char *summary;
        bool takes_file;
        int (*run)(const Args *args, Error *e);
} Verb;

typedef struct Column {
        const char *header;
        const char *key;
} Column;

/* --- input --- */

static int read_fd(int fd, char **ret, size_t *ret_len) {
        _cleanup_(freep) char *buf = NULL;
        size_t len = 0, size = 0;

        for (;;) {
                ssize_t n;

                if (size - len < 4096) {
                        char *p;

                        if (size >= INPUT_SIZE_MAX)
                                return -EFBIG;
                        size = size ? size * 2 : 65536;
                        p = realloc(buf, size + 1);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                }
                n = read(fd, buf + len, size - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        buf[len] = 0;
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static int read_input(const char *path, const char *name, char **ret, size_t *ret_len,
                      Error *e) {
        _cleanup_(closep) int fd = -EBADF;
        int r;

        if (!streq(path, "-")) {
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return error_set(e, ERROR_KIND_INVALID_SPEC, negative_errno(),
                                         "cannot open %s: %m", name);
        }
        r = read_fd(fd >= 0 ? fd : STDIN_FILENO, ret, ret_len);
        if (r < 0)
                return error_set(e, ERROR_KIND_INVALID_SPEC, r, "cannot read %s: %s", name,
                                 strerror(-r));
        return 0;
}

static void offset_to_position(const char *text, size_t offset, size_t *line, size_t *column) {
        *line = 1;
        *column = 1;
        for (size_t i = 0; i < offset && text[i]; i++) {
                if (text[i] == '\n') {
                        (*line)++;
                        *column = 1;
                } else
                        (*column)++;
        }
}

/* JSON first, since that is what scripts send; YAML otherwise (JSON is nearly YAML anyway). */
static int parse_document(const char *name, const char *text, size_t len, cJSON **ret,
                          Error *e) {
        const char *end = NULL, *p = text + strspn(text, " \t\r\n");
        size_t line, column;
        char yaml_error[256];

        *ret = cJSON_ParseWithOpts(text, &end, true);
        if (*ret)
                return 0;
        *ret = yaml_to_json(text, len, yaml_error, sizeof(yaml_error));
        if (*ret)
                return 0;

        /* Something that starts like JSON is best explained by the JSON parser's position. */
        if ((*p == '{' || *p == '[') && end) {
                offset_to_position(text, (size_t) (end - text), &line, &column);
                return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                 "%s: line %zu column %zu: invalid JSON", name, line, column);
        }
        return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL, "%s: %s", name, yaml_error);
}

static int load_spec(const char *path, Spec *spec, Error *e) {
        const char *name = streq(path, "-") ? "stdin" : path;
        _cleanup_(cJSON_Deletep) cJSON *json = NULL;
        _cleanup_(freep) char *text = NULL;
        Error sub = {};
        size_t len = 0;
        int r;

        r = read_input(path, name, &text, &len, e);
        if (r < 0)
                return r;
        r = parse_document(name, text, len, &json, e);
        if (r < 0)
                return r;

        r = spec_from_json(json, spec, &sub);
        if (r < 0)
                return error_set(e, sub.kind, r, "%s: %s", name, sub.message);
        /* spec_validate() names fields from the spec; in a CR they sit under "spec.". */
        r = spec_validate(spec, &sub);
        if (r < 0)
                return error_set(e, sub.kind, r, "%s: %s%s", name,
                                 spec_json_is_node_config(json) ? "spec." : "", sub.message);
        return 0;
}

/* The reply's arguments, one per name, as one object. */
static int read_reply(sd_bus_message *reply, const char *const *names, cJSON **ret) {
        _cleanup_(cJSON_Deletep) cJSON *obj = cJSON_CreateObject();
        int r;

        if (!obj)
                return -ENOMEM;
        for (const char *const *n = names; *n; n++) {
                cJSON *v;

                r = bus_message_read_json(reply, &v);
                if (r < 0)
                        return r;
                if (!cJSON_AddItemToObject(obj, *n, v)) {
                        cJSON_Delete(v);
                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(obj);
        return 0;
}

/* --- calls --- */

typedef int (*AppendFunc)(sd_bus_message *m, const void *userdata);

static int bus_error(const char *method, const sd_bus_error *error, int r, Error *e) {
        if (sd_bus_error_has_name(error, BUS_ERROR_INVALID_SPEC))
                return error_set(e, ERROR_KIND_INVALID_SPEC, r, "multinicd refused the spec: %s",
                                 error->message ?: "no reason given");
        if (sd_bus_error_has_names(error, SD_BUS_ERROR_SERVICE_UNKNOWN,
                                   SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                return error_set(e, ERROR_KIND_FAILED, r, "%s: multinicd is not running (%s)",
                                 method, error->name);
        if (sd_bus_error_is_set(error))
                return error_set(e, ERROR_KIND_FAILED, r, "%s: %s (%s)", method,
                                 error->message ?: "no reason given", error->name);
        return error_set(e, ERROR_KIND_FAILED, r, "%s: %s", method, strerror(-r));
}

static int bus_new_call(sd_bus **ret_bus, sd_bus_message **ret_m, const char *interface,
                        const char *method, const Args *args, Error *e) {
        int r;

        r = sd_bus_open_system(ret_bus);
        if (r < 0)
                return error_set(e, ERROR_KIND_FAILED, r, "cannot connect to the system bus: %s",
                                 strerror(-r));
        r = sd_bus_message_new_method_call(*ret_bus, ret_m, BUS_NAME, BUS_PATH, interface, method);
        if (r >= 0)
                r = sd_bus_message_set_allow_interactive_authorization(*ret_m, args->ask_password);
        if (r < 0)
                return error_set(e, ERROR_KIND_FAILED, r, "%s: cannot build the call: %s", method,
                                 strerror(-r));
        return 0;
}

/* Calls method with the arguments append adds; names label the reply's arguments in ret. */
static int call(const Args *args, const char *interface, const char *method, AppendFunc append,
                const void *userdata, const char *const *names, cJSON **ret, Error *e) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = bus_new_call(&bus, &m, interface, method, args, e);
        if (r < 0)
                return r;
        r = append(m, userdata);
        if (r < 0)
                return error_set(e, ERROR_KIND_FAILED, r, "%s: cannot build the call: %s", method,
                                 strerror(-r));

        r = sd_bus_call(bus, m, args->timeout_usec, &error, &reply);
        if (r < 0)
                return bus_error(method, &error, r, e);
        r = read_reply(reply, names, ret);
        if (r < 0)
                return error_set(e, ERROR_KIND_FAILED, r, "%s: unexpected reply: %s", method,
                                 strerror(-r));
        return 0;
}

static int append_spec(sd_bus_message *m, const void *userdata) {
        return spec_bus_append(m, userdata);
}

/* Remove gets no options from us: the daemon's defaults apply. */
static int append_no_options(sd_bus_message *m, const void *userdata) {
        return sd_bus_message_append(m, "a{sv}", 0);
}

static int append_interface_name(sd_bus_message *m, const void *userdata) {
        return sd_bus_message_append(m, "s", BUS_INTERFACE);
}

/* --- output --- */

static void cell_text(const cJSON *v, char *buf, size_t n);

static void join_items(const cJSON *array, char *buf, size_t n) {
        const cJSON *item;
        char part[256];
        size_t len = 0;

        cJSON_ArrayForEach(item, array) {
                cell_text(item, part, sizeof(part));
                len += (size_t) snprintf(buf + len, n - len, "%s%s", len ? ", " : "", part);
                if (len >= n)
                        break;
        }
}

/* One value as table text; "-" for a missing or empty one. */
static void cell_text(const cJSON *v, char *buf, size_t n) {
        buf[0] = 0;
        if (cJSON_IsString(v))
                snprintf(buf, n, "%s", v->valuestring);
        else if (cJSON_IsNumber(v))
                snprintf(buf, n, "%.17g", v->valuedouble);
        else if (cJSON_IsBool(v))
                snprintf(buf, n, "%s", cJSON_IsTrue(v) ? "yes" : "no");
        else if (cJSON_IsArray(v))
                join_items(v, buf, n);
        else if (cJSON_IsObject(v)) {
                _cleanup_(freep) char *json = cJSON_PrintUnformatted(v);

                snprintf(buf, n, "%s", json ?: "{...}");
        }
        if (!buf[0])
                snprintf(buf, n, "-");
}

static void print_row(const cJSON *row, const Column *cols, const int *widths) {
        char cell[256];

        for (size_t c = 0; cols[c].header; c++) {
                if (row)
                        cell_text(cJSON_GetObjectItemCaseSensitive(row, cols[c].key), cell,
                                  sizeof(cell));
                if (cols[c + 1].header)
                        printf("%-*s  ", widths[c], row ? cell : cols[c].header);
                else
                        printf("%s\n", row ? cell : cols[c].header);
        }
}

/* Aligned columns; the strings in each row's sub_key array follow the row, indented. */
static void print_table(const cJSON *rows, const Column *cols, const char *sub_key) {
        int widths[16] = {};
        const cJSON *row, *sub;
        char cell[256];

        for (size_t c = 0; cols[c].header && c < ELEMENTSOF(widths); c++) {
                widths[c] = (int) strlen(cols[c].header);
                cJSON_ArrayForEach(row, rows) {
                        cell_text(cJSON_GetObjectItemCaseSensitive(row, cols[c].key), cell,
                                  sizeof(cell));
                        if ((int) strlen(cell) > widths[c])
                                widths[c] = (int) strlen(cell);
                }
        }

        print_row(NULL, cols, widths);
        cJSON_ArrayForEach(row, rows) {
                const cJSON *subs = sub_key ? cJSON_GetObjectItemCaseSensitive(row, sub_key) : NULL;

                print_row(row, cols, widths);
                cJSON_ArrayForEach(sub, subs) {
                        cell_text(sub, cell, sizeof(cell));
                        printf("    %s\n", cell);
                }
        }
}

static int print_json(const cJSON *json, Error *e) {
        _cleanup_(freep) char *s = cJSON_Print(json);

        if (!s)
                return error_set(e, ERROR_KIND_FAILED, -ENOMEM, "cannot format the result");
        printf("%s\n", s);
        return 0;
}

static const Column result_columns[] = {
        { "NAME", "name" },
        { "MAC", "macAddress" },
        { "STATE", "state" },
        { "MESSAGE", "message" },
        {},
};

/* Counts the failed NICs and lists them, "name (mac): why", for the error on stderr. */
static size_t describe_failed(const cJSON *results, char *buf, size_t size) {
        const cJSON *row;
        size_t n = 0, off = 0;

        buf[0] = 0;
        cJSON_ArrayForEach(row, results) {
                if (!streq_ptr(json_string(row, "state"), "failed"))
                        continue;
                if (off < size)
                        off += (size_t) snprintf(buf + off, size - off, "%s%s (%s): %s",
                                                 n ? "; " : "", json_string(row, "name") ?: "-",
                                                 json_string(row, "macAddress") ?: "-",
                                                 json_string(row, "message") ?: "");
                n++;
        }
        return n;
}

/* --- verbs --- */

static int verb_apply(const Args *args, Error *e) {
        static const char *const names[] = { "state", "results", NULL };
        _cleanup_(spec_done) Spec spec = {};
        _cleanup_(cJSON_Deletep) cJSON *out = NULL;
        const char *state;
        int r;

        spec_init(&spec);
        r = load_spec(args->file, &spec, e);
        if (r < 0)
                return r;
        r = call(args, BUS_INTERFACE, "Apply", append_spec, &spec, names, &out, e);
        if (r < 0)
                return r;

        state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(out, "state"));
        if (args->json)
                r = print_json(out, e);
        else {
                printf("State: %s\n\n", state ?: "-");
                print_table(cJSON_GetObjectItemCaseSensitive(out, "results"), result_columns,
                            "changes");
        }
        if (r < 0)
                return r;
        if (streq_ptr(state, "Failed")) {
                char failed[400];
                size_t n = describe_failed(cJSON_GetObjectItemCaseSensitive(out, "results"),
                                           failed, sizeof(failed));

                return error_set(e, ERROR_KIND_FAILED, -EIO,
                                 "Apply ended in state Failed: %zu interface(s) failed: %s", n,
                                 failed);
        }
        return 0;
}

static int verb_plan(const Args *args, Error *e) {
        static const char *const names[] = { "changes", NULL };
        static const Column columns[] = {
                { "NAME", "name" },     { "MAC", "macAddress" },
                { "ACTION", "action" }, { "DETAIL", "detail" },
                {},
        };
        _cleanup_(spec_done) Spec spec = {};
        _cleanup_(cJSON_Deletep) cJSON *out = NULL;
        const cJSON *changes;
        int r;

        spec_init(&spec);
        r = load_spec(args->file, &spec, e);
        if (r < 0)
                return r;
        r = call(args, BUS_INTERFACE, "Plan", append_spec, &spec, names, &out, e);
        if (r < 0)
                return r;

        changes = cJSON_GetObjectItemCaseSensitive(out, "changes");
        if (args->json)
                return print_json(out, e);
        if (cJSON_GetArraySize(changes) == 0)
                printf("No changes: Apply with this spec would change nothing.\n");
        else
                print_table(changes, columns, NULL);
        return 0;
}

static int verb_remove(const Args *args, Error *e) {
        static const char *const names[] = { "results", NULL };
        _cleanup_(cJSON_Deletep) cJSON *out = NULL;
        const cJSON *results;
        char why[400];
        size_t failed;
        int r;

        r = call(args, BUS_INTERFACE, "Remove", append_no_options, NULL, names, &out, e);
        if (r < 0)
                return r;

        results = cJSON_GetObjectItemCaseSensitive(out, "results");
        if (args->json)
                r = print_json(out, e);
        else if (cJSON_GetArraySize(results) == 0)
                printf("Nothing to remove: multinicd manages no interface.\n");
        else
                print_table(results, result_columns, NULL);
        if (r < 0)
                return r;
        failed = describe_failed(results, why, sizeof(why));
        if (failed > 0)
                return error_set(e, ERROR_KIND_FAILED, -EIO,
                                 "Remove failed for %zu interface(s): %s", failed, why);
        return 0;
}

static void format_usec(const cJSON *v, char *buf, size_t n) {
        time_t t;
        struct tm tm;

        if (!cJSON_IsNumber(v) || v->valuedouble <= 0) {
                snprintf(buf, n, "never");
                return;
        }
        t = (time_t) (v->valuedouble / (double) USEC_PER_SEC);
        if (!localtime_r(&t, &tm) || strftime(buf, n, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                snprintf(buf, n, "%.17g", v->valuedouble);
}

static void print_property(const char *name, const char *text) {
        size_t n = strlen(name);

        printf("%s:%*s %s\n", name, n < 11 ? (int) (11 - n) : 0, "", text);
}

/* Known properties first, in a fixed order; any other one after them, generically. */
static void print_properties(const cJSON *props) {
        static const char *const known[] = {
                "Version", "State", "Persistence", "InstanceId", "LastApply", "LastError", NULL,
        };
        const cJSON *v;
        char text[256];

        for (const char *const *k = known; *k; k++) {
                v = cJSON_GetObjectItemCaseSensitive(props, *k);
                if (streq(*k, "LastApply"))
                        format_usec(v, text, sizeof(text));
                else
                        cell_text(v, text, sizeof(text));
                print_property(*k, text);
        }
        cJSON_ArrayForEach(v, props) {
                bool is_known = streq(v->string, "Interfaces");

                for (const char *const *k = known; *k && !is_known; k++)
                        is_known = streq(v->string, *k);
                if (is_known)
                        continue;
                cell_text(v, text, sizeof(text));
                print_property(v->string, text);
        }
}

/* Below the table: what multinicd last found changed behind its back on each NIC, and healed. */
static void print_drift(const cJSON *interfaces) {
        const cJSON *nic, *d;
        char when[64];

        cJSON_ArrayForEach(nic, interfaces) {
                const cJSON *drift = cJSON_GetObjectItemCaseSensitive(nic, "drift");

                if (cJSON_GetArraySize(drift) == 0)
                        continue;
                format_usec(cJSON_GetObjectItemCaseSensitive(nic, "driftedAt"), when, sizeof(when));
                printf("\n%s: changed behind multinicd's back at %s, healed:\n",
                       json_string(nic, "name") ?: "-", when);
                cJSON_ArrayForEach(d, drift)
                        printf("  %s: found %s, wanted %s\n", json_string(d, "field") ?: "-",
                               json_string(d, "found") ?: "-", json_string(d, "wanted") ?: "-");
        }
}

static int verb_status(const Args *args, Error *e) {
        static const char *const names[] = { "properties", NULL };
        static const Column columns[] = {
                { "ID", "id" },           { "NAME", "name" }, { "MAC", "macAddress" },
                { "ADDRESS", "address" }, { "CIDR", "cidr" }, { "MTU", "mtu" },
                { "STATE", "state" },     { "MESSAGE", "message" },
                {},
        };
        _cleanup_(cJSON_Deletep) cJSON *out = NULL;
        const cJSON *props, *interfaces;
        int r;

        r = call(args, BUS_PROPERTIES_INTERFACE, "GetAll", append_interface_name, NULL, names,
                 &out, e);
        if (r < 0)
                return r;

        props = cJSON_GetObjectItemCaseSensitive(out, "properties");
        if (args->json)
                return print_json(props, e);
        print_properties(props);
        interfaces = cJSON_GetObjectItemCaseSensitive(props, "Interfaces");
        printf("\n");
        if (cJSON_GetArraySize(interfaces) == 0)
                printf("No managed interfaces.\n");
        else
                print_table(interfaces, columns, NULL);
        print_drift(interfaces);
        return 0;
}

/* --- command line --- */

static const Verb verbs[] = {
        { "apply", "apply -f FILE", "Make the host's secondary NICs match FILE", true,
          verb_apply },
        { "plan", "plan -f FILE", "Show what apply would change, changing nothing", true,
          verb_plan },
        { "status", "status", "Show the daemon's state and the NICs it manages", false,
          verb_status },
        { "remove", "remove", "Release every NIC the daemon manages", false, verb_remove },
        {},
};

static const Verb *verb_find(const char *name) {
        for (const Verb *v = verbs; v->name; v++)
                if (streq(v->name, name))
                        return v;
        return NULL;
}

static void help_options(bool takes_file) {
        if (takes_file)
                printf("  -f, --file FILE      the spec: a MultiNicNodeConfig or a plain\n"
                       "                       {interfaces, options} document, JSON or YAML;\n"
                       "                       - reads stdin\n");
        printf("      --json           print the result as one JSON document\n"
               "      --timeout SEC    wait at most SEC seconds for multinicd (default %d)\n"
               "      --no-ask-password\n"
               "                       do not ask for a password when polkit wants one\n"
               "  -h, --help           show this help\n",
               TIMEOUT_DEFAULT_SEC);
}

static void help_verb(const Verb *v) {
        printf("Usage: multinicctl %s [OPTIONS]\n\n%s.\n\nOptions:\n", v->usage, v->summary);
        help_options(v->takes_file);
}

static void help(void) {
        printf("Usage: multinicctl [OPTIONS] VERB\n\n"
               "Control multinicd, which configures a node's secondary NICs.\n\nVerbs:\n");
        for (const Verb *v = verbs; v->name; v++)
                printf("  %-15s %s\n", v->usage, v->summary);
        printf("\nOptions:\n");
        help_options(true);
        printf("      --version        show the version\n\n"
               "Exit status: 0 success, 1 failure, 2 invalid input.\n"
               "See 'multinicctl VERB --help' for one verb.\n");
}

static int parse_timeout(const char *s, uint64_t *ret, Error *e) {
        unsigned long long sec;
        char *end;

        errno = 0;
        sec = strtoull(s, &end, 10);
        if (!isdigit((unsigned char) s[0]) || *end || errno != 0 || sec == 0 ||
            sec > UINT64_MAX / USEC_PER_SEC)
                return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                 "--timeout: '%s' is not a positive number of seconds", s);
        *ret = sec * USEC_PER_SEC;
        return 0;
}

enum {
        ARG_VERSION = 0x100,
        ARG_JSON,
        ARG_TIMEOUT,
        ARG_NO_ASK_PASSWORD,
};

static int option_error(int c, char *argv[], Error *e) {
        char short_opt[3] = { '-', (char) optopt, 0 };
        /* optopt names a short option; a long one is only found in argv. */
        const char *opt = optopt > 0 && optopt < 0x100 ? short_opt : argv[optind - 1];

        if (c == ':')
                return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                 "option '%s' needs an argument", opt);
        return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                         "unknown option '%s'; see multinicctl --help", opt);
}

static int parse_options(int argc, char *argv[], Args *args, Error *e) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "file", required_argument, NULL, 'f' },
                { "json", no_argument, NULL, ARG_JSON },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "no-ask-password", no_argument, NULL, ARG_NO_ASK_PASSWORD },
                {},
        };
        int c, r;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hf:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        args->help = true;
                        break;
                case ARG_VERSION:
                        args->version = true;
                        break;
                case 'f':
                        args->file = optarg;
                        break;
                case ARG_JSON:
                        args->json = true;
                        break;
                case ARG_TIMEOUT:
                        r = parse_timeout(optarg, &args->timeout_usec, e);
                        if (r < 0)
                                return r;
                        break;
                case ARG_NO_ASK_PASSWORD:
                        args->ask_password = false;
                        break;
                default:
                        return option_error(c, argv, e);
                }
        return 0;
}

static int parse_verb(int argc, char *argv[], Args *args, const Verb **ret, Error *e) {
        const Verb *v = NULL;

        if (optind < argc)
                args->verb = argv[optind++];
        if (optind < argc)
                return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                 "unexpected argument '%s'", argv[optind]);
        if (args->verb) {
                v = verb_find(args->verb);
                if (!v)
                        return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                         "unknown verb '%s'; see multinicctl --help", args->verb);
        }
        *ret = v;
        if (args->help || args->version)
                return 0;
        if (!v)
                return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                 "no verb given; see multinicctl --help");
        if (v->takes_file && !args->file)
                return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                 "%s: -f FILE is required ('-' reads stdin)", v->name);
        if (!v->takes_file && args->file)
                return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL, "%s: takes no -f/--file",
                                 v->name);
        return 0;
}

static int fail(const Error *e, int r) {
        fprintf(stderr, "multinicctl: %s\n", e->message[0] ? e->message : strerror(-r));
        return e->kind == ERROR_KIND_INVALID_SPEC ? EXIT_INVALID : EXIT_FAILURE;
}

int main(int argc, char *argv[]) {
        Args args = {
                .ask_password = true,
                .timeout_usec = TIMEOUT_DEFAULT_SEC * USEC_PER_SEC,
        };
        const Verb *verb = NULL;
        Error e = {};
        int r;

        r = parse_options(argc, argv, &args, &e);
        if (r >= 0)
                r = parse_verb(argc, argv, &args, &verb, &e);
        if (r < 0)
                return fail(&e, r);

        if (args.version) {
                printf("multinicctl %s\n", PACKAGE_VERSION);
                return EXIT_SUCCESS;
        }
        if (args.help) {
                if (verb)
                        help_verb(verb);
                else
                        help();
                return EXIT_SUCCESS;
        }

        r = verb->run(&args, &e);
        if (fflush(stdout) != 0 && r >= 0)
                r = error_set(&e, ERROR_KIND_FAILED, negative_errno(), "cannot write output: %m");
        if (r < 0)
                return fail(&e, r);
        return EXIT_SUCCESS;
}
