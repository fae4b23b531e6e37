/* Spec from JSON, through the spec setters so that every input format is validated alike. */
#include <arpa/inet.h>
#include <stdio.h>

#include "cjson-util.h"
#include "spec-json.h"

#define CR_API_VERSION "multinic.io/v1alpha1"
#define CR_KIND "MultiNicNodeConfig"
/* The largest integer a double holds exactly: cJSON keeps every number as a double. */
#define JSON_INTEGER_MAX 9007199254740991.0
#define PATH_MAX_LEN 128

static void path_join(char *buf, size_t n, const char *prefix, const char *key) {
        snprintf(buf, n, "%s%s%s", prefix, *prefix ? "." : "", key);
}

static void describe(const cJSON *v, char *buf, size_t n) {
        if (cJSON_IsString(v))
                snprintf(buf, n, "the string \"%.32s%s\"", v->valuestring,
                         strlen(v->valuestring) > 32 ? "..." : "");
        else if (cJSON_IsNumber(v))
                snprintf(buf, n, "%.15g", v->valuedouble);
        else if (cJSON_IsBool(v))
                snprintf(buf, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
        else if (cJSON_IsNull(v))
                snprintf(buf, n, "null");
        else if (cJSON_IsArray(v))
                snprintf(buf, n, "an array");
        else
                snprintf(buf, n, "an object");
}

static int type_error(Error *e, const char *path, const char *want, const cJSON *v) {
        char got[64];

        describe(v, got, sizeof(got));
        return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL, "%s: must be %s, not %s", path,
                         want, got);
}

static int json_get_uint(const cJSON *v, const char *path, uint64_t *ret, Error *e) {
        double d;

        if (!cJSON_IsNumber(v))
                return type_error(e, path, "an integer", v);
        d = v->valuedouble;
        if (d < 0)
                return error_set(e, ERROR_KIND_INVALID_SPEC, -ERANGE, "%s: %.15g is negative",
                                 path, d);
        if (d > JSON_INTEGER_MAX)
                return error_set(e, ERROR_KIND_INVALID_SPEC, -ERANGE, "%s: %.15g is too large",
                                 path, d);
        if (!(d == (double) (uint64_t) d))
                return type_error(e, path, "an integer", v);
        *ret = (uint64_t) d;
        return 0;
}

/* JSON allows a key twice and cJSON keeps both: refuse that rather than guess which one counts. */
static int check_unique_key(const cJSON *obj, const cJSON *item, const char *prefix, Error *e) {
        char path[PATH_MAX_LEN];

        for (const cJSON *p = obj->child; p && p != item; p = p->next)
                if (streq(p->string, item->string)) {
                        path_join(path, sizeof(path), prefix, item->string);
                        return error_set(e, ERROR_KIND_INVALID_SPEC, -EEXIST,
                                         "%s: given more than once", path);
                }
        return 0;
}

static int unknown_key(Error *e, const char *prefix, const char *key, const char *expected) {
        char path[PATH_MAX_LEN];

        path_join(path, sizeof(path), prefix, key);
        return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL, "%s: unknown key (expected %s)",
                         path, expected);
}

static int interface_set(SpecInterface *iface, size_t idx, const cJSON *v, Error *e) {
        char prefix[32], path[PATH_MAX_LEN];
        uint64_t u = 0;
        int r;

        snprintf(prefix, sizeof(prefix), "interfaces[%zu]", idx);
        path_join(path, sizeof(path), prefix, v->string);

        switch (spec_interface_key_type(v->string)) {
        case 's':
                if (!cJSON_IsString(v))
                        return type_error(e, path, "a string", v);
                return spec_interface_set_string(iface, idx, v->string, v->valuestring, e);
        case 'u':
                r = json_get_uint(v, path, &u, e);
                if (r < 0)
                        return r;
                return spec_interface_set_uint(iface, idx, v->string, u, e);
        default:
                return unknown_key(e, prefix, v->string,
                                   "id, name, macAddress, address, cidr or mtu");
        }
}

