/* Unit tests of reading a Spec from JSON and YAML: plain specs, whole CRs and their errors. */
#include <arpa/inet.h>

#include "cjson-util.h"
#include "spec-json.h"
#include "tests.h"
#include "yaml-json.h"

static const char *sample_path;

#define IFACE0                                                                                     \
        "{\"id\": 0, \"macAddress\": \"FA:16:3E:1C:1A:6E\", \"address\": \"11.11.11.37\", "   \
        "\"cidr\": \"11.11.11.0/24\"}"
#define IFACE1                                                                                     \
        "{\"id\": 1, \"macAddress\": \"fa:16:3e:0a:17:3b\", \"address\": \"11.11.11.148\", "  \
        "\"cidr\": \"11.11.11.0/24\"}"

/* Reads text (JSON or YAML) into spec; returns what spec_from_json and spec_validate say. */
static int load(const char *text, Spec *spec, Error *e) {
        _cleanup_(cJSON_Deletep) cJSON *json = cJSON_Parse(text);
        char err[256];
        int r;

        if (!json)
                json = yaml_to_json(text, strlen(text), err, sizeof(err));
        ASSERT_TRUE(json);
        spec_init(spec);
        r = spec_from_json(json, spec, e);
        if (r < 0)
                return r;
        return spec_validate(spec, e);
}

static void assert_refused(const char *text, const char *message) {
        Spec spec;
        Error e = {};

        ASSERT_TRUE(load(text, &spec, &e) < 0);
        ASSERT_EQ(e.kind, ERROR_KIND_INVALID_SPEC);
        ASSERT_STREQ(e.message, message);
        spec_done(&spec);
}

static void assert_sample_interface(const SpecInterface *i, unsigned id, const char *mac,
                                    const char *address) {
        char s[INET_ADDRSTRLEN];
        char m[MAC_STRLEN];
        char name[IFNAMSIZ];

        snprintf(name, sizeof(name), "multinic%u", id);
        mac_format(i->mac, m);
        ASSERT_EQ(i->id, id);
        ASSERT_STREQ(i->name, name);
        ASSERT_STREQ(m, mac);
        ASSERT_STREQ(inet_ntop(AF_INET, &i->address, s, sizeof(s)), address);
        ASSERT_STREQ(inet_ntop(AF_INET, &i->network, s, sizeof(s)), "11.11.11.0");
        ASSERT_EQ(i->prefixlen, 24);
        ASSERT_EQ(i->mtu, 1450);
}

static void test_plain_spec_fills_interfaces_and_options(void) {
        Spec spec;
        Error e = {};

        ASSERT_EQ(load("{\"interfaces\": [" IFACE0 ", " IFACE1 "], \"options\": "
                       "{\"instanceId\": \"B4975C5F-50bb-479f-9e7b-a430815ae852\", "
                       "\"allowUp\": true, \"policyRouting\": false, \"persist\": false}}",
                       &spec, &e),
                  0);
        ASSERT_EQ(spec.n_interfaces, 2);
        ASSERT_STREQ(spec.interfaces[0].name, "multinic0");
        ASSERT_EQ(spec.interfaces[0].mac[0], 0xfa);
        ASSERT_TRUE(!(spec.interfaces[0].fields_set & SPEC_FIELD_MTU));
        ASSERT_STREQ(spec.options.instance_id, "B4975C5F-50bb-479f-9e7b-a430815ae852");
        ASSERT_TRUE(spec.options.allow_up);
        ASSERT_TRUE(!spec.options.policy_routing);
        ASSERT_TRUE(!spec.options.persist);
        spec_done(&spec);
}

static void test_plain_spec_without_options_keeps_defaults(void) {
        Spec spec;
        Error e = {};

        ASSERT_EQ(load("{\"interfaces\": []}", &spec, &e), 0);
        ASSERT_EQ(spec.n_interfaces, 0);
        ASSERT_TRUE(spec.options.policy_routing);
        ASSERT_TRUE(spec.options.persist);
        ASSERT_TRUE(!spec.options.allow_up);
        spec_done(&spec);
}

