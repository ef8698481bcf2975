/*
 * server_lineage.c - every model version says what made it (job, data set,
 * the version a warm start began from), and a warm start that would drop
 * another job's coming version is refused at submission (409), over HTTP.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_common.h"

TestSuite(lineage, .init = it_setup, .fini = it_teardown);

static json_t *version_at(json_t *versions, size_t i)
{
    json_t *v = json_array_get(json_object_get(versions, "versions"), i);
    cr_assert_not_null(v, "no version %zu", i + 1);
    return v;
}

static void run_job(const char *body, char *id, size_t cap)
{
    it_create_job(body, id, cap);
    json_t *job = it_wait_job(id, "succeeded", 60);
    json_decref(job);
}

Test(lineage, versions_record_job_dataset_and_parent)
{
    char fresh[64], warm[64], inl[64];
    it_upload_iris("iris");
    it_create_iris_model("m");
    run_job("{\"model\":\"m\",\"dataset\":\"iris\",\"epochs\":2}", fresh, sizeof fresh);
    run_job("{\"model\":\"m\",\"dataset\":\"iris\",\"epochs\":2,\"warm_start\":true}", warm,
            sizeof warm);
    run_job("{\"model\":\"m\",\"epochs\":1,\"data\":{\"inputs\":[[1,2,3,4],[4,3,2,1],[2,2,2,2]],"
            "\"labels\":[\"setosa\",\"virginica\",\"versicolor\"]}}",
            inl, sizeof inl);

    ts_resp r;
    it_get("/v1/models/m/versions", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *v1 = version_at(r.json, 0), *v2 = version_at(r.json, 1), *v3 = version_at(r.json, 2);
    cr_expect_str_eq(ts_json_str(v1, "job"), fresh);
    cr_expect_str_eq(ts_json_str(v1, "dataset"), "iris");
    cr_expect(json_is_null(json_object_get(v1, "parent_version")), "%s", r.body);
    cr_expect_str_eq(ts_json_str(v2, "job"), warm);
    cr_expect_eq(json_integer_value(json_object_get(v2, "parent_version")), 1, "%s", r.body);
    cr_expect_str_eq(ts_json_str(v3, "job"), inl);
    cr_expect(json_is_null(json_object_get(v3, "dataset")), "inline data has no data set: %s",
              r.body);
    cr_expect(json_is_null(json_object_get(v3, "parent_version")), "%s", r.body);
    ts_resp_free(&r);
}

Test(lineage, a_warm_start_beside_a_running_job_is_refused)
{
    char slow[64], first[64];
    it_create_slow_model("slow");
    /* a first version to warm-start from */
    json_t *quick = json_pack("{s:s,s:i,s:o}", "model", "slow", "epochs", 1, "data", it_slow_data());
    char *body = json_dumps(quick, JSON_COMPACT);
    json_decref(quick);
    run_job(body, first, sizeof first);
    free(body);
    it_start_slow_job("slow", slow, sizeof slow);

    ts_resp r;
    it_post("/v1/jobs", "{\"model\":\"slow\",\"epochs\":1,\"warm_start\":true,\"data\":"
                        "{\"inputs\":[[1,2,3,4,5,6,7,8],[8,7,6,5,4,3,2,1]],\"labels\":[\"pos\",\"neg\"]}}",
            &r);
    cr_expect_eq(r.status, 409, "%s", r.body);
    char want[256];
    snprintf(want, sizeof want,
             "warm_start: job %s (running) will store a newer version of model \"slow\" that this "
             "job would not start from; submit it once that job has finished",
             slow);
    cr_expect_str_eq(ts_error_message(&r), want);
    ts_resp_free(&r);

    /* Nothing was queued, and a fresh start beside it is still taken. */
    it_get("/v1/jobs?model=slow", &r);
    cr_expect_eq(json_array_size(json_object_get(r.json, "jobs")), 2, "%s", r.body);
    ts_resp_free(&r);
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", slow);
    it_post_ok(path, NULL, 202);
}
