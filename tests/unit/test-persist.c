/* Unit tests of the persistence renderers and the backend choice: pure text, scratch files. */
#include <arpa/inet.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <sys/stat.h>

#include "fileio.h"
#include "persist.h"
#include "tests.h"

static struct in_addr ip(const char *s) {
        struct in_addr a;

        ASSERT_EQ(inet_pton(AF_INET, s, &a), 1);
        return a;
}

/* The sample node's first NIC as Apply records it, policy routing on. */
static ManagedNic sample_nic(void) {
        ManagedNic m = { .id = 0, .mtu = 1450, .name = "multinic0", .original_name = "ens4",
                         .has_address = true, .has_rule = true, .has_route = true,
                         .mac = { 0xfa, 0x16, 0x3e, 0x1c, 0x1a, 0x6e } };

        m.address = (AddrInfo) { .local = ip("11.11.11.37"), .prefixlen = 24,
                                 .flags = IFA_F_NOPREFIXROUTE };
        m.rule = (RuleInfo) { .priority = 1000, .table = 100, .src = ip("11.11.11.37"),
                              .src_len = 32, .action = FR_ACT_TO_TBL };
        m.route = (RouteInfo) { .table = 100, .dst = ip("11.11.11.0"), .dst_len = 24,
                                .prefsrc = ip("11.11.11.37"), .scope = RT_SCOPE_LINK };
        return m;
}

static void test_netplan_file_matches_runtime_and_quotes_the_mac(void) {
        ManagedNic m = sample_nic();
        char *text;

        ASSERT_EQ(render_netplan(&m, &text), 0);
        ASSERT_STREQ(text, PERSIST_MARKER "\n"
                           "network:\n"
                           "  version: 2\n"
                           "  ethernets:\n"
                           "    multinic0:\n"
                           "      match:\n"
                           "        macaddress: \"fa:16:3e:1c:1a:6e\"\n"
                           "      set-name: multinic0\n"
                           "      mtu: 1450\n"
                           "      dhcp4: false\n"
                           "      dhcp6: false\n"
                           "      addresses:\n"
                           "        - \"11.11.11.37/24\"\n"
                           "      routes:\n"
                           "        - to: \"11.11.11.0/24\"\n"
                           "          from: \"11.11.11.37\"\n"
                           "          scope: link\n"
                           "          table: 100\n"
                           "      routing-policy:\n"
                           "        - from: \"11.11.11.37\"\n"
                           "          table: 100\n"
                           "          priority: 1000\n");
        free(text);
}

static void test_netplan_without_policy_routing_has_only_the_address(void) {
        ManagedNic m = sample_nic();
        char *text;

        m.has_rule = m.has_route = false;
        m.mtu = 0;
        ASSERT_EQ(render_netplan(&m, &text), 0);
        ASSERT_TRUE(!strstr(text, "routes:") && !strstr(text, "routing-policy:"));
        ASSERT_TRUE(!strstr(text, "mtu:"));
        ASSERT_CONTAINS(text, "        - \"11.11.11.37/24\"\n");
        free(text);
}

static void test_keyfile_never_takes_the_default_route_and_keeps_routes_in_the_table(void) {
        ManagedNic m = sample_nic();
        char *text, uuid[37];

        keyfile_uuid(m.mac, uuid);
        ASSERT_EQ(render_keyfile(&m, &text), 0);
        ASSERT_TRUE(strncmp(text, PERSIST_MARKER "\n[connection]\n",
                            strlen(PERSIST_MARKER) + 14) == 0);
        ASSERT_CONTAINS(text, uuid);
        ASSERT_CONTAINS(text, "interface-name=multinic0\n");
        ASSERT_CONTAINS(text, "[ethernet]\nmac-address=fa:16:3e:1c:1a:6e\nmtu=1450\n");
        ASSERT_CONTAINS(text, "address1=11.11.11.37/24\nnever-default=true\nroute-table=100\n");
        ASSERT_CONTAINS(text, "route1=11.11.11.0/24\n"
                              "route1_options=scope=253,src=11.11.11.37,table=100\n");
        ASSERT_CONTAINS(text, "routing-rule1=priority 1000 from 11.11.11.37 table 100\n");
        ASSERT_CONTAINS(text, "[ipv6]\nmethod=disabled\n");
        free(text);
}

static void test_keyfile_uuid_is_stable_per_mac(void) {
        uint8_t a[6] = { 0xfa, 0x16, 0x3e, 0, 0, 1 }, b[6] = { 0xfa, 0x16, 0x3e, 0, 0, 2 };
        char u1[37], u2[37], u3[37];

        keyfile_uuid(a, u1);
        keyfile_uuid(a, u2);
        keyfile_uuid(b, u3);
        ASSERT_STREQ(u1, u2);
        ASSERT_TRUE(!streq(u1, u3));
        ASSERT_EQ(u1[14], '5'); /* name-based, SHA-1 */
}

