/* Unit tests of the status the bridge writes: conditions follow the API conventions. */
#include "cjson-util.h"
#include "status.h"
#include "tests.h"

static cJSON *results(const char *state) {
        char text[256];

        snprintf(text, sizeof(text),
                 "[{\"id\":0,\"name\":\"multinic0\",\"macAddress\":\"fa:16:3e:00:00:01\","
                 "\"state\":\"%s\",\"message\":\"m\",\"changes\":[\"rename\"]}]", state);
        return cJSON_Parse(text);
}

static const cJSON *cond(const cJSON *st, const char *type) {
        const cJSON *c;

        cJSON_ArrayForEach(c, cJSON_GetObjectItem(st, "conditions"))
                if (streq(cJSON_GetStringValue(cJSON_GetObjectItem(c, "type")), type))
                        return c;
        return NULL;
}

static const char *field(const cJSON *o, const char *key) {
        return cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
}

static void test_configured_is_ready_and_not_degraded(void) {
        _cleanup_(cJSON_Deletep) cJSON *r = results("configured");
        StatusInput in = { "Configured", 3, "Configured", "ok", r, "2026-12-03T10:00:00Z" };
        _cleanup_(cJSON_Deletep) cJSON *st = status_build(NULL, &in);

        ASSERT_STREQ(field(st, "state"), "Configured");
        ASSERT_EQ(cJSON_GetObjectItem(st, "observedGeneration")->valueint, 3);
        ASSERT_STREQ(field(cond(st, "Ready"), "status"), "True");
        ASSERT_STREQ(field(cond(st, "Degraded"), "status"), "False");
        ASSERT_EQ(cJSON_GetObjectItem(cond(st, "Ready"), "observedGeneration")->valueint, 3);
        /* Only the schema's keys reach the object. */
        ASSERT_TRUE(!cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(st,
                                         "interfaceStatuses"), 0), "changes"));
}

static void test_transition_time_moves_only_when_the_status_changes(void) {
        _cleanup_(cJSON_Deletep) cJSON *ok = results("configured"), *bad = results("failed");
        StatusInput a = { "Configured", 1, "Configured", "ok", ok, "2026-12-03T10:00:00Z" };
        StatusInput b = { "Configured", 2, "Configured", "ok", ok, "2026-12-03T11:00:00Z" };
        StatusInput c = { "Failed", 3, "InterfaceFailed", "no", bad, "2026-12-03T12:00:00Z" };
        _cleanup_(cJSON_Deletep) cJSON *s1 = status_build(NULL, &a);
        _cleanup_(cJSON_Deletep) cJSON *s2 = status_build(s1, &b);
        _cleanup_(cJSON_Deletep) cJSON *s3 = status_build(s2, &c);

        ASSERT_STREQ(field(cond(s2, "Ready"), "lastTransitionTime"), "2026-12-03T10:00:00Z");
        ASSERT_STREQ(field(cond(s3, "Ready"), "lastTransitionTime"), "2026-12-03T12:00:00Z");
        ASSERT_STREQ(field(cond(s3, "Degraded"), "status"), "True");
        ASSERT_STREQ(field(cond(s3, "Degraded"), "reason"), "InterfaceFailed");
}

static void test_same_status_ignores_last_processed(void) {
        _cleanup_(cJSON_Deletep) cJSON *ok = results("configured");
        StatusInput a = { "Configured", 1, "Configured", "ok", ok, "2026-12-03T10:00:00Z" };
        StatusInput b = { "Configured", 1, "Configured", "ok", ok, "2026-12-03T11:00:00Z" };
        _cleanup_(cJSON_Deletep) cJSON *s1 = status_build(NULL, &a);
        _cleanup_(cJSON_Deletep) cJSON *s2 = status_build(s1, &b);

        ASSERT_TRUE(status_same(s1, s2));
        b.generation = 2;
        cJSON *s3 = status_build(s1, &b);
        ASSERT_TRUE(!status_same(s1, s3));
        cJSON_Delete(s3);
}

