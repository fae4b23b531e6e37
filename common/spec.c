/* Parsing and validation of a node's NIC spec, independent of where the spec came from. */
#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>

#include "spec.h"

void spec_init(Spec *spec) {
        *spec = (Spec) {
                .options.policy_routing = true,
                .options.persist = true,
        };
}

void spec_done(Spec *spec) {
        free(spec->interfaces);
        spec->interfaces = NULL;
        spec->n_interfaces = 0;
}

int spec_add_interface(Spec *spec, SpecInterface **ret, Error *e) {
        SpecInterface *n;

        if (spec->n_interfaces >= SPEC_INTERFACES_MAX)
                return error_set(e, ERROR_KIND_INVALID_SPEC, -E2BIG,
                                 "interfaces: more than %d entries", SPEC_INTERFACES_MAX);

        n = realloc(spec->interfaces, (spec->n_interfaces + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        spec->interfaces = n;
        n[spec->n_interfaces] = (SpecInterface) {};
        *ret = &n[spec->n_interfaces++];
        return 0;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        c = (char) tolower((unsigned char) c);
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

int mac_parse(const char *s, uint8_t ret[6]) {
        uint8_t mac[6];

        /* Exactly "xx:xx:xx:xx:xx:xx", any case: the spelling OpenStack and the CR use. */
        if (strlen(s) != 17)
                return -EINVAL;
        for (size_t i = 0; i < 6; i++) {
                const char *p = s + i * 3;
                int hi = hexval(p[0]), lo = hexval(p[1]);

                if (hi < 0 || lo < 0)
                        return -EINVAL;
                if (i < 5 && p[2] != ':')
                        return -EINVAL;
                mac[i] = (uint8_t) (hi << 4 | lo);
        }
        memcpy(ret, mac, 6);
        return 0;
}

void mac_format(const uint8_t mac[6], char ret[MAC_STRLEN]) {
        snprintf(ret, MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                 mac[4], mac[5]);
}

bool ifname_valid(const char *name) {
        size_t n = strlen(name);

        /* The kernel's own rules, plus no '%' (a name template) and only printable ASCII. */
        if (n == 0 || n >= IFNAMSIZ)
                return false;
        /* "all" and "default" are taken by /proc/sys/net/ipv4/conf: the kernel refuses them. */
        if (streq(name, ".") || streq(name, "..") || streq(name, "all") || streq(name, "default"))
                return false;
        for (const char *p = name; *p; p++)
                if (*p == '/' || *p == ':' || *p == '%' || !isgraph((unsigned char) *p))
                        return false;
        return true;
}

uint32_t prefix_to_mask(uint8_t prefixlen) {
        return prefixlen == 0 ? 0 : UINT32_MAX << (32 - prefixlen);
}

static int ipv4_parse(const char *s, struct in_addr *ret) {
        /* inet_pton() takes only the dotted quad, unlike inet_aton(). */
        return inet_pton(AF_INET, s, ret) == 1 ? 0 : -EINVAL;
}

int cidr_parse(const char *s, struct in_addr *ret_network, uint8_t *ret_prefixlen) {
        char buf[INET_ADDRSTRLEN];
        const char *slash = strchr(s, '/');
        char *end;
        unsigned long plen;
        size_t n;

        if (!slash)
                return -EINVAL;
        n = (size_t) (slash - s);
        if (n >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, s, n);
        buf[n] = 0;
        if (ipv4_parse(buf, ret_network) < 0)
                return -EINVAL;
        /* One spelling only: "/8", not "/08" or "/+8". */
        if (!isdigit((unsigned char) slash[1]) || strlen(slash + 1) > 2 ||
            (slash[1] == '0' && slash[2] != 0))
                return -EINVAL;
        plen = strtoul(slash + 1, &end, 10);
        if (*end || plen < 1 || plen > 32)
                return -ERANGE;
        *ret_prefixlen = (uint8_t) plen;
        return 0;
}

char spec_interface_key_type(const char *key) {
        static const struct {
                const char *key;
                char type;
        } keys[] = {
                { "id", 'u' },      { "name", 's' }, { "macAddress", 's' },
                { "address", 's' }, { "cidr", 's' }, { "mtu", 'u' },
        };

        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (streq(keys[i].key, key))
                        return keys[i].type;
        return 0;
}

char spec_options_key_type(const char *key) {
        if (streq(key, "instanceId"))
                return 's';
        if (streq(key, "allowUp") || streq(key, "policyRouting") || streq(key, "persist"))
                return 'b';
        return 0;
}

static int set_cidr(SpecInterface *iface, size_t idx, const char *value, Error *e) {
        struct in_addr net;
        uint8_t plen;
        int r;

        r = cidr_parse(value, &net, &plen);
        if (r == -ERANGE)
                return error_set(e, ERROR_KIND_INVALID_SPEC, r,
                                 "interfaces[%zu].cidr: %s has a prefix length outside 1..32",
                                 idx, value);
        if (r < 0)
                return error_set(e, ERROR_KIND_INVALID_SPEC, r,
                                 "interfaces[%zu].cidr: %s is not an IPv4 network in a.b.c.d/n form",
                                 idx, value);
        if ((ntohl(net.s_addr) & ~prefix_to_mask(plen)) != 0)
                return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                 "interfaces[%zu].cidr: %s is not a network address", idx, value);
        iface->network = net;
        iface->prefixlen = plen;
        return 0;
}

int spec_interface_set_string(SpecInterface *iface, size_t idx, const char *key, const char *value,
                              Error *e) {
        if (strlen(value) > SPEC_STRING_MAX)
                return error_set(e, ERROR_KIND_INVALID_SPEC, -E2BIG,
                                 "interfaces[%zu].%s: longer than %d bytes", idx, key,
                                 SPEC_STRING_MAX);

        if (streq(key, "name")) {
                if (!ifname_valid(value))
                        return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                         "interfaces[%zu].name: '%s' is not a valid interface "
                                         "name (1..15 bytes, no '/', ':', '%%' or whitespace; "
                                         "not '.', '..', 'all' or 'default')",
                                         idx, value);
                strcpy(iface->name, value);
                iface->fields_set |= SPEC_FIELD_NAME;
        } else if (streq(key, "macAddress")) {
                if (mac_parse(value, iface->mac) < 0)
                        return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                         "interfaces[%zu].macAddress: '%s' is not a MAC address "
                                         "of the form xx:xx:xx:xx:xx:xx",
                                         idx, value);
                iface->fields_set |= SPEC_FIELD_MAC;
        } else if (streq(key, "address")) {
                if (ipv4_parse(value, &iface->address) < 0)
                        return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                         "interfaces[%zu].address: '%s' is not an IPv4 address",
                                         idx, value);
                iface->fields_set |= SPEC_FIELD_ADDRESS;
        } else if (streq(key, "cidr")) {
                int r = set_cidr(iface, idx, value, e);
                if (r < 0)
                        return r;
                iface->fields_set |= SPEC_FIELD_CIDR;
        } else
                return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                 "interfaces[%zu].%s: unknown key or not a string", idx, key);
        return 0;
}