static void test_whole_cr_takes_spec_and_instance_id_and_ignores_the_rest(void) {
        Spec spec;
        Error e = {};

        ASSERT_EQ(load("{\"apiVersion\": \"multinic.io/v1alpha1\","
                       " \"kind\": \"MultiNicNodeConfig\","
                       " \"metadata\": {\"name\": \"n1\", \"creationTimestamp\": null},"
                       " \"spec\": {\"nodeName\": \"n1\", \"instanceId\": \"b4975c5f-50bb\","
                       " \"interfaces\": [" IFACE1 "]}, \"status\": {\"state\": \"Configured\"}}",
                       &spec, &e),
                  0);
        ASSERT_EQ(spec.n_interfaces, 1);
        ASSERT_EQ(spec.interfaces[0].id, 1);
        ASSERT_STREQ(spec.options.instance_id, "b4975c5f-50bb");
        spec_done(&spec);
}

static char *read_file(const char *path) {
        FILE *f = fopen(path, "re");
        char *buf = calloc(1, 65536);
        size_t n;

        ASSERT_TRUE(f && buf);
        n = fread(buf, 1, 65535, f);
        ASSERT_TRUE(n > 0 && n < 65535);
        fclose(f);
        return buf;
}

static void test_sample_cr_file_is_a_valid_spec(void) {
        _cleanup_(freep) char *text = NULL;
        Spec spec;
        Error e = {};

        ASSERT_TRUE(sample_path);
        text = read_file(sample_path);
        ASSERT_EQ(load(text, &spec, &e), 0);
        ASSERT_EQ(spec.n_interfaces, 2);
        assert_sample_interface(&spec.interfaces[0], 0, "fa:16:3e:1c:1a:6e", "11.11.11.37");
        assert_sample_interface(&spec.interfaces[1], 1, "fa:16:3e:0a:17:3b", "11.11.11.148");
        ASSERT_STREQ(spec.options.instance_id, "b4975c5f-50bb-479f-9e7b-a430815ae852");
        spec_done(&spec);
}

/* The way operators write it without thinking about YAML 1.1: unquoted MACs. */
static void test_yaml_cr_with_unquoted_macs_reads_them_as_strings(void) {
        Spec spec;
        Error e = {};
        char mac[MAC_STRLEN];

        ASSERT_EQ(load("apiVersion: multinic.io/v1alpha1\nkind: MultiNicNodeConfig\n"
                       "spec:\n  interfaces:\n"
                       "    - id: 0\n      macAddress: 10:20:30:40:50:60\n"
                       "      address: 11.11.11.37\n      cidr: 11.11.11.0/24\n      mtu: 1450\n",
                       &spec, &e),
                  0);
        mac_format(spec.interfaces[0].mac, mac);
        ASSERT_STREQ(mac, "10:20:30:40:50:60");
        ASSERT_EQ(spec.interfaces[0].mtu, 1450);
        spec_done(&spec);
}

static void test_wrong_types_name_the_field(void) {
        assert_refused("{\"interfaces\": [" IFACE0 ", " IFACE1 ", {\"id\": 2, \"mtu\": \"1450\"}]}",
                       "interfaces[2].mtu: must be an integer, not the string \"1450\"");
        assert_refused("{\"interfaces\": [{\"id\": 1.5}]}",
                       "interfaces[0].id: must be an integer, not 1.5");
        assert_refused("{\"interfaces\": [{\"id\": -1}]}", "interfaces[0].id: -1 is negative");
        assert_refused("{\"interfaces\": [{\"id\": 1e300}]}",
                       "interfaces[0].id: 1e+300 is too large");
        assert_refused("{\"interfaces\": [{\"macAddress\": 12}]}",
                       "interfaces[0].macAddress: must be a string, not 12");
        assert_refused("{\"interfaces\": [{\"name\": null}]}",
                       "interfaces[0].name: must be a string, not null");
        assert_refused("{\"interfaces\": [[]]}", "interfaces[0]: must be an object, not an array");
        assert_refused("{\"interfaces\": {}}", "interfaces: must be an array, not an object");
        assert_refused("{\"interfaces\": [], \"options\": {\"allowUp\": \"yes\"}}",
                       "options.allowUp: must be true or false, not the string \"yes\"");
        assert_refused("{\"interfaces\": [], \"options\": {\"instanceId\": 5}}",
                       "options.instanceId: must be a string, not 5");
        assert_refused("[]", "document: must be an object, not an array");
}

