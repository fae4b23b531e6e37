/* Unit tests of the YAML reader: scalar typing, structure, errors. */
#include "cjson-util.h"
#include "tests.h"
#include "yaml-json.h"

static cJSON *parse(const char *text) {
        char err[256] = "";
        cJSON *json = yaml_to_json(text, strlen(text), err, sizeof(err));

        if (!json)
                fprintf(stderr, "unexpected YAML error: %s\n", err);
        ASSERT_TRUE(json);
        return json;
}

static const cJSON *get(const cJSON *obj, const char *key) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

        ASSERT_TRUE(v);
        return v;
}

static void assert_string(const cJSON *obj, const char *key, const char *want) {
        const cJSON *v = get(obj, key);

        ASSERT_TRUE(cJSON_IsString(v));
        ASSERT_STREQ(v->valuestring, want);
}

static void assert_number(const cJSON *obj, const char *key, double want) {
        const cJSON *v = get(obj, key);

        ASSERT_TRUE(cJSON_IsNumber(v));
        ASSERT_TRUE(v->valuedouble == want);
}

static void test_plain_decimal_integers_become_numbers(void) {
        _cleanup_(cJSON_Deletep) cJSON *j = parse("a: 1450\nb: -3\nc: 0\nd: 007\n");

        assert_number(j, "a", 1450);
        assert_number(j, "b", -3);
        assert_number(j, "c", 0);
        assert_number(j, "d", 7);
}

static void test_quoted_numbers_stay_strings(void) {
        _cleanup_(cJSON_Deletep) cJSON *j = parse("a: \"1450\"\nb: '-3'\nc: |\n  12\n");

        assert_string(j, "a", "1450");
        assert_string(j, "b", "-3");
        assert_string(j, "c", "12\n");
}

static void test_other_number_spellings_stay_strings(void) {
        _cleanup_(cJSON_Deletep) cJSON *j =
                parse("a: 1.5\nb: 0x10\nc: +5\nd: 1e3\ne: 1_000\nf: 0o17\ng: -x\nh: .inf\n");

        assert_string(j, "a", "1.5");
        assert_string(j, "b", "0x10");
        assert_string(j, "c", "+5");
        assert_string(j, "d", "1e3");
        assert_string(j, "e", "1_000");
        assert_string(j, "f", "0o17");
        assert_string(j, "g", "-x");
        assert_string(j, "h", ".inf");
}

/* YAML 1.1 reads 10:20:30:40:50:60 as a base-60 integer; a MAC must survive unquoted. */
static void test_unquoted_mac_is_a_string_not_base60(void) {
        _cleanup_(cJSON_Deletep) cJSON *j =
                parse("mac: 10:20:30:40:50:60\nother: fa:16:3e:1c:1a:6e\ntime: 1:30\n");

        assert_string(j, "mac", "10:20:30:40:50:60");
        assert_string(j, "other", "fa:16:3e:1c:1a:6e");
        assert_string(j, "time", "1:30");
}

static void test_only_plain_true_and_false_are_booleans(void) {
        _cleanup_(cJSON_Deletep) cJSON *j =
                parse("a: true\nb: false\nc: \"true\"\nd: yes\ne: True\nf: off\n");

        ASSERT_TRUE(cJSON_IsTrue(get(j, "a")));
        ASSERT_TRUE(cJSON_IsFalse(get(j, "b")));
        assert_string(j, "c", "true");
        assert_string(j, "d", "yes");
        assert_string(j, "e", "True");
        assert_string(j, "f", "off");
}

static void test_null_tilde_and_empty_are_null_quoted_null_is_a_string(void) {
        _cleanup_(cJSON_Deletep) cJSON *j = parse("a: null\nb: ~\nc:\nd: 'null'\ne: Null\n");

        ASSERT_TRUE(cJSON_IsNull(get(j, "a")));
        ASSERT_TRUE(cJSON_IsNull(get(j, "b")));
        ASSERT_TRUE(cJSON_IsNull(get(j, "c")));
        assert_string(j, "d", "null");
        assert_string(j, "e", "Null");
}

