/* The managed-NIC records, stored as JSON under <root>/var/lib/multinic/state.json. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <time.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>

#include "cjson-util.h"
#include "fileio.h"
#include "state.h"
#include "util.h"

#define STATE_DIR "/var/lib/multinic"
#define STATE_FILE STATE_DIR "/state.json"


void state_done(State *s) {
        free(s->nics);
        cJSON_Delete(s->desired);
        *s = (State) {};
}

const ManagedNic *state_find(const State *s, const uint8_t mac[6]) {
        for (size_t i = 0; i < s->n_nics; i++)
                if (memcmp(s->nics[i].mac, mac, 6) == 0)
                        return &s->nics[i];
        return NULL;
}

static bool addr_equal(const AddrInfo *a, const AddrInfo *b) {
        return a->local.s_addr == b->local.s_addr && a->prefixlen == b->prefixlen &&
               a->flags == b->flags;
}

static bool route_equal(const RouteInfo *a, const RouteInfo *b) {
        return a->table == b->table && a->dst.s_addr == b->dst.s_addr &&
               a->dst_len == b->dst_len && a->prefsrc.s_addr == b->prefsrc.s_addr;
}

static bool nic_equal(const ManagedNic *a, const ManagedNic *b) {
        return memcmp(a->mac, b->mac, 6) == 0 && a->id == b->id && a->mtu == b->mtu &&
               streq(a->name, b->name) && streq(a->original_name, b->original_name) &&
               streq(a->driver, b->driver) &&
               memcmp(a->original_devconf, b->original_devconf, sizeof(a->original_devconf)) == 0 &&
               a->has_address == b->has_address && addr_equal(&a->address, &b->address) &&
               a->has_rule == b->has_rule && a->rule.priority == b->rule.priority &&
               a->rule.table == b->rule.table && a->has_route == b->has_route &&
               route_equal(&a->route, &b->route);
}

bool state_equal(const State *a, const State *b) {
        if (a->n_nics != b->n_nics || !a->desired != !b->desired ||
            (a->desired && !cJSON_Compare(a->desired, b->desired, true)))
                return false;
        for (size_t i = 0; i < a->n_nics; i++)
                if (!nic_equal(&a->nics[i], &b->nics[i]))
                        return false;
        return true;
}

int state_append(State *s, const ManagedNic *nic) {
        ManagedNic *n = realloc(s->nics, (s->n_nics + 1) * sizeof(*n));

        if (!n)
                return -ENOMEM;
        s->nics = n;
        n[s->n_nics++] = *nic;
        return 0;
}

static int add_ip(cJSON *o, const char *key, struct in_addr a) {
        char buf[INET_ADDRSTRLEN];

        inet_ntop(AF_INET, &a, buf, sizeof(buf));
        return cJSON_AddStringToObject(o, key, buf) ? 0 : -ENOMEM;
}

static cJSON *nic_to_json(const ManagedNic *m) {
        _cleanup_(cJSON_Deletep) cJSON *o = cJSON_CreateObject();
        cJSON *devconf;
        char mac[MAC_STRLEN];

        if (!o)
                return NULL;
        mac_format(m->mac, mac);
        devconf = cJSON_AddArrayToObject(o, "originalSysctls");
        if (!cJSON_AddStringToObject(o, "macAddress", mac) ||
            !cJSON_AddNumberToObject(o, "id", m->id) ||
            !cJSON_AddNumberToObject(o, "mtu", m->mtu) ||
            !cJSON_AddStringToObject(o, "name", m->name) ||
            !cJSON_AddStringToObject(o, "originalName", m->original_name) || !devconf)
                return NULL;
        for (size_t i = 0; i < _DEVCONF_MAX; i++)
                cJSON_AddItemToArray(devconf, cJSON_CreateNumber(m->original_devconf[i]));
        if (m->driver[0] && !cJSON_AddStringToObject(o, "driver", m->driver))
                return NULL;
        if (m->has_address && (add_ip(o, "address", m->address.local) < 0 ||
                               !cJSON_AddNumberToObject(o, "prefixlen", m->address.prefixlen) ||
                               !cJSON_AddNumberToObject(o, "addressFlags", m->address.flags)))
                return NULL;
        if (m->has_rule && (!cJSON_AddNumberToObject(o, "rulePriority", m->rule.priority) ||
                            !cJSON_AddNumberToObject(o, "ruleTable", m->rule.table)))
                return NULL;
        if (m->has_route && (add_ip(o, "routeDst", m->route.dst) < 0 ||
                             !cJSON_AddNumberToObject(o, "routeDstLen", m->route.dst_len) ||
                             !cJSON_AddNumberToObject(o, "routeTable", m->route.table)))
                return NULL;
        return TAKE_PTR(o);
}

int state_save(const char *root, const State *s, bool sync_dir) {
        _cleanup_(cJSON_Deletep) cJSON *doc = cJSON_CreateObject();
        _cleanup_(freep) char *dir = NULL, *path = NULL, *text = NULL;
        cJSON *arr;
        int r;

        if (!doc || !cJSON_AddNumberToObject(doc, "version", 1))
                return -ENOMEM;
        arr = cJSON_AddArrayToObject(doc, "interfaces");
        if (!arr)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_nics; i++) {
                cJSON *o = nic_to_json(&s->nics[i]);
                if (!o)
                        return -ENOMEM;
                cJSON_AddItemToArray(arr, o);
        }
        if (s->desired && !cJSON_AddItemToObject(doc, "spec", cJSON_Duplicate(s->desired, true)))
                return -ENOMEM;
        text = cJSON_Print(doc);
        if (!text)
                return -ENOMEM;
        r = path_join_root(root, STATE_DIR, &dir);
        if (r < 0)
                return r;
        r = mkdir_parents(dir, 0755);
        if (r < 0)
                return r;
        r = path_join_root(root, STATE_FILE, &path);
        if (r < 0)
                return r;
        return write_file_atomic_full(path, text, strlen(text), 0600, sync_dir);
}

int state_sync(const char *root) {
        _cleanup_(freep) char *path = NULL;
        int r;

        r = path_join_root(root, STATE_FILE, &path);
        if (r < 0)
                return r;
        return fsync_path(path);
}

static int get_ip(const cJSON *o, const char *key, struct in_addr *ret) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

        if (!cJSON_IsString(v) || inet_pton(AF_INET, v->valuestring, ret) != 1)
                return -EBADMSG;
        return 0;
}

/* An integral number in min..max; a file that says otherwise was not written by us. */
static int get_int(const cJSON *o, const char *key, double min, double max, double *ret) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

        if (!cJSON_IsNumber(v) || v->valuedouble < min || v->valuedouble > max ||
            v->valuedouble != (double) (int64_t) v->valuedouble)
                return -EBADMSG;
        *ret = v->valuedouble;
        return 0;
}