int spec_interface_set_uint(SpecInterface *iface, size_t idx, const char *key, uint64_t value,
                            Error *e) {
        if (streq(key, "id")) {
                if (value > SPEC_ID_MAX)
                        return error_set(e, ERROR_KIND_INVALID_SPEC, -ERANGE,
                                         "interfaces[%zu].id: %" PRIu64 " is outside 0..%d", idx,
                                         value, SPEC_ID_MAX);
                iface->id = (uint32_t) value;
                iface->fields_set |= SPEC_FIELD_ID;
        } else if (streq(key, "mtu")) {
                /* The upper end is the device's own maximum, checked against the kernel per NIC,
                 * so that one NIC's too-large MTU does not hold back the others. */
                if (value < SPEC_MTU_MIN)
                        return error_set(e, ERROR_KIND_INVALID_SPEC, -ERANGE,
                                         "interfaces[%zu].mtu: %" PRIu64 " is below the minimum %d",
                                         idx, value, SPEC_MTU_MIN);
                if (value > UINT32_MAX)
                        return error_set(e, ERROR_KIND_INVALID_SPEC, -ERANGE,
                                         "interfaces[%zu].mtu: %" PRIu64 " is not a 32-bit number",
                                         idx, value);
                iface->mtu = (uint32_t) value;
                iface->fields_set |= SPEC_FIELD_MTU;
        } else
                return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                 "interfaces[%zu].%s: unknown key or not an integer", idx, key);
        return 0;
}

int spec_options_set_string(SpecOptions *o, const char *key, const char *value, Error *e) {
        if (!streq(key, "instanceId"))
                return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                 "options.%s: unknown option or not a string", key);
        if (strlen(value) > SPEC_INSTANCE_ID_MAX)
                return error_set(e, ERROR_KIND_INVALID_SPEC, -E2BIG,
                                 "options.instanceId: longer than %d bytes", SPEC_INSTANCE_ID_MAX);
        for (const char *p = value; *p; p++)
                if (!isxdigit((unsigned char) *p) && *p != '-')
                        return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                         "options.instanceId: '%s' is not a UUID", value);
        strcpy(o->instance_id, value);
        return 0;
}