static void test_quoted_yaml_numbers_are_refused_as_strings(void) {
        assert_refused("interfaces:\n  - id: \"0\"\n",
                       "interfaces[0].id: must be an integer, not the string \"0\"");
}

static void test_unknown_and_repeated_keys_are_refused(void) {
        assert_refused("{\"interfaces\": [{\"id\": 0, \"colour\": \"red\"}]}",
                       "interfaces[0].colour: unknown key (expected id, name, macAddress, "
                       "address, cidr or mtu)");
        assert_refused("{\"interfaces\": [], \"options\": {\"dryRun\": true}}",
                       "options.dryRun: unknown key (expected instanceId, allowUp, "
                       "policyRouting or persist)");
        assert_refused("{\"interfaces\": [], \"interface\": []}",
                       "interface: unknown key (expected interfaces or options)");
        assert_refused("{\"interfaces\": [{\"id\": 0, \"id\": 1}]}",
                       "interfaces[0].id: given more than once");
        assert_refused("{\"options\": {}}", "interfaces: required");
}

static void test_cr_errors_name_fields_from_the_document_root(void) {
        assert_refused("{\"apiVersion\": \"multinic.io/v1\", \"kind\": \"MultiNicNodeConfig\", "
                       "\"spec\": {\"interfaces\": []}}",
                       "apiVersion: must be multinic.io/v1alpha1, not the string "
                       "\"multinic.io/v1\"");
        assert_refused("{\"apiVersion\": \"multinic.io/v1alpha1\", \"kind\": \"Pod\", "
                       "\"spec\": {\"interfaces\": []}}",
                       "kind: must be MultiNicNodeConfig, not the string \"Pod\"");
        assert_refused("{\"kind\": \"MultiNicNodeConfig\", \"spec\": {\"interfaces\": []}}",
                       "apiVersion: required");
        assert_refused("apiVersion: multinic.io/v1alpha1\nkind: MultiNicNodeConfig\nspec:\n"
                       "  interfaces:\n    - id: 0\n      mtu: 1450.5\n",
                       "spec.interfaces[0].mtu: must be an integer, not the string \"1450.5\"");
        assert_refused("apiVersion: multinic.io/v1alpha1\nkind: MultiNicNodeConfig\nspec:\n"
                       "  instanceId: not-a-uuid\n  interfaces: []\n",
                       "spec.instanceId: 'not-a-uuid' is not a UUID");
        assert_refused("apiVersion: multinic.io/v1alpha1\nkind: MultiNicNodeConfig\nspec:\n"
                       "  interfaces: []\n  options: {}\n",
                       "spec.options: unknown key (expected nodeName, instanceId or interfaces)");
        assert_refused("apiVersion: multinic.io/v1alpha1\nkind: MultiNicNodeConfig\nspec:\n"
                       "  nodeName: n1\n",
                       "spec.interfaces: required");
        assert_refused("apiVersion: multinic.io/v1alpha1\nkind: MultiNicNodeConfig\nspec: []\n",
                       "spec: must be an object, not an array");
}

static void test_cross_field_checks_are_left_to_spec_validate(void) {
        _cleanup_(cJSON_Deletep) cJSON *json = cJSON_Parse("{\"interfaces\": [{\"id\": 0}]}");
        Spec spec;
        Error e = {};

        spec_init(&spec);
        ASSERT_EQ(spec_from_json(json, &spec, &e), 0);
        ASSERT_EQ(spec.n_interfaces, 1);
        ASSERT_TRUE(spec_validate(&spec, &e) < 0);
        ASSERT_STREQ(e.message, "interfaces[0].macAddress: required");
        spec_done(&spec);
}