static void test_refusal_keeps_the_last_interface_statuses(void) {
        _cleanup_(cJSON_Deletep) cJSON *ok = results("configured");
        StatusInput a = { "Configured", 1, "Configured", "ok", ok, "2026-12-03T10:00:00Z" };
        StatusInput b = { "Failed", 2, "InvalidSpec", "spec.interfaces[0].macAddress: bad", NULL,
                          "2026-12-03T11:00:00Z" };
        _cleanup_(cJSON_Deletep) cJSON *s1 = status_build(NULL, &a);
        _cleanup_(cJSON_Deletep) cJSON *s2 = status_build(s1, &b);

        ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(s2, "interfaceStatuses")), 1);
        ASSERT_STREQ(field(cond(s2, "Ready"), "status"), "False");
        ASSERT_CONTAINS(field(cond(s2, "Degraded"), "message"), "macAddress");
}

static void test_released_nics_leave_the_status(void) {
        _cleanup_(cJSON_Deletep) cJSON *r = cJSON_Parse(
                "[{\"id\":0,\"name\":\"multinic0\",\"macAddress\":\"fa:16:3e:00:00:01\","
                "\"state\":\"unchanged\"},{\"id\":1,\"name\":\"ens5\","
                "\"macAddress\":\"fa:16:3e:00:00:02\",\"state\":\"removed\"}]");
        StatusInput in = { "Configured", 2, "Configured", "ok", r, "2026-12-03T10:00:00Z" };
        _cleanup_(cJSON_Deletep) cJSON *st = status_build(NULL, &in);

        ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(st, "interfaceStatuses")), 1);
        ASSERT_STREQ(field(cond(st, "Ready"), "status"), "True");
}

static void test_nic_an_apply_left_unchanged_reads_as_configured(void) {
        _cleanup_(cJSON_Deletep) cJSON *applied = cJSON_Parse(
                "[{\"id\":0,\"name\":\"multinic0\",\"macAddress\":\"fa:16:3e:00:00:01\","
                "\"state\":\"unchanged\",\"message\":\"unchanged\"}]");
        _cleanup_(cJSON_Deletep) cJSON *daemon = cJSON_Parse(
                "[{\"id\":0,\"name\":\"multinic0\",\"macAddress\":\"fa:16:3e:00:00:01\","
                "\"state\":\"configured\",\"message\":\"\",\"address\":\"10.1.0.11\"}]");
        StatusInput a = { "Configured", 1, "Configured", "ok", applied, "2026-12-03T10:00:00Z" };
        StatusInput b = { "Configured", 1, "Configured", "ok", daemon, "2026-12-03T11:00:00Z" };
        _cleanup_(cJSON_Deletep) cJSON *s1 = status_build(NULL, &a);
        _cleanup_(cJSON_Deletep) cJSON *s2 = status_build(s1, &b);
        const cJSON *nic = cJSON_GetArrayItem(cJSON_GetObjectItem(s1, "interfaceStatuses"), 0);

        ASSERT_STREQ(field(nic, "state"), "configured");
        ASSERT_STREQ(field(nic, "message"), "");
        ASSERT_TRUE(status_same(s1, s2));
}

static void test_a_real_message_is_kept(void) {
        _cleanup_(cJSON_Deletep) cJSON *r = results("failed");
        StatusInput in = { "Failed", 1, "InterfaceFailed", "no", r, "2026-12-03T10:00:00Z" };
        _cleanup_(cJSON_Deletep) cJSON *st = status_build(NULL, &in);
        const cJSON *nic = cJSON_GetArrayItem(cJSON_GetObjectItem(st, "interfaceStatuses"), 0);

        ASSERT_STREQ(field(nic, "state"), "failed");
        ASSERT_STREQ(field(nic, "message"), "m");
}