static int get_u32(const cJSON *o, const char *key, uint32_t max, uint32_t *ret) {
        double d;
        int r = get_int(o, key, 0, max, &d);

        if (r >= 0)
                *ret = (uint32_t) d;
        return r;
}

static int get_name(const cJSON *o, const char *key, char ret[IFNAMSIZ]) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

        if (!cJSON_IsString(v) || (v->valuestring[0] && !ifname_valid(v->valuestring)))
                return -EBADMSG;
        snprintf(ret, IFNAMSIZ, "%s", v->valuestring);
        return 0;
}

static int devconf_from_json(const cJSON *o, ManagedNic *m) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "originalSysctls");

        if (cJSON_GetArraySize(arr) != _DEVCONF_MAX)
                return -EBADMSG;
        for (size_t i = 0; i < _DEVCONF_MAX; i++) {
                const cJSON *v = cJSON_GetArrayItem(arr, (int) i);

                if (!cJSON_IsNumber(v) || v->valuedouble < -1 || v->valuedouble > INT32_MAX)
                        return -EBADMSG;
                m->original_devconf[i] = (int32_t) v->valuedouble;
        }
        return 0;
}

static int routing_from_json(const cJSON *o, ManagedNic *m) {
        uint32_t plen = 0;

        m->has_rule = cJSON_HasObjectItem(o, "rulePriority");
        if (m->has_rule && (get_u32(o, "rulePriority", 32765, &m->rule.priority) < 0 ||
                            get_u32(o, "ruleTable", UINT32_MAX, &m->rule.table) < 0))
                return -EBADMSG;
        m->rule.src = m->address.local;
        m->rule.src_len = 32;
        m->rule.action = FR_ACT_TO_TBL;

        m->has_route = cJSON_HasObjectItem(o, "routeDst");
        if (m->has_route && (get_ip(o, "routeDst", &m->route.dst) < 0 ||
                             get_u32(o, "routeDstLen", 32, &plen) < 0 ||
                             get_u32(o, "routeTable", UINT32_MAX, &m->route.table) < 0))
                return -EBADMSG;
        m->route.dst_len = (uint8_t) plen;
        m->route.prefsrc = m->address.local;
        m->route.scope = RT_SCOPE_LINK;
        m->route.protocol = RTPROT_STATIC;
        m->route.type = RTN_UNICAST;
        return 0;
}

