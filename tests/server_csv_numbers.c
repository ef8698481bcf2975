/*
 * server_csv_numbers.c - a CSV number is spelled as a JSON number, and a
 * numeric column never hides NaN, an infinity or a float32 overflow: the
 * upload is refused naming the row and the column (server/decode/csvload.c).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "decode/csvload.h"
#include "srv_limits.h"

static int csv_parse(const char *text, const char *label, ds_data **d, srv_err *e)
{
    srv_limits lim;
    csvload *c = NULL;
    limits_default(&lim);
    *d = NULL;
    int rc = csvload_begin(label, &lim, &c, e);
    if (rc == 0)
        rc = csvload_feed(c, text, strlen(text), e);
    if (rc == 0)
        rc = csvload_finish(c, d, e);
    csvload_free(c);
    return rc;
}

static void expect_refused(const char *text, const char *label, const char *msg)
{
    ds_data *d;
    srv_err e = {0};
    cr_expect_eq(csv_parse(text, label, &d, &e), -1, "accepted: %s", text);
    ds_data_free(d);
    cr_expect_eq(e.code, ERR_INVALID_ARGUMENT, "%s", text);
    cr_expect_str_eq(e.msg, msg, "%s", text);
}

Test(csv_numbers, features_follow_the_json_grammar)
{
    static const struct {
        const char *field;
        float want;
    } good[] = {{"0", 0}, {"-0", -0.0f}, {"12", 12}, {"-1.5", -1.5f}, {"1e3", 1000},
                {"2E-2", 0.02f}, {"1.25e+2", 125}, {" 7 ", 7}, {"3.4e38", 3.4e38f},
                {"1e-50", 0}};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        char text[64];
        ds_data *d;
        srv_err e = {0};
        snprintf(text, sizeof text, "a,y\n%s,1\n", good[i].field);
        cr_assert_eq(csv_parse(text, "y", &d, &e), 0, "%s: %s", good[i].field, e.msg);
        cr_expect_eq(d->X[0], good[i].want, "%s read as %g", good[i].field, (double)d->X[0]);
        ds_data_free(d);
    }
    static const char *const bad[] = {"0x10", "0x1p3", "+1", ".5", "1.", "01", "1e", "1e+",
                                      "--1", "1,5", "1_000", "١"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[64], msg[160];
        snprintf(text, sizeof text, "a,y\n1,1\n\"%s\",1\n", bad[i]);
        snprintf(msg, sizeof msg, "row 3, column 1 (a): expected a finite number, got \"%s\"",
                 bad[i]);
        expect_refused(text, "y", msg);
    }
    expect_refused("a,y\n1e39,1\n", "y", "row 2, column 1 (a): expected a finite number, got \"1e39\"");
    expect_refused("a,y\n-Infinity,1\n", "y",
                   "row 2, column 1 (a): expected a finite number, got \"-Infinity\"");
}

Test(csv_numbers, a_target_column_never_takes_nan_inf_or_overflow_as_classes)
{
    /* Once a classification set of 1,000 "classes" (issue 9). */
    static const char *const bad[] = {"NaN", "nan", "inf", "-inf", "Infinity", "1e39", "-1e39"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[256], msg[200];
        snprintf(text, sizeof text, "x,target\n1,0.5\n2,1.5\n3,%s\n4,2.5\n", bad[i]);
        snprintf(msg, sizeof msg,
                 "row 4, column 2 (target): expected a finite number or a class name, got \"%s\"",
                 bad[i]);
        expect_refused(text, "target", msg);
    }
    /* Class names stay class names, numbers stay numbers. */
    ds_data *d;
    srv_err e = {0};
    cr_assert_eq(csv_parse("x,target\n1,setosa\n2,0x10\n3,setosa\n", "target", &d, &e), 0, "%s",
                 e.msg);
    cr_expect_eq(d->n_classes, 2, "\"0x10\" is not a number, so it is a class name");
    cr_expect_str_eq(d->class_names[1], "0x10");
    ds_data_free(d);
    cr_assert_eq(csv_parse("x,target\n1,0.5\n2,1e2\n", "target", &d, &e), 0, "%s", e.msg);
    cr_expect_eq(d->target_width, 1);
    cr_expect_eq(d->Y[1], 100.0f);
    ds_data_free(d);
}
