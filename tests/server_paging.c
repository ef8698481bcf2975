/*
 * server_paging.c - every list endpoint pages (?limit=, ?after=, "next")
 * and refuses query parameters it does not take, over real HTTP.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "server_common.h"

TestSuite(paging, .init = it_setup, .fini = it_teardown);

/* Walks path (which may hold a query already) page by page, `limit` at a
 * time, and returns the names (or ids) seen in order, comma-separated. */
static void walk(const char *path, const char *items, const char *key, int limit, char *seen,
                 size_t cap, int *pages)
{
    char after[128] = "", url[512];
    seen[0] = '\0';
    *pages = 0;
    for (;;) {
        ts_resp r;
        snprintf(url, sizeof url, "%s%slimit=%d%s%s", path, strchr(path, '?') ? "&" : "?", limit,
                 after[0] ? "&after=" : "", after);
        it_get(url, &r);
        cr_assert_eq(r.status, 200, "%s: %ld %s", url, r.status, r.body);
        json_t *arr = json_object_get(r.json, items), *next = json_object_get(r.json, "next");
        cr_assert(json_is_array(arr), "%s", r.body);
        cr_assert(json_is_string(next) || json_is_null(next), "next: %s", r.body);
        cr_assert_leq(json_array_size(arr), (size_t)limit, "%s", r.body);
        size_t i;
        json_t *o;
        json_array_foreach(arr, i, o) {
            size_t n = strlen(seen);
            snprintf(seen + n, cap - n, "%s%s", n ? "," : "", json_string_value(json_object_get(o, key)));
        }
        (*pages)++;
        if (json_is_null(next)) {
            ts_resp_free(&r);
            return;
        }
        cr_assert_gt(json_array_size(arr), 0, "a page with a next is never empty: %s", r.body);
        snprintf(after, sizeof after, "%s", json_string_value(next));
        ts_resp_free(&r);
        cr_assert_lt(*pages, 100, "no end to %s", path);
    }
}

Test(paging, models_come_in_name_order_a_page_at_a_time)
{
    static const char *const names[] = {"m3", "m1", "m5", "m2", "m4", "m0", "m6"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        it_create_iris_model(names[i]);
    char seen[512];
    int pages;
    walk("/v1/models", "models", "name", 3, seen, sizeof seen, &pages);
    cr_expect_str_eq(seen, "m0,m1,m2,m3,m4,m5,m6");
    cr_expect_eq(pages, 3);
    walk("/v1/models", "models", "name", 7, seen, sizeof seen, &pages);
    cr_expect_str_eq(seen, "m0,m1,m2,m3,m4,m5,m6");
    cr_expect_eq(pages, 1, "exactly one full page: next is null");
    walk("/v1/models", "models", "name", 1000, seen, sizeof seen, &pages);
    cr_expect_eq(pages, 1);

    /* The default is the maximum page; next is there and null. */
    ts_resp r;
    it_get("/v1/models", &r);
    cr_expect_eq(json_array_size(json_object_get(r.json, "models")), 7);
    cr_expect(json_is_null(json_object_get(r.json, "next")), "%s", r.body);
    ts_resp_free(&r);

    /* A cursor that names no model still pages from where it sorts. */
    it_get("/v1/models?after=m25&limit=2", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(r.json, "models"), 0), "name")), "m3");
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "next")), "m4");
    ts_resp_free(&r);
}

Test(paging, jobs_page_oldest_first_with_their_filters)
{
    it_upload_iris("iris");
    it_create_iris_model("a");
    it_create_iris_model("b");
    char ids[6][64], want[512] = "";
    for (int i = 0; i < 6; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"model\":\"%s\",\"dataset\":\"iris\",\"epochs\":1}",
                 i % 2 ? "b" : "a");
        it_create_job(body, ids[i], sizeof ids[i]);
    }
    for (int i = 0; i < 6; i += 2) {
        size_t n = strlen(want);
        snprintf(want + n, sizeof want - n, "%s%s", n ? "," : "", ids[i]);
    }
    char seen[512];
    int pages;
    walk("/v1/jobs?model=a", "jobs", "id", 2, seen, sizeof seen, &pages);
    cr_expect_str_eq(seen, want);
    cr_expect_eq(pages, 2);
    walk("/v1/jobs", "jobs", "id", 4, seen, sizeof seen, &pages);
    cr_expect_eq(pages, 2);
    cr_expect(strstr(seen, ids[0]) == seen, "oldest first: %s", seen);
}

