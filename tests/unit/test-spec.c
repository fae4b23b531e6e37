/* Unit tests of the spec field parsers and whole-spec validation. */
#include "spec.h"
#include "tests.h"

static void add(Spec *s, unsigned id, const char *mac, const char *addr, const char *cidr) {
        SpecInterface *i;
        Error e = {};
        size_t idx = s->n_interfaces;

        ASSERT_EQ(spec_add_interface(s, &i, &e), 0);
        ASSERT_EQ(spec_interface_set_uint(i, idx, "id", id, &e), 0);
        ASSERT_EQ(spec_interface_set_string(i, idx, "macAddress", mac, &e), 0);
        ASSERT_EQ(spec_interface_set_string(i, idx, "address", addr, &e), 0);
        ASSERT_EQ(spec_interface_set_string(i, idx, "cidr", cidr, &e), 0);
}

static void test_mac_parse_accepts_any_case_and_only_colons(void) {
        uint8_t mac[6];
        char s[18];

        ASSERT_EQ(mac_parse("FA:16:3E:00:00:01", mac), 0);
        mac_format(mac, s);
        ASSERT_STREQ(s, "fa:16:3e:00:00:01");
        ASSERT_TRUE(mac_parse("fa-16-3e-00-00-01", mac) < 0);
        ASSERT_TRUE(mac_parse("fa163e000001", mac) < 0);
        ASSERT_TRUE(mac_parse("fa:16:3e:00:00", mac) < 0);
        ASSERT_TRUE(mac_parse("fa:16:3e:00:00:0g", mac) < 0);
        ASSERT_TRUE(mac_parse("fa:16:3e:00:00:011", mac) < 0);
}

static void test_ifname_valid_follows_kernel_rules(void) {
        ASSERT_TRUE(ifname_valid("multinic0123456"));
        ASSERT_TRUE(!ifname_valid("multinic01234567"));
        ASSERT_TRUE(!ifname_valid("multinic-storage0"));
        ASSERT_TRUE(!ifname_valid("a/b"));
        ASSERT_TRUE(!ifname_valid("a:b"));
        ASSERT_TRUE(!ifname_valid("a b"));
        ASSERT_TRUE(!ifname_valid("eth%d"));
        ASSERT_TRUE(!ifname_valid(""));
        ASSERT_TRUE(!ifname_valid(".."));
}

static void test_cidr_must_be_a_network_address(void) {
        SpecInterface i = {};
        Error e = {};

        ASSERT_TRUE(spec_interface_set_string(&i, 1, "cidr", "11.11.11.5/24", &e) < 0);
        ASSERT_STREQ(e.message, "interfaces[1].cidr: 11.11.11.5/24 is not a network address");
        e = (Error) {};
        ASSERT_TRUE(spec_interface_set_string(&i, 0, "cidr", "10.0.0.0/33", &e) < 0);
        ASSERT_CONTAINS(e.message, "interfaces[0].cidr");
        e = (Error) {};
        ASSERT_TRUE(spec_interface_set_string(&i, 0, "cidr", "10.0.0.0", &e) < 0);
        e = (Error) {};
        ASSERT_TRUE(spec_interface_set_string(&i, 0, "cidr", "10.0.0.0/", &e) < 0);
        e = (Error) {};
        ASSERT_TRUE(spec_interface_set_string(&i, 0, "cidr", "10.0.0.0/+8", &e) < 0);
        e = (Error) {};
        ASSERT_TRUE(spec_interface_set_string(&i, 0, "cidr", "10.0.0.0/08", &e) < 0);
        ASSERT_EQ(spec_interface_set_string(&i, 0, "cidr", "10.1.0.0/31", &e), 0);
        ASSERT_EQ(i.prefixlen, 31);
}

static void test_address_must_be_a_host_inside_cidr(void) {
        static const struct {
                const char *addr, *cidr, *msg;
        } bad[] = {
                { "10.1.1.11", "10.1.0.0/24", "is not inside 10.1.0.0/24" },
                { "10.1.0.0", "10.1.0.0/24", "is the network address" },
                { "10.1.0.255", "10.1.0.0/24", "is the broadcast address" },
        };

        for (size_t k = 0; k < ELEMENTSOF(bad); k++) {
                Spec s;
                Error e = {};

                spec_init(&s);
                add(&s, 0, "fa:16:3e:00:00:01", bad[k].addr, bad[k].cidr);
                ASSERT_TRUE(spec_validate(&s, &e) < 0);
                ASSERT_EQ(e.kind, ERROR_KIND_INVALID_SPEC);
                ASSERT_CONTAINS(e.message, "interfaces[0].address");
                ASSERT_CONTAINS(e.message, bad[k].msg);
                spec_done(&s);
        }
}