static void test_interfaces_ready_counts_the_configured_nics_of_the_spec(void) {
        _cleanup_(cJSON_Deletep) cJSON *spec = cJSON_Parse(
                "[{\"id\":0,\"macAddress\":\"FA:16:3E:00:00:01\"},"
                "{\"id\":1,\"macAddress\":\"fa:16:3e:00:00:02\"}]");
        _cleanup_(cJSON_Deletep) cJSON *half = cJSON_Parse(
                "[{\"id\":0,\"name\":\"multinic0\",\"macAddress\":\"fa:16:3e:00:00:01\","
                "\"state\":\"unchanged\"},{\"id\":1,\"name\":\"multinic1\","
                "\"macAddress\":\"fa:16:3e:00:00:02\",\"state\":\"pending\"},"
                "{\"id\":2,\"name\":\"multinic2\",\"macAddress\":\"fa:16:3e:00:00:03\","
                "\"state\":\"removed\"}]");
        _cleanup_(cJSON_Deletep) cJSON *all = cJSON_Parse(
                "[{\"id\":0,\"macAddress\":\"fa:16:3e:00:00:01\",\"state\":\"configured\"},"
                "{\"id\":1,\"macAddress\":\"fa:16:3e:00:00:02\",\"state\":\"configured\"}]");
        StatusInput a = { "Pending", 1, "InterfacesPending", "p", half, "2026-12-03T10:00:00Z",
                          spec, true };
        StatusInput b = { "Configured", 1, "Configured", "ok", all, "2026-12-03T10:00:01Z",
                          spec, false };
        StatusInput none = { "Configured", 1, "Configured", "ok", all, "2026-12-03T10:00:01Z" };
        _cleanup_(cJSON_Deletep) cJSON *s1 = status_build(NULL, &a);
        _cleanup_(cJSON_Deletep) cJSON *s2 = status_build(s1, &b);
        _cleanup_(cJSON_Deletep) cJSON *s3 = status_build(NULL, &none);

        /* Counted over the spec (MACs in any case), a released NIC not among them. */
        ASSERT_STREQ(field(s1, "interfacesReady"), "1/2");
        ASSERT_STREQ(field(s2, "interfacesReady"), "2/2");
        ASSERT_TRUE(!status_same(s1, s2));
        ASSERT_TRUE(!cJSON_GetObjectItem(s3, "interfacesReady"));
}

static void test_last_processed_moves_only_when_the_spec_was_processed(void) {
        _cleanup_(cJSON_Deletep) cJSON *ok = results("configured");
        StatusInput progress = { "InProgress", 1, "Applying", "a", NULL, "2026-12-03T10:00:00Z" };
        StatusInput applied = { "Configured", 1, "Configured", "ok", ok, "2026-12-03T10:00:01Z",
                                NULL, true };
        StatusInput next = { "InProgress", 2, "Applying", "a", NULL, "2026-12-03T11:00:00Z" };
        StatusInput refresh = { "Configured", 2, "Configured", "ok", ok, "2026-12-03T11:00:05Z" };
        _cleanup_(cJSON_Deletep) cJSON *s1 = status_build(NULL, &progress);
        _cleanup_(cJSON_Deletep) cJSON *s2 = status_build(s1, &applied);
        _cleanup_(cJSON_Deletep) cJSON *s3 = status_build(s2, &next);
        _cleanup_(cJSON_Deletep) cJSON *s4 = status_build(s3, &refresh);

        /* Nothing processed before the first Apply is done; then that time until the next. */
        ASSERT_TRUE(!cJSON_GetObjectItem(s1, "lastProcessed"));
        ASSERT_STREQ(field(s2, "lastProcessed"), "2026-12-03T10:00:01Z");
        ASSERT_STREQ(field(s3, "lastProcessed"), "2026-12-03T10:00:01Z");
        ASSERT_STREQ(field(s4, "lastProcessed"), "2026-12-03T10:00:01Z");
}

int main(void) {
        RUN_TEST(test_configured_is_ready_and_not_degraded);
        RUN_TEST(test_transition_time_moves_only_when_the_status_changes);
        RUN_TEST(test_same_status_ignores_last_processed);
        RUN_TEST(test_refusal_keeps_the_last_interface_statuses);
        RUN_TEST(test_released_nics_leave_the_status);
        RUN_TEST(test_nic_an_apply_left_unchanged_reads_as_configured);
        RUN_TEST(test_a_real_message_is_kept);
        RUN_TEST(test_interfaces_ready_counts_the_configured_nics_of_the_spec);
        RUN_TEST(test_last_processed_moves_only_when_the_spec_was_processed);
        return 0;
}