Test(paging, bad_limits_cursors_and_unknown_parameters_are_400)
{
    static const struct {
        const char *path, *msg;
    } cases[] = {
        {"/v1/models?limit=0", "limit: expected a whole number from 1 to 1000, got \"0\""},
        {"/v1/models?limit=1001", "limit: expected a whole number from 1 to 1000, got \"1001\""},
        {"/v1/models?limit=-1", "limit: expected a whole number from 1 to 1000, got \"-1\""},
        {"/v1/models?limit=2x", "limit: expected a whole number from 1 to 1000, got \"2x\""},
        {"/v1/models?limit=", "limit: expected a whole number from 1 to 1000, got \"\""},
        {"/v1/models?after=-x", "after: expected a name matching [A-Za-z0-9][A-Za-z0-9._-]{0,63}, got \"-x\""},
        {"/v1/jobs?after=abc", "after: expected the \"next\" value of the previous page, got \"abc\""},
        {"/v1/keys?after=0", "after: expected the \"next\" value of the previous page, got \"0\""},
        {"/v1/jobs?limit=2&limit=3", "query parameter \"limit\": given more than once; expected it once"},
        {"/v1/jobs?lmit=2", "query parameter \"lmit\": unknown; GET /v1/jobs takes model status limit after"},
        {"/v1/models/x?limit=2", "query parameter \"limit\": unknown; GET /v1/models/{name} takes no query parameters"},
        {"/healthz?verbose=1", "query parameter \"verbose\": unknown; GET /healthz takes no query parameters"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ts_resp r;
        it_get(cases[i].path, &r);
        cr_expect_eq(r.status, 400, "%s: %ld %s", cases[i].path, r.status, r.body);
        cr_expect_str_eq(ts_error_message(&r), cases[i].msg, "%s", cases[i].path);
        ts_resp_free(&r);
    }
    /* The CSV upload's own parameters are still taken. */
    ts_resp r;
    it_post("/v1/datasets?name=x&label=y&colour=red", "{}", &r);
    cr_expect_eq(r.status, 400);
    cr_expect_str_eq(ts_error_message(&r), "query parameter \"colour\": unknown; POST /v1/datasets takes name label");
    ts_resp_free(&r);
}

/* ---- answers bounded before they are computed (issue 9) ---- */

TestSuite(predict_limits, .fini = it_teardown);

Test(predict_limits, rows_times_outputs_past_the_limit_is_413_before_any_work)
{
    static const char *const flags[] = {"--max-predict-cells", "99", NULL};
    it_start(flags);
    it_upload_iris("iris");
    it_post_ok("/v1/models",
               "{\"name\":\"lin\",\"inputs\":4,\"layers\":[{\"units\":3,\"activation\":\"softmax\"}],"
               "\"loss\":\"cross_entropy\",\"seed\":1}",
               201);
    char id[64];
    it_create_job("{\"model\":\"lin\",\"dataset\":\"iris\",\"epochs\":1}", id, sizeof id);
    json_decref(it_wait_job(id, "succeeded", 30));

    /* 33 rows x 3 outputs = 99: answered; 34 rows: 102 > 99. */
    for (int rows = 33; rows <= 34; rows++) {
        char body[2048] = "{\"inputs\":[";
        for (int i = 0; i < rows; i++)
            strcat(body, i ? ",[5.1,3.5,1.4,0.2]" : "[5.1,3.5,1.4,0.2]");
        strcat(body, "]}");
        ts_resp r;
        it_post("/v1/models/lin/predict", body, &r);
        if (rows == 33) {
            cr_expect_eq(r.status, 200, "%s", r.body);
        } else {
            cr_expect_eq(r.status, 413, "%s", r.body);
            cr_expect_str_eq(ts_error_message(&r),
                             "the answer would hold 34 rows x 3 outputs = 102 values; the limit "
                             "is 99 (--max-predict-cells or BACKPROPD_MAX_PREDICT_CELLS); send "
                             "fewer rows at a time");
        }
        ts_resp_free(&r);
    }
}