static void test_link_file_guards_against_stacked_devices_by_driver(void) {
        ManagedNic m = sample_nic();
        char *text;

        ASSERT_EQ(render_link(&m, "virtio_net", &text), 0);
        ASSERT_STREQ(text, PERSIST_MARKER "\n[Match]\nMACAddress=fa:16:3e:1c:1a:6e\n"
                           "Driver=virtio_net\n\n[Link]\nName=multinic0\nMTUBytes=1450\n");
        free(text);
}

static void test_link_file_driver_with_spaces_or_globs_stays_one_pattern(void) {
        ManagedNic m = sample_nic();
        char *text;

        ASSERT_EQ(render_link(&m, "odd drv*[x]", &text), 0);
        ASSERT_CONTAINS(text, "\nDriver=odd?drv??x?\n");
        free(text);
}

static void test_link_file_of_unknown_driver_falls_back_to_type_ether(void) {
        ManagedNic m = sample_nic();
        char *text;

        m.mtu = 0;
        ASSERT_EQ(render_link(&m, NULL, &text), 0);
        ASSERT_STREQ(text, PERSIST_MARKER "\n[Match]\nMACAddress=fa:16:3e:1c:1a:6e\n"
                           "Type=ether\n\n[Link]\nName=multinic0\n");
        free(text);
}

/* A NIC not there now (its port detached) keeps the driver learned while it was, so its .link
 * keeps its guard; no link is named like it where the unit tests run. */
static void test_absent_nic_keeps_the_driver_it_had(void) {
        State before = {}, now = {};
        ManagedNic a = sample_nic(), b = sample_nic();

        snprintf(a.name, sizeof(a.name), "mntest-absent");
        snprintf(a.driver, sizeof(a.driver), "virtio_net");
        b = a;
        b.driver[0] = 0;
        b.mac[5] ^= 1; /* another NIC, never learned */
        ASSERT_EQ(state_append(&before, &a), 0);
        a.driver[0] = 0;
        ASSERT_EQ(state_append(&now, &a), 0);
        ASSERT_EQ(state_append(&now, &b), 0);

        persist_learn_drivers(&now, &before);

        ASSERT_STREQ(now.nics[0].driver, "virtio_net");
        ASSERT_STREQ(now.nics[1].driver, "");
        state_done(&before);
        state_done(&now);
}

static void test_sysctl_file_lists_every_managed_nic(void) {
        State s = {};
        ManagedNic a = sample_nic(), b = sample_nic();
        Config c;
        char *text;

        config_init(&c);
        snprintf(b.name, sizeof(b.name), "storage.10");
        ASSERT_EQ(state_append(&s, &a), 0);
        ASSERT_EQ(state_append(&s, &b), 0);
        ASSERT_EQ(render_sysctl(&s, &c, &text), 0);
        ASSERT_CONTAINS(text, "net/ipv4/conf/multinic0/arp_ignore = 1\n");
        ASSERT_CONTAINS(text, "net/ipv4/conf/multinic0/arp_announce = 2\n");
        ASSERT_CONTAINS(text, "net/ipv4/conf/storage.10/rp_filter = 2\n");
        free(text);
        state_done(&s);
}

static void test_render_picks_files_per_backend(void) {
        State s = {};
        ManagedNic a = sample_nic();
        Config c;
        PersistSet set;

        config_init(&c);
        ASSERT_EQ(state_append(&s, &a), 0);
        ASSERT_EQ(persist_render(PERSIST_NETPLAN, &s, &c, &set), 0);
        ASSERT_EQ(set.n_files, 2);
        ASSERT_STREQ(set.files[0].path, "/etc/netplan/90-multinic-multinic0.yaml");
        ASSERT_EQ(set.files[0].mode, 0600);
        ASSERT_STREQ(set.files[1].path, "/etc/sysctl.d/90-multinic.conf");
        persist_set_done(&set);

        ASSERT_EQ(persist_render(PERSIST_NETWORKMANAGER, &s, &c, &set), 0);
        ASSERT_EQ(set.n_files, 3);
        ASSERT_STREQ(set.files[0].path,
                     "/etc/NetworkManager/system-connections/multinic-multinic0.nmconnection");
        ASSERT_EQ(set.files[0].mode, 0600);
        ASSERT_STREQ(set.files[1].path, "/etc/systemd/network/10-multinic-multinic0.link");
        /* The driver not learned: the fallback guard; learned: Driver=. */
        ASSERT_CONTAINS(set.files[1].content, "\nType=ether\n");
        persist_set_done(&set);
        snprintf(s.nics[0].driver, sizeof(s.nics[0].driver), "virtio_net");
        ASSERT_EQ(persist_render(PERSIST_NETWORKMANAGER, &s, &c, &set), 0);
        ASSERT_CONTAINS(set.files[1].content, "\nDriver=virtio_net\n");
        persist_set_done(&set);

        ASSERT_EQ(persist_render(PERSIST_NONE, &s, &c, &set), 0);
        ASSERT_EQ(set.n_files, 0);
        persist_set_done(&set);
        state_done(&s);
}

