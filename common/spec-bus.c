/* Spec to D-Bus, with the exact types the D-Bus API documents for each key. */
#include <arpa/inet.h>
#include <stdio.h>

#include "spec-bus.h"

static int append_interface(sd_bus_message *m, const SpecInterface *iface) {
        char mac[MAC_STRLEN], address[INET_ADDRSTRLEN], network[INET_ADDRSTRLEN];
        char cidr[INET_ADDRSTRLEN + 4];
        int r;

        mac_format(iface->mac, mac);
        inet_ntop(AF_INET, &iface->address, address, sizeof(address));
        inet_ntop(AF_INET, &iface->network, network, sizeof(network));
        snprintf(cidr, sizeof(cidr), "%s/%u", network, iface->prefixlen);

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "{sv}{sv}{sv}{sv}", "id", "u", iface->id, "macAddress", "s",
                                  mac, "address", "s", address, "cidr", "s", cidr);
        if (r < 0)
                return r;
        /* Before spec_validate() a name may still be unset: the daemon then picks multinic<id>. */
        if (iface->name[0]) {
                r = sd_bus_message_append(m, "{sv}", "name", "s", iface->name);
                if (r < 0)
                        return r;
        }
        if (iface->fields_set & SPEC_FIELD_MTU) {
                r = sd_bus_message_append(m, "{sv}", "mtu", "u", iface->mtu);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

int spec_bus_append_options(sd_bus_message *m, const SpecOptions *options) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        if (options->instance_id[0]) {
                r = sd_bus_message_append(m, "{sv}", "instanceId", "s", options->instance_id);
                if (r < 0)
                        return r;
        }
        /* sd-bus reads a "b" argument as int: pass exactly 0 or 1. */
        r = sd_bus_message_append(m, "{sv}{sv}{sv}", "allowUp", "b", (int) options->allow_up,
                                  "policyRouting", "b", (int) options->policy_routing, "persist",
                                  "b", (int) options->persist);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

int spec_bus_append(sd_bus_message *m, const Spec *spec) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "a{sv}");
        if (r < 0)
                return r;
        for (size_t i = 0; i < spec->n_interfaces; i++) {
                r = append_interface(m, &spec->interfaces[i]);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return spec_bus_append_options(m, &spec->options);
}