static int interface_from_json(Spec *spec, const cJSON *obj, Error *e) {
        size_t idx = spec->n_interfaces;
        SpecInterface *iface;
        const cJSON *v;
        char prefix[32];
        int r;

        snprintf(prefix, sizeof(prefix), "interfaces[%zu]", idx);
        if (!cJSON_IsObject(obj))
                return type_error(e, prefix, "an object", obj);

        r = spec_add_interface(spec, &iface, e);
        if (r < 0)
                return r;
        cJSON_ArrayForEach(v, obj) {
                r = check_unique_key(obj, v, prefix, e);
                if (r < 0)
                        return r;
                r = interface_set(iface, idx, v, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int interfaces_from_json(Spec *spec, const cJSON *array, Error *e) {
        const cJSON *v;
        int r;

        if (!cJSON_IsArray(array))
                return type_error(e, "interfaces", "an array", array);
        cJSON_ArrayForEach(v, array) {
                r = interface_from_json(spec, v, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The setters name their field options.<key>; the CR has instanceId at spec level. */
static int options_set(SpecOptions *o, const char *prefix, const cJSON *v, Error *e) {
        char path[PATH_MAX_LEN];
        Error sub = {};
        int r;

        path_join(path, sizeof(path), prefix, v->string);
        switch (spec_options_key_type(v->string)) {
        case 's':
                if (!cJSON_IsString(v))
                        return type_error(e, path, "a string", v);
                r = spec_options_set_string(o, v->string, v->valuestring, &sub);
                break;
        case 'b':
                if (!cJSON_IsBool(v))
                        return type_error(e, path, "true or false", v);
                r = spec_options_set_bool(o, v->string, cJSON_IsTrue(v), &sub);
                break;
        default:
                return unknown_key(e, prefix, v->string,
                                   "instanceId, allowUp, policyRouting or persist");
        }
        if (r < 0) {
                const char *colon = strchr(sub.message, ':');

                return error_set(e, sub.kind, r, "%s%s%s", path, colon ? "" : ": ",
                                 colon ? colon : sub.message);
        }
        return 0;
}

static int options_member(Spec *spec, const cJSON *v, Error *e) {
        return options_set(&spec->options, "options", v, e);
}

static const char *const no_keys[] = { NULL };

typedef int (*MemberFunc)(Spec *spec, const cJSON *v, Error *e);

/* Checks obj's type, its required keys and its keys' uniqueness, and hands each member on. */
static int object_walk(const cJSON *obj, const char *path, const char *const *required,
                       MemberFunc member, Spec *spec, Error *e) {
        char p[PATH_MAX_LEN];
        const cJSON *v;
        int r;

        if (!cJSON_IsObject(obj))
                return type_error(e, *path ? path : "document", "an object", obj);
        for (const char *const *k = required; *k; k++)
                if (!cJSON_GetObjectItemCaseSensitive(obj, *k)) {
                        path_join(p, sizeof(p), path, *k);
                        return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL, "%s: required", p);
                }
        cJSON_ArrayForEach(v, obj) {
                r = check_unique_key(obj, v, path, e);
                if (r < 0)
                        return r;
                r = member(spec, v, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int plain_spec_member(Spec *spec, const cJSON *v, Error *e) {
        if (streq(v->string, "interfaces"))
                return interfaces_from_json(spec, v, e);
        if (streq(v->string, "options"))
                return object_walk(v, "options", no_keys, options_member, spec, e);
        return unknown_key(e, "", v->string, "interfaces or options");
}

static int cr_spec_member(Spec *spec, const cJSON *v, Error *e) {
        if (streq(v->string, "interfaces"))
                return interfaces_from_json(spec, v, e);
        if (streq(v->string, "instanceId"))
                return options_set(&spec->options, "", v, e);
        /* The bridge finds the CR by its name; nodeName is for people reading it. */
        if (streq(v->string, "nodeName"))
                return cJSON_IsString(v) ? 0 : type_error(e, "nodeName", "a string", v);
        return unknown_key(e, "", v->string, "nodeName, instanceId or interfaces");
}

/* A spec without interfaces would release every NIC: an empty array has to say so. */
static const char *const spec_required[] = { "interfaces", NULL };

static int cr_spec_from_json(const cJSON *obj, Spec *spec, Error *e) {
        Error sub = {};
        int r;

        if (!cJSON_IsObject(obj))
                return type_error(e, "spec", "an object", obj);
        /* Fields inside the CR are named from the document's root, as kubectl explain does. */
        r = object_walk(obj, "", spec_required, cr_spec_member, spec, &sub);
        if (r < 0)
                return error_set(e, sub.kind, r, "spec.%s", sub.message);
        return 0;
}

static int check_string_equals(const cJSON *v, const char *want, Error *e) {
        if (!cJSON_IsString(v) || !streq(v->valuestring, want)) {
                char got[64];

                describe(v, got, sizeof(got));
                return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL, "%s: must be %s, not %s",
                                 v->string, want, got);
        }
        return 0;
}

static int cr_member(Spec *spec, const cJSON *v, Error *e) {
        if (streq(v->string, "apiVersion"))
                return check_string_equals(v, CR_API_VERSION, e);
        if (streq(v->string, "kind"))
                return check_string_equals(v, CR_KIND, e);
        if (streq(v->string, "spec"))
                return cr_spec_from_json(v, spec, e);
        if (streq(v->string, "metadata") || streq(v->string, "status"))
                return 0;
        return unknown_key(e, "", v->string, "apiVersion, kind, metadata, spec or status");
}

bool spec_json_is_node_config(const cJSON *root) {
        return cJSON_IsObject(root) && (cJSON_GetObjectItemCaseSensitive(root, "apiVersion") ||
                                        cJSON_GetObjectItemCaseSensitive(root, "kind"));
}

int spec_from_json(const cJSON *root, Spec *spec, Error *e) {
        static const char *const cr_required[] = { "apiVersion", "kind", "spec", NULL };

        if (spec_json_is_node_config(root))
                return object_walk(root, "", cr_required, cr_member, spec, e);
        return object_walk(root, "", spec_required, plain_spec_member, spec, e);
}

static int add_interface_json(cJSON *arr, const SpecInterface *i) {
        char mac[MAC_STRLEN], addr[INET_ADDRSTRLEN], net[INET_ADDRSTRLEN], cidr[24];
        cJSON *o = cJSON_CreateObject();

        if (!o || !cJSON_AddItemToArray(arr, o)) {
                cJSON_Delete(o);
                return -ENOMEM;
        }
        mac_format(i->mac, mac);
        inet_ntop(AF_INET, &i->address, addr, sizeof(addr));
        inet_ntop(AF_INET, &i->network, net, sizeof(net));
        snprintf(cidr, sizeof(cidr), "%s/%u", net, i->prefixlen);
        if (!cJSON_AddNumberToObject(o, "id", i->id) ||
            ((i->fields_set & SPEC_FIELD_NAME) && !cJSON_AddStringToObject(o, "name", i->name)) ||
            !cJSON_AddStringToObject(o, "macAddress", mac) ||
            !cJSON_AddStringToObject(o, "address", addr) ||
            !cJSON_AddStringToObject(o, "cidr", cidr) ||
            ((i->fields_set & SPEC_FIELD_MTU) && !cJSON_AddNumberToObject(o, "mtu", i->mtu)))
                return -ENOMEM;
        return 0;
}

cJSON *spec_to_json(const Spec *spec) {
        _cleanup_(cJSON_Deletep) cJSON *root = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(root, "interfaces");
        cJSON *o = cJSON_AddObjectToObject(root, "options");

        if (!arr || !o)
                return NULL;
        for (size_t i = 0; i < spec->n_interfaces; i++)
                if (add_interface_json(arr, &spec->interfaces[i]) < 0)
                        return NULL;
        if ((spec->options.instance_id[0] &&
             !cJSON_AddStringToObject(o, "instanceId", spec->options.instance_id)) ||
            !cJSON_AddBoolToObject(o, "allowUp", spec->options.allow_up) ||
            !cJSON_AddBoolToObject(o, "policyRouting", spec->options.policy_routing) ||
            !cJSON_AddBoolToObject(o, "persist", spec->options.persist))
                return NULL;
        return TAKE_PTR(root);
}
