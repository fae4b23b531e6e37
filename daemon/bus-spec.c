/* D-Bus to Spec: every key's variant type is checked before its value is read. */
#include "bus-spec.h"

static int read_value(sd_bus_message *m, char type, const char *path, const char *key,
                      SpecInterface *iface, size_t idx, SpecOptions *o, Error *e) {
        const char *s;
        uint32_t u;
        int b, r;

        switch (type) {
        case 's':
                r = sd_bus_message_read(m, "v", "s", &s);
                if (r < 0)
                        return r;
                return iface ? spec_interface_set_string(iface, idx, key, s, e)
                             : spec_options_set_string(o, key, s, e);
        case 'u':
                r = sd_bus_message_read(m, "v", "u", &u);
                if (r < 0)
                        return r;
                return spec_interface_set_uint(iface, idx, key, u, e);
        case 'b':
                r = sd_bus_message_read(m, "v", "b", &b);
                if (r < 0)
                        return r;
                return spec_options_set_bool(o, key, b, e);
        default:
                return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL, "%s.%s: unknown key", path,
                                 key);
        }
}

/* One dictionary: interfaces[idx] when iface is set, else the options. */
static bool key_seen(const char *const *seen, size_t n, const char *key) {
        for (size_t i = 0; i < n; i++)
                if (streq(seen[i], key))
                        return true;
        return false;
}

static int read_dict(sd_bus_message *m, const char *path, SpecInterface *iface, size_t idx,
                     SpecOptions *o, Error *e) {
        const char *seen[8]; /* every known key at most once, so never more than this */
        size_t n_seen = 0;
        int r;

        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key, *contents;
                char want, type;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                want = iface ? spec_interface_key_type(key) : spec_options_key_type(key);
                if (!want)
                        return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                         "%s.%s: unknown key", path, key);
                if (key_seen(seen, n_seen, key) || n_seen >= ELEMENTSOF(seen))
                        return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                         "%s.%s: given more than once", path, key);
                seen[n_seen++] = key;
                r = sd_bus_message_peek_type(m, &type, &contents);
                if (r < 0)
                        return r;
                if (!contents || contents[0] != want || contents[1] != 0)
                        return error_set(e, ERROR_KIND_INVALID_SPEC, -EINVAL,
                                         "%s.%s: must have D-Bus type %c, not %s", path, key,
                                         want, contents ? contents : "?");
                r = read_value(m, want, path, key, iface, idx, o, e);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        return r;
}

static int read_interfaces(sd_bus_message *m, Spec *spec, Error *e) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "a{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'a', "{sv}")) > 0) {
                SpecInterface *iface;
                char path[32];
                size_t idx = spec->n_interfaces;

                r = spec_add_interface(spec, &iface, e);
                if (r < 0)
                        return r;
                snprintf(path, sizeof(path), "interfaces[%zu]", idx);
                r = read_dict(m, path, iface, idx, NULL, e);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

int bus_read_spec(sd_bus_message *m, bool with_interfaces, Spec *spec, Error *e) {
        int r;

        if (with_interfaces) {
                r = read_interfaces(m, spec, e);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        r = read_dict(m, "options", NULL, 0, &spec->options, e);
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        return with_interfaces ? spec_validate(spec, e) : 0;
}