/* Optional: a state file of an older multinicd has none. */
static int get_driver(const cJSON *o, ManagedNic *m) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "driver");

        if (!v)
                return 0;
        if (!cJSON_IsString(v) || strlen(v->valuestring) >= sizeof(m->driver))
                return -EBADMSG;
        strcpy(m->driver, v->valuestring);
        return 0;
}

static int nic_from_json(const cJSON *o, ManagedNic *m) {
        const cJSON *mac = cJSON_GetObjectItemCaseSensitive(o, "macAddress");
        uint32_t plen = 0;

        *m = (ManagedNic) {};
        if (!cJSON_IsString(mac) || mac_parse(mac->valuestring, m->mac) < 0 ||
            get_u32(o, "id", SPEC_ID_MAX, &m->id) < 0 ||
            get_u32(o, "mtu", UINT32_MAX, &m->mtu) < 0 ||
            get_name(o, "name", m->name) < 0 || get_name(o, "originalName", m->original_name) < 0 ||
            devconf_from_json(o, m) < 0 || get_driver(o, m) < 0)
                return -EBADMSG;
        m->has_address = cJSON_HasObjectItem(o, "address");
        if (m->has_address && (get_ip(o, "address", &m->address.local) < 0 ||
                               get_u32(o, "prefixlen", 32, &plen) < 0 ||
                               get_u32(o, "addressFlags", UINT32_MAX, &m->address.flags) < 0))
                return -EBADMSG;
        m->address.prefixlen = (uint8_t) plen;
        if (!m->has_address && (cJSON_HasObjectItem(o, "rulePriority") ||
                                cJSON_HasObjectItem(o, "routeDst")))
                return -EBADMSG;
        return routing_from_json(o, m);
}

int state_load(const char *root, State *ret) {
        _cleanup_(freep) char *path = NULL, *text = NULL;
        _cleanup_(cJSON_Deletep) cJSON *doc = NULL;
        const cJSON *item;
        State s = {};
        int r;

        r = path_join_root(root, STATE_FILE, &path);
        if (r < 0)
                return r;
        r = read_file(path, 4 << 20, &text, NULL);
        if (r == -ENOENT) {
                *ret = s;
                return 0;
        }
        if (r < 0)
                return r;
        doc = cJSON_Parse(text);
        if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "interfaces")))
                return -EBADMSG;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(doc, "interfaces")) {
                ManagedNic m;

                r = nic_from_json(item, &m);
                if (r == 0)
                        r = state_append(&s, &m);
                if (r < 0) {
                        state_done(&s);
                        return r;
                }
        }
        if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(doc, "spec")))
                s.desired = cJSON_DetachItemFromObjectCaseSensitive(doc, "spec");
        *ret = s;
        return 0;
}

int state_set_aside(const char *root, char **ret_path) {
        _cleanup_(freep) char *path = NULL, *aside = NULL;
        int r;

        r = path_join_root(root, STATE_FILE, &path);
        if (r < 0)
                return r;
        if (asprintf(&aside, "%s.broken-%ld", path, (long) time(NULL)) < 0)
                return -ENOMEM;
        if (rename(path, aside) < 0)
                return negative_errno();
        *ret_path = TAKE_PTR(aside);
        return 0;
}