static void write_os_release(const char *root, const char *text, bool netplan_dir) {
        char path[256];

        snprintf(path, sizeof(path), "%s/etc/netplan", root);
        ASSERT_EQ(mkdir_parents(path, 0755), 0);
        if (!netplan_dir)
                ASSERT_EQ(rmdir(path), 0);
        snprintf(path, sizeof(path), "%s/etc/os-release", root);
        ASSERT_EQ(write_file_atomic(path, text, strlen(text), 0644), 0);
}

static void remove_tree(const char *root) {
        static const char *const paths[] = { "/etc/os-release", "/etc/netplan", "/etc", "" };
        char path[256];

        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                snprintf(path, sizeof(path), "%s%s", root, paths[i]);
                (void) remove(path);
        }
}

static void test_backend_follows_os_release(void) {
        static const struct {
                const char *os_release;
                bool netplan_dir;
                PersistBackend want;
        } cases[] = {
                { "NAME=\"Ubuntu\"\nID=ubuntu\nID_LIKE=debian\n", true, PERSIST_NETPLAN },
                { "ID=debian\n", true, PERSIST_NETPLAN },
                { "ID=debian\n", false, PERSIST_NONE },
                { "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n", false, PERSIST_NETWORKMANAGER },
                { "ID=almalinux\n", false, PERSIST_NETWORKMANAGER },
                { "ID=ol\n", false, PERSIST_NETWORKMANAGER },
                { "ID=somethingelse\nID_LIKE=fedora\n", false, PERSIST_NETWORKMANAGER },
                { "ID=arch\n", true, PERSIST_NONE },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char root[] = "/tmp/test-persist.XXXXXX";

                ASSERT_TRUE(mkdtemp(root) != NULL);
                write_os_release(root, cases[i].os_release, cases[i].netplan_dir);
                ASSERT_EQ(persist_backend_detect(root), cases[i].want);
                remove_tree(root);
        }
}

static void test_temporary_file_names_give_their_target(void) {
        char target[64];

        ASSERT_TRUE(atomic_temp_target(".#multinic-a.b.nmconnection.4242", target, sizeof(target)));
        ASSERT_STREQ(target, "multinic-a.b.nmconnection");
        ASSERT_TRUE(!atomic_temp_target(".#multinic-a.nmconnection", target, sizeof(target)));
        ASSERT_TRUE(!atomic_temp_target(".#multinic-a.nmconnection.", target, sizeof(target)));
        ASSERT_TRUE(!atomic_temp_target(".#multinic-a.nmconnection.42x", target, sizeof(target)));
        ASSERT_TRUE(!atomic_temp_target(".#.42", target, sizeof(target)));
        ASSERT_TRUE(!atomic_temp_target("x.#multinic-a.yaml.42", target, sizeof(target)));
        ASSERT_TRUE(!atomic_temp_target(".#multinic-a.yaml.42", target, 8));
}

int main(void) {
        RUN_TEST(test_netplan_file_matches_runtime_and_quotes_the_mac);
        RUN_TEST(test_netplan_without_policy_routing_has_only_the_address);
        RUN_TEST(test_keyfile_never_takes_the_default_route_and_keeps_routes_in_the_table);
        RUN_TEST(test_keyfile_uuid_is_stable_per_mac);
        RUN_TEST(test_link_file_guards_against_stacked_devices_by_driver);
        RUN_TEST(test_link_file_driver_with_spaces_or_globs_stays_one_pattern);
        RUN_TEST(test_link_file_of_unknown_driver_falls_back_to_type_ether);
        RUN_TEST(test_absent_nic_keeps_the_driver_it_had);
        RUN_TEST(test_sysctl_file_lists_every_managed_nic);
        RUN_TEST(test_render_picks_files_per_backend);
        RUN_TEST(test_backend_follows_os_release);
        RUN_TEST(test_temporary_file_names_give_their_target);
        return 0;
}