static void test_field_values_are_checked_by_the_shared_setters(void) {
        assert_refused("{\"interfaces\": [{\"cidr\": \"11.11.11.5/24\"}]}",
                       "interfaces[0].cidr: 11.11.11.5/24 is not a network address");
        assert_refused("{\"interfaces\": [{\"id\": 5000}]}",
                       "interfaces[0].id: 5000 is outside 0..1023");
}

static void test_spec_to_json_reads_back_to_the_same_spec(void) {
        static const char text[] =
                "{\"interfaces\":[{\"id\":0,\"macAddress\":\"FA:16:3E:00:00:01\","
                "\"address\":\"10.1.0.11\",\"cidr\":\"10.1.0.0/24\",\"mtu\":1450},"
                "{\"id\":1,\"name\":\"storage\",\"macAddress\":\"fa:16:3e:00:00:02\","
                "\"address\":\"10.1.0.12\",\"cidr\":\"10.1.0.0/24\"}],"
                "\"options\":{\"instanceId\":\"b4975c5f-50bb-479f-9e7b-a430815ae852\","
                "\"allowUp\":true,\"policyRouting\":false}}";
        cJSON *in = cJSON_Parse(text), *out;
        Spec a, b;
        Error e = {};

        spec_init(&a);
        spec_init(&b);
        ASSERT_EQ(spec_from_json(in, &a, &e), 0);
        ASSERT_EQ(spec_validate(&a, &e), 0);
        out = spec_to_json(&a);
        ASSERT_TRUE(out != NULL);
        ASSERT_EQ(spec_from_json(out, &b, &e), 0);
        ASSERT_EQ(spec_validate(&b, &e), 0);
        ASSERT_EQ(b.n_interfaces, 2);
        ASSERT_TRUE(memcmp(&a.options, &b.options, sizeof(a.options)) == 0);
        for (size_t i = 0; i < 2; i++) {
                ASSERT_STREQ(a.interfaces[i].name, b.interfaces[i].name);
                ASSERT_EQ(a.interfaces[i].fields_set, b.interfaces[i].fields_set);
                ASSERT_EQ(a.interfaces[i].mtu, b.interfaces[i].mtu);
                ASSERT_TRUE(memcmp(a.interfaces[i].mac, b.interfaces[i].mac, 6) == 0);
                ASSERT_EQ(a.interfaces[i].network.s_addr, b.interfaces[i].network.s_addr);
        }
        cJSON_Delete(in);
        cJSON_Delete(out);
        spec_done(&a);
        spec_done(&b);
}

int main(int argc, char *argv[]) {
        sample_path = argc > 1 ? argv[1] : getenv("MULTINIC_SAMPLE_CR");

        RUN_TEST(test_plain_spec_fills_interfaces_and_options);
        RUN_TEST(test_spec_to_json_reads_back_to_the_same_spec);
        RUN_TEST(test_plain_spec_without_options_keeps_defaults);
        RUN_TEST(test_whole_cr_takes_spec_and_instance_id_and_ignores_the_rest);
        RUN_TEST(test_sample_cr_file_is_a_valid_spec);
        RUN_TEST(test_yaml_cr_with_unquoted_macs_reads_them_as_strings);
        RUN_TEST(test_wrong_types_name_the_field);
        RUN_TEST(test_quoted_yaml_numbers_are_refused_as_strings);
        RUN_TEST(test_unknown_and_repeated_keys_are_refused);
        RUN_TEST(test_cr_errors_name_fields_from_the_document_root);
        RUN_TEST(test_cross_field_checks_are_left_to_spec_validate);
        RUN_TEST(test_field_values_are_checked_by_the_shared_setters);
        return 0;
}