int spec_options_set_bool(SpecOptions *o, const char *key, bool value, Error *e) {
        if (streq(key, "allowUp"))
                o->allow_up = value;
        else if (streq(key, "policyRouting"))
                o->policy_routing = value;
        else if (streq(key, "persist"))
                o->persist = value;
        else
                return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                 "options.%s: unknown option or not a boolean", key);
        return 0;
}

static int validate_required(const SpecInterface *iface, size_t idx, Error *e) {
        static const struct {
                SpecField field;
                const char *key;
        } required[] = {
                { SPEC_FIELD_ID, "id" },
                { SPEC_FIELD_MAC, "macAddress" },
                { SPEC_FIELD_ADDRESS, "address" },
                { SPEC_FIELD_CIDR, "cidr" },
        };

        for (size_t i = 0; i < ELEMENTSOF(required); i++)
                if (!(iface->fields_set & required[i].field))
                        return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                         "interfaces[%zu].%s: required", idx, required[i].key);
        return 0;
}

static int validate_address(const SpecInterface *iface, size_t idx, Error *e) {
        uint32_t addr = ntohl(iface->address.s_addr), net = ntohl(iface->network.s_addr);
        uint32_t mask = prefix_to_mask(iface->prefixlen);
        char a[INET_ADDRSTRLEN], n[INET_ADDRSTRLEN];

        inet_ntop(AF_INET, &iface->address, a, sizeof(a));
        inet_ntop(AF_INET, &iface->network, n, sizeof(n));

        if ((addr & mask) != net)
                return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                 "interfaces[%zu].address: %s is not inside %s/%u", idx, a, n,
                                 iface->prefixlen);
        /* /31 (RFC 3021) and /32 have no network or broadcast address to avoid. */
        if (iface->prefixlen >= 31)
                return 0;
        if (addr == net)
                return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                 "interfaces[%zu].address: %s is the network address of %s/%u",
                                 idx, a, n, iface->prefixlen);
        if (addr == (net | ~mask))
                return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                 "interfaces[%zu].address: %s is the broadcast address of %s/%u",
                                 idx, a, n, iface->prefixlen);
        return 0;
}

static int validate_unique(const Spec *spec, size_t j, Error *e) {
        const SpecInterface *b = &spec->interfaces[j];

        for (size_t i = 0; i < j; i++) {
                const SpecInterface *a = &spec->interfaces[i];
                char s[MAC_STRLEN > INET_ADDRSTRLEN ? MAC_STRLEN : INET_ADDRSTRLEN];

                if (memcmp(a->mac, b->mac, 6) == 0) {
                        mac_format(b->mac, s);
                        return error_set(e, ERROR_KIND_INVALID_SPEC, -EEXIST,
                                         "interfaces[%zu].macAddress: %s is also used by "
                                         "interfaces[%zu]", j, s, i);
                }
                if (a->id == b->id)
                        return error_set(e, ERROR_KIND_INVALID_SPEC, -EEXIST,
                                         "interfaces[%zu].id: %u is also used by interfaces[%zu]",
                                         j, b->id, i);
                if (streq(a->name, b->name))
                        return error_set(e, ERROR_KIND_INVALID_SPEC, -EEXIST,
                                         "interfaces[%zu].name: %s is also used by "
                                         "interfaces[%zu]", j, b->name, i);
                if (a->address.s_addr == b->address.s_addr) {
                        inet_ntop(AF_INET, &b->address, s, sizeof(s));
                        return error_set(e, ERROR_KIND_INVALID_SPEC, -EEXIST,
                                         "interfaces[%zu].address: %s is also used by "
                                         "interfaces[%zu]", j, s, i);
                }
        }
        return 0;
}

int spec_validate(Spec *spec, Error *e) {
        int r;

        for (size_t i = 0; i < spec->n_interfaces; i++) {
                SpecInterface *iface = &spec->interfaces[i];

                r = validate_required(iface, i, e);
                if (r < 0)
                        return r;
                r = validate_address(iface, i, e);
                if (r < 0)
                        return r;
                if (!(iface->fields_set & SPEC_FIELD_NAME))
                        snprintf(iface->name, sizeof(iface->name), "multinic%u", iface->id);
        }

        for (size_t i = 1; i < spec->n_interfaces; i++) {
                r = validate_unique(spec, i, e);
                if (r < 0)
                        return r;
        }
        return 0;
}