static void test_slash31_has_no_network_or_broadcast(void) {
        Spec s;
        Error e = {};

        spec_init(&s);
        add(&s, 0, "fa:16:3e:00:00:01", "10.1.0.1", "10.1.0.0/31");
        add(&s, 1, "fa:16:3e:00:00:02", "10.1.0.0", "10.1.0.0/31");
        ASSERT_EQ(spec_validate(&s, &e), 0);
        spec_done(&s);
}

static void test_duplicates_are_refused_naming_both_entries(void) {
        Spec s;
        Error e = {};

        spec_init(&s);
        add(&s, 0, "fa:16:3e:00:00:01", "10.1.0.11", "10.1.0.0/24");
        add(&s, 1, "FA:16:3E:00:00:01", "10.1.0.12", "10.1.0.0/24");
        ASSERT_TRUE(spec_validate(&s, &e) < 0);
        ASSERT_STREQ(e.message,
                     "interfaces[1].macAddress: fa:16:3e:00:00:01 is also used by interfaces[0]");
        spec_done(&s);

        e = (Error) {};
        spec_init(&s);
        add(&s, 0, "fa:16:3e:00:00:01", "10.1.0.11", "10.1.0.0/24");
        add(&s, 1, "fa:16:3e:00:00:02", "10.1.0.11", "10.1.0.0/24");
        ASSERT_TRUE(spec_validate(&s, &e) < 0);
        ASSERT_CONTAINS(e.message, "interfaces[1].address: 10.1.0.11 is also used by");
        spec_done(&s);
}

static void test_default_name_clash_with_explicit_name_is_refused(void) {
        Spec s;
        Error e = {};

        spec_init(&s);
        add(&s, 0, "fa:16:3e:00:00:01", "10.1.0.11", "10.1.0.0/24");
        add(&s, 1, "fa:16:3e:00:00:02", "10.1.0.12", "10.1.0.0/24");
        ASSERT_EQ(spec_interface_set_string(&s.interfaces[1], 1, "name", "multinic0", &e), 0);
        ASSERT_TRUE(spec_validate(&s, &e) < 0);
        ASSERT_CONTAINS(e.message, "interfaces[1].name: multinic0 is also used");
        spec_done(&s);
}

static void test_required_fields_and_ranges(void) {
        Spec s;
        SpecInterface *i;
        Error e = {};

        spec_init(&s);
        ASSERT_EQ(spec_add_interface(&s, &i, &e), 0);
        ASSERT_EQ(spec_interface_set_uint(i, 0, "id", 0, &e), 0);
        ASSERT_TRUE(spec_validate(&s, &e) < 0);
        ASSERT_STREQ(e.message, "interfaces[0].macAddress: required");
        e = (Error) {};
        ASSERT_TRUE(spec_interface_set_uint(i, 0, "mtu", 60, &e) < 0);
        ASSERT_STREQ(e.message, "interfaces[0].mtu: 60 is below the minimum 68");
        e = (Error) {};
        /* Too large is the device's call: checked per NIC against its maximum. */
        ASSERT_EQ(spec_interface_set_uint(i, 0, "mtu", 70000, &e), 0);
        e = (Error) {};
        ASSERT_TRUE(spec_interface_set_uint(i, 0, "id", 5000, &e) < 0);
        ASSERT_CONTAINS(e.message, "interfaces[0].id");
        e = (Error) {};
        ASSERT_TRUE(spec_interface_set_string(i, 0, "colour", "red", &e) < 0);
        ASSERT_CONTAINS(e.message, "interfaces[0].colour");
        spec_done(&s);
}

static void test_default_name_is_multinic_id(void) {
        Spec s;
        Error e = {};

        spec_init(&s);
        add(&s, 7, "fa:16:3e:00:00:01", "10.1.0.11", "10.1.0.0/24");
        ASSERT_EQ(spec_validate(&s, &e), 0);
        ASSERT_STREQ(s.interfaces[0].name, "multinic7");
        ASSERT_TRUE(s.options.policy_routing);
        ASSERT_TRUE(s.options.persist);
        spec_done(&s);
}

int main(void) {
        RUN_TEST(test_mac_parse_accepts_any_case_and_only_colons);
        RUN_TEST(test_ifname_valid_follows_kernel_rules);
        RUN_TEST(test_cidr_must_be_a_network_address);
        RUN_TEST(test_address_must_be_a_host_inside_cidr);
        RUN_TEST(test_slash31_has_no_network_or_broadcast);
        RUN_TEST(test_duplicates_are_refused_naming_both_entries);
        RUN_TEST(test_default_name_clash_with_explicit_name_is_refused);
        RUN_TEST(test_required_fields_and_ranges);
        RUN_TEST(test_default_name_is_multinic_id);
        return 0;
}