static void test_mappings_become_objects_and_sequences_arrays(void) {
        _cleanup_(cJSON_Deletep) cJSON *j =
                parse("spec:\n  interfaces:\n    - id: 0\n    - {id: 1, mtu: 9000}\n"
                      "  tags: [a, 2]\n");
        const cJSON *spec = get(j, "spec"), *ifs = get(spec, "interfaces");
        const cJSON *tags = get(spec, "tags");

        ASSERT_TRUE(cJSON_IsObject(spec));
        ASSERT_TRUE(cJSON_IsArray(ifs));
        ASSERT_EQ(cJSON_GetArraySize(ifs), 2);
        assert_number(cJSON_GetArrayItem(ifs, 1), "mtu", 9000);
        ASSERT_TRUE(cJSON_IsArray(tags));
        ASSERT_STREQ(cJSON_GetArrayItem(tags, 0)->valuestring, "a");
        ASSERT_TRUE(cJSON_IsNumber(cJSON_GetArrayItem(tags, 1)));
}

static void test_aliases_are_expanded(void) {
        _cleanup_(cJSON_Deletep) cJSON *j = parse("a: &cidr 10.0.0.0/24\nb: *cidr\n");

        assert_string(j, "b", "10.0.0.0/24");
}

static void test_only_the_first_document_is_read(void) {
        _cleanup_(cJSON_Deletep) cJSON *j = parse("---\na: 1\n---\nb: 2\n");

        assert_number(j, "a", 1);
        ASSERT_TRUE(!cJSON_GetObjectItemCaseSensitive(j, "b"));
}

static void test_input_needs_no_terminating_nul(void) {
        const char *text = "a: 12345";
        char err[256];
        _cleanup_(cJSON_Deletep) cJSON *j = yaml_to_json(text, 5, err, sizeof(err));

        ASSERT_TRUE(j);
        assert_number(j, "a", 12);
}

static void assert_error(const char *text, const char *want) {
        char err[256] = "";
        cJSON *j = yaml_to_json(text, strlen(text), err, sizeof(err));

        ASSERT_TRUE(!j);
        ASSERT_CONTAINS(err, want);
}

static void test_parse_error_gives_line_and_column(void) {
        assert_error("a: 1\nb: 2\n  c: 3\n", "line 3 column 4: mapping values are not allowed");
        assert_error("a: [1, 2\nb: 3\n",
                     "line 2 column 2: did not find expected ',' or ']' while parsing a flow "
                     "sequence (line 1 column 4)");
        assert_error("a: \"open\n", "found unexpected end of stream");
}

static void test_duplicate_keys_are_refused_with_their_position(void) {
        assert_error("a: 1\nb: 2\na: 3\n", "line 3 column 1: duplicate key 'a'");
}

static void test_empty_input_and_non_scalar_keys_are_refused(void) {
        assert_error("", "no document found");
        assert_error("# only a comment\n", "no document found");
        assert_error("? [a, b]\n: 1\n", "line 1 column 3: a mapping key must be a scalar");
}

static void test_alias_expansion_is_bounded(void) {
        assert_error("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
                     "too many nodes");
}

int main(void) {
        RUN_TEST(test_plain_decimal_integers_become_numbers);
        RUN_TEST(test_quoted_numbers_stay_strings);
        RUN_TEST(test_other_number_spellings_stay_strings);
        RUN_TEST(test_unquoted_mac_is_a_string_not_base60);
        RUN_TEST(test_only_plain_true_and_false_are_booleans);
        RUN_TEST(test_null_tilde_and_empty_are_null_quoted_null_is_a_string);
        RUN_TEST(test_mappings_become_objects_and_sequences_arrays);
        RUN_TEST(test_aliases_are_expanded);
        RUN_TEST(test_only_the_first_document_is_read);
        RUN_TEST(test_input_needs_no_terminating_nul);
        RUN_TEST(test_parse_error_gives_line_and_column);
        RUN_TEST(test_duplicate_keys_are_refused_with_their_position);
        RUN_TEST(test_empty_input_and_non_scalar_keys_are_refused);
        RUN_TEST(test_alias_expansion_is_bounded);
        return 0;
}
