/*
 * server_csv.c - CSV uploads (server/decode/csvload.c): the data sets from
 * tests/data parsed whole and in 1- and 7-byte chunks to identical
 * results, class versus numeric label columns, RFC 4180 quoting, CRLF,
 * a BOM, and the row/column messages users get for bad files.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/csvload.h"
#include "util_data.h"

static srv_limits csv_limits(void)
{
    srv_limits l;
    limits_default(&l);
    return l;
}

static char *csv_slurp(const char *name, size_t *len)
{
    char path[512];
    util_data_path(name, path, sizeof path);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

/* Loads buf in chunks of `chunk` bytes (0 = whole); returns 0 or -1 with e. */
static int csv_run(const char *buf, size_t len, size_t chunk, const char *label,
                   const srv_limits *lim, ds_data **out, srv_err *e)
{
    csvload *c = NULL;
    *out = NULL;
    cr_assert_eq(csvload_begin(label, lim, &c, e), 0);
    int rc = 0;
    if (chunk == 0)
        chunk = len ? len : 1;
    for (size_t o = 0; o < len && rc == 0; o += chunk)
        rc = csvload_feed(c, buf + o, len - o < chunk ? len - o : chunk, e);
    if (rc == 0)
        rc = csvload_finish(c, out, e);
    csvload_free(c);
    return rc;
}

static void csv_expect_same(const ds_data *a, const ds_data *b, const char *what)
{
    cr_assert_eq(a->rows, b->rows, "%s: rows", what);
    cr_assert_eq(a->features, b->features, "%s: features", what);
    cr_assert_eq(a->target_width, b->target_width, "%s: target_width", what);
    cr_assert_eq(a->n_classes, b->n_classes, "%s: n_classes", what);
    cr_assert_eq(memcmp(a->X, b->X, (size_t)a->rows * a->features * sizeof(float)), 0, "%s: X", what);
    if (a->target_width)
        cr_assert_eq(memcmp(a->Y, b->Y, (size_t)a->rows * a->target_width * sizeof(float)), 0,
                     "%s: Y", what);
    cr_assert_eq(!a->labels, !b->labels, "%s: labels", what);
    if (a->labels)
        cr_assert_eq(memcmp(a->labels, b->labels, a->rows * sizeof(int32_t)), 0, "%s: labels",
                     what);
    cr_assert_eq(!a->class_names, !b->class_names, "%s: class names", what);
    for (uint32_t i = 0; a->class_names && i < a->n_classes; i++)
        cr_assert_str_eq(a->class_names[i], b->class_names[i], "%s: class %u", what, i);
}

/* The expected error (code ERR_INVALID_ARGUMENT and text), whole and in
 * 1-byte chunks: the row numbers must not depend on the chunking. */
static void csv_expect_error(const char *text, const char *label, const srv_limits *lim,
                             const char *msg)
{
    static const size_t chunks[] = {0, 1, 3};
    for (size_t k = 0; k < 3; k++) {
        srv_err e = {0};
        ds_data *d = NULL;
        int rc = csv_run(text, strlen(text), chunks[k], label, lim, &d, &e);
        cr_expect_eq(rc, -1, "accepted (chunk %zu): %s", chunks[k], text);
        ds_data_free(d);
        if (rc != -1)
            continue;
        cr_expect_eq(e.code, ERR_INVALID_ARGUMENT, "code %d for %s (%s)", e.code, text, e.msg);
        cr_expect(strstr(e.msg, msg) != NULL, "chunk %zu, input %s\n message: %s\n    want: %s",
                  chunks[k], text, e.msg, msg);
        json_t *j = err_to_json(&e);
        cr_expect_not_null(j, "message is not valid UTF-8: %s", e.msg);
        json_decref(j);
    }
}

Test(csv, iris_any_chunking_same_data)
{
    size_t len;
    char *buf = csv_slurp("iris.csv", &len);
    srv_limits l = csv_limits();
    srv_err e = {0};
    ds_data *whole, *one, *seven, *named;
    cr_assert_eq(csv_run(buf, len, 0, NULL, &l, &whole, &e), 0, "%s", e.msg);
    cr_assert_eq(csv_run(buf, len, 1, NULL, &l, &one, &e), 0, "%s", e.msg);
    cr_assert_eq(csv_run(buf, len, 7, NULL, &l, &seven, &e), 0, "%s", e.msg);
    cr_assert_eq(csv_run(buf, len, 0, "species", &l, &named, &e), 0, "%s", e.msg);

    cr_expect_eq(whole->rows, 150);
    cr_expect_eq(whole->features, 4);
    cr_expect_eq(whole->target_width, 0);
    cr_expect_null(whole->Y);
    cr_assert_eq(whole->n_classes, 3);
    cr_expect_str_eq(whole->class_names[0], "setosa");
    cr_expect_str_eq(whole->class_names[1], "versicolor");
    cr_expect_str_eq(whole->class_names[2], "virginica");
    /* first row: 5.1,3.5,1.4,0.2,setosa */
    cr_expect_float_eq(whole->X[0], 5.1f, 0);
    cr_expect_float_eq(whole->X[1], 3.5f, 0);
    cr_expect_float_eq(whole->X[2], 1.4f, 0);
    cr_expect_float_eq(whole->X[3], 0.2f, 0);
    cr_expect_eq(whole->labels[0], 0);
    cr_expect_eq(whole->labels[149], 2);
    int count[3] = {0};
    for (uint32_t i = 0; i < whole->rows; i++) {
        cr_assert(whole->labels[i] >= 0 && whole->labels[i] < 3);
        count[whole->labels[i]]++;
    }
    cr_expect(count[0] == 50 && count[1] == 50 && count[2] == 50);

    csv_expect_same(whole, one, "1-byte chunks");
    csv_expect_same(whole, seven, "7-byte chunks");
    csv_expect_same(whole, named, "label=species");
    ds_data_free(whole);
    ds_data_free(one);
    ds_data_free(seven);
    ds_data_free(named);
    free(buf);
}

Test(csv, iris_label_elsewhere_makes_species_a_feature)
{
    size_t len;
    char *buf = csv_slurp("iris.csv", &len);
    srv_limits l = csv_limits();
    srv_err e = {0};
    ds_data *d = NULL;
    cr_expect_eq(csv_run(buf, len, 0, "sepal_length", &l, &d, &e), -1);
    cr_expect_str_eq(e.msg, "row 2, column 5 (species): expected a finite number, got \"setosa\"");
    cr_expect_eq(csv_run(buf, len, 0, "petal", &l, &d, &e), -1);
    cr_expect_str_eq(e.msg, "label column \"petal\" not found; columns are sepal_length, "
                            "sepal_width, petal_length, petal_width, species");
    free(buf);
}

Test(csv, digits_numeric_label_column)
{
    size_t len;
    char *buf = csv_slurp("digits.csv", &len);
    srv_limits l = csv_limits();
    srv_err e = {0};
    ds_data *last = NULL, *named = NULL, *chunked = NULL;
    cr_assert_eq(csv_run(buf, len, 0, NULL, &l, &last, &e), 0, "%s", e.msg);
    cr_assert_eq(csv_run(buf, len, 0, "digit", &l, &named, &e), 0, "%s", e.msg);
    cr_assert_eq(csv_run(buf, len, 4093, "digit", &l, &chunked, &e), 0, "%s", e.msg);
    cr_expect_eq(last->rows, 1797);
    cr_expect_eq(last->features, 64);
    cr_expect_eq(last->target_width, 1);
    cr_expect_null(last->labels);
    cr_expect_null(last->class_names);
    /* second line of the file: 0,0,5,13,...,0 with digit 0 */
    cr_expect_float_eq(last->X[2], 5.0f, 0);
    cr_expect_float_eq(last->X[3], 13.0f, 0);
    cr_expect_float_eq(last->Y[0], 0.0f, 0);
    float max = 0;
    for (uint32_t i = 0; i < last->rows; i++)
        max = last->Y[i] > max ? last->Y[i] : max;
    cr_expect_float_eq(max, 9.0f, 0);
    csv_expect_same(last, named, "label=digit");
    csv_expect_same(last, chunked, "4093-byte chunks");
    ds_data_free(last);
    ds_data_free(named);
    ds_data_free(chunked);
    free(buf);
}

Test(csv, quoting_crlf_bom_and_endings)
{
    srv_limits l = csv_limits();
    static const struct {
        const char *text, *label;
    } same[] = {
        {"a,b,label\n1,2,x\n3,4,y\n", NULL},
        {"a,b,label\n1,2,x\n3,4,y", NULL},               /* no trailing newline */
        {"a,b,label\r\n1,2,x\r\n3,4,y\r\n", NULL},       /* CRLF */
        {"a,b,label\r\n1,2,x\r\n3,4,y", NULL},
        {"\xEF\xBB\xBF" "a,b,label\n1,2,x\n3,4,y\n", NULL}, /* BOM */
        {"a,b,label\n\n1,2,x\n\n3,4,y\n\n", NULL},       /* blank lines */
        {"\"a\",\"b\",\"label\"\n\"1\",\"2\",\"x\"\n3, 4 ,\"y\"\n", NULL},
        {"a,label,b\n1,x,2\n3,y,4\n", "label"},           /* label in the middle */
        {"label,a,b\n x ,1,2\ny,3,4\n", "label"},         /* unquoted spaces trimmed */
    };
    srv_err e = {0};
    for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
        for (size_t chunk = 0; chunk < 3; chunk++) {
            ds_data *d = NULL;
            const char *t = same[i].text;
            cr_assert_eq(csv_run(t, strlen(t), chunk, same[i].label, &l, &d, &e), 0,
                         "case %zu chunk %zu: %s", i, chunk, e.msg);
            cr_expect_eq(d->rows, 2, "case %zu", i);
            cr_expect_eq(d->features, 2, "case %zu", i);
            cr_assert_eq(d->n_classes, 2, "case %zu", i);
            cr_expect_str_eq(d->class_names[0], "x", "case %zu", i);
            cr_expect_str_eq(d->class_names[1], "y", "case %zu", i);
            const float want[] = {1, 2, 3, 4};
            for (int k = 0; k < 4; k++)
                cr_expect_float_eq(d->X[k], want[k], 0, "case %zu X[%d]", i, k);
            ds_data_free(d);
        }
    }

    /* Quoted commas, newlines and doubled quotes inside class names. */
    const char *q = "f,class\n1,\"a,b\"\n2,\"line1\nline2\"\n3,\"say \"\"hi\"\"\"\n4,\"a,b\"\n"
                    "5,\" spaced \"\n";
    for (size_t chunk = 0; chunk < 3; chunk++) {
        ds_data *d = NULL;
        cr_assert_eq(csv_run(q, strlen(q), chunk, NULL, &l, &d, &e), 0, "%s", e.msg);
        cr_expect_eq(d->rows, 5);
        cr_assert_eq(d->n_classes, 4);
        cr_expect_str_eq(d->class_names[0], "a,b");
        cr_expect_str_eq(d->class_names[1], "line1\nline2");
        cr_expect_str_eq(d->class_names[2], "say \"hi\"");
        cr_expect_str_eq(d->class_names[3], " spaced ");
        cr_expect_eq(d->labels[3], 0);
        cr_expect_float_eq(d->X[4], 5.0f, 0);
        ds_data_free(d);
    }

    /* A BOM with a named first column: the name is "a", not "\xEF\xBB\xBFa". */
    const char *bom = "\xEF\xBB\xBF" "a,b\n1,2\n";
    for (size_t chunk = 0; chunk < 3; chunk++) {
        ds_data *d = NULL;
        cr_assert_eq(csv_run(bom, strlen(bom), chunk, "a", &l, &d, &e), 0, "%s", e.msg);
        cr_expect_eq(d->target_width, 1);
        cr_expect_float_eq(d->Y[0], 1.0f, 0);
        cr_expect_float_eq(d->X[0], 2.0f, 0);
        ds_data_free(d);
    }
}

Test(csv, label_column_kind)
{
    srv_limits l = csv_limits();
    srv_err e = {0};
    ds_data *d = NULL;
    /* One non-numeric value makes the whole column classes, numbers
     * included, in order of first appearance. */
    const char *t = "a,y\n1,2\n2,1.5\n3,x\n4,2\n";
    cr_assert_eq(csv_run(t, strlen(t), 1, NULL, &l, &d, &e), 0, "%s", e.msg);
    cr_expect_eq(d->target_width, 0);
    cr_assert_eq(d->n_classes, 3);
    cr_expect_str_eq(d->class_names[0], "2");
    cr_expect_str_eq(d->class_names[1], "1.5");
    cr_expect_str_eq(d->class_names[2], "x");
    cr_expect_eq(d->labels[3], 0);
    ds_data_free(d);

    /* All numeric: a one-wide target with the values as floats. */
    t = "a,y\n1,2\n2,-1.5e2\n3, 7 \n4,2\n";
    cr_assert_eq(csv_run(t, strlen(t), 0, NULL, &l, &d, &e), 0, "%s", e.msg);
    cr_expect_eq(d->target_width, 1);
    cr_expect_null(d->labels);
    const float want[] = {2, -150, 7, 2};
    for (int i = 0; i < 4; i++)
        cr_expect_float_eq(d->Y[i], want[i], 0, "Y[%d]", i);
    ds_data_free(d);

    /* "1e999" overflows: refused, not taken as a class name (it once made
     * a class column; server_csv_numbers.c has the rest of the rule). */
    t = "a,y\n1,1e999\n2,3\n";
    cr_assert_eq(csv_run(t, strlen(t), 0, NULL, &l, &d, &e), -1);
    cr_expect_str_eq(e.msg,
                     "row 2, column 2 (y): expected a finite number or a class name, got \"1e999\"");
}

Test(csv, errors_name_row_and_column)
{
    srv_limits l = csv_limits();
    static const struct {
        const char *text, *label, *msg;
    } cases[] = {
        {"", NULL, "empty file: expected a header row and at least one data row"},
        {"\n\n", NULL, "empty file: expected a header row and at least one data row"},
        {"\xEF\xBB\xBF", NULL, "empty file: expected a header row and at least one data row"},
        {"a,b\n", NULL, "no data rows: expected at least one data row after the header"},
        {"a\n1\n", NULL, "row 1: expected a header with at least 2 columns (features and a label), got 1"},
        {"a,b,c\n1,2,x\n1,2\n", NULL, "row 3: expected 3 fields, got 2"},
        {"a,b,c\n1,2,x\n1,2,3,4\n", NULL, "row 3: expected 3 fields, got 4"},
        {"a,b,c,d,e\n1,2,3,4,x\n1,2,3,4,x\n1,2,3,4,x\n1,2,3,4,x\n1,2,3,4\n", NULL,
         "row 6: expected 5 fields, got 4"},
        {"a,b,petal_width,label\n1,2,3,x\n1,2,3,x\n1,2,3,x\n1,2,3,x\n1,2,3,x\n1,2,abc,x\n", NULL,
         "row 7, column 3 (petal_width): expected a finite number, got \"abc\""},
        {"a,b\n1e999,x\n", NULL, "row 2, column 1 (a): expected a finite number, got \"1e999\""},
        {"a,b\nnan,x\n", NULL, "row 2, column 1 (a): expected a finite number, got \"nan\""},
        {"a,b\ninf,x\n", NULL, "row 2, column 1 (a): expected a finite number, got \"inf\""},
        {"a,b\n,x\n", NULL, "row 2, column 1 (a): expected a finite number, got \"\""},
        {"a,b\n1 2,x\n", NULL, "row 2, column 1 (a): expected a finite number, got \"1 2\""},
        {"a,b\n0x,x\n", NULL, "row 2, column 1 (a): expected a finite number, got \"0x\""},
        {"a,b\n\"\x01\xff\",x\n", NULL, "row 2, column 1 (a): expected a finite number, got \"\\x01\\xFF\""},
        {"a,b\n1,\n", NULL, "row 2, column 2 (b): empty label"},
        {"a,b\n1,\"\xff\"\n", NULL, "row 2, column 2 (b): a label must be UTF-8 without NUL bytes"},
        {"a,a,b\n1,2,x\n", NULL, "row 1, column 2: duplicate column name \"a\" (also column 1)"},
        {"a,,b\n1,2,x\n", NULL, "row 1, column 2: empty column name"},
        {"a,b,c\n1,2,x\n", "species", "label column \"species\" not found; columns are a, b, c"},
        {"a,b\n1,\"x\"y\n", NULL, "row 2: malformed quoting"},
        {"a,b\n1,x\"y\n", NULL, "row 2: malformed quoting"},
        {"a,b\n1,\"x\n", NULL, "row 2: a quoted field is not closed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        csv_expect_error(cases[i].text, cases[i].label, &l, cases[i].msg);
}

Test(csv, limits_fail_while_streaming)
{
    srv_limits l = csv_limits();
    l.max_cells = 10;
    /* two features: the sixth data row (row 7) would make 12 values */
    csv_expect_error("a,b,y\n1,2,x\n1,2,x\n1,2,x\n1,2,x\n1,2,x\n1,2,x\n", NULL, &l,
                     "row 7: the data set has more than 10 values (rows x 2 features)");
    l = csv_limits();
    l.max_features = 2;
    csv_expect_error("a,b,c,d\n1,2,3,x\n", NULL, &l,
                     "row 1: more than 3 columns; the limit is 2 features plus the label");
    l = csv_limits();
    l.max_classes = 2;
    csv_expect_error("a,y\n1,x\n2,y\n3,x\n4,z\n", NULL, &l,
                     "row 5, column 2 (y): more than 2 distinct classes");

    /* Past max_classes distinct values a label column can only be a
     * numeric target (and is kept as one, 4 bytes a row); text after
     * that means too many classes. */
    csv_expect_error("a,y\n1,1\n2,2\n3,3\n4,x\n", NULL, &l,
                     "row 5, column 2 (y): more than 2 distinct classes");
    static const char *const numeric = "a,y\n1,1\n2,2.5\n3,3\n4,4\n5,2.5\n";
    for (size_t chunk = 0; chunk < 3; chunk++) {
        srv_err e = {0};
        ds_data *d = NULL;
        cr_assert_eq(csv_run(numeric, strlen(numeric), chunk, NULL, &l, &d, &e), 0, "%s", e.msg);
        cr_expect_eq(d->rows, 5);
        cr_expect_eq(d->target_width, 1);
        cr_expect_null(d->labels);
        const float want[] = {1, 2.5f, 3, 4, 2.5f};
        for (int i = 0; i < 5; i++)
            cr_expect_float_eq(d->Y[i], want[i], 0, "Y[%d]", i);
        ds_data_free(d);
    }

    /* A class name of more than 1024 bytes, and a field over the parser's
     * cap, fail without buffering the rest. */
    l = csv_limits();
    size_t n = 200000;
    char *big = malloc(n + 64);
    strcpy(big, "a,b\n1,");
    memset(big + 6, 'z', n);
    strcpy(big + 6 + n, "\n");
    csv_expect_error(big, NULL, &l, "row 2: a field is longer than 65536 bytes");
    big[6 + 1025] = '\n';
    big[6 + 1026] = '\0';
    csv_expect_error(big, NULL, &l,
                     "row 2, column 2 (b): expected a label of at most 1024 bytes, got 1025");
    free(big);
}

Test(csv, errors_stick)
{
    srv_limits l = csv_limits();
    srv_err e = {0};
    csvload *c = NULL;
    cr_assert_eq(csvload_begin(NULL, &l, &c, &e), 0);
    cr_assert_eq(csvload_feed(c, "a,b\n1,x\nq,y\n", 12, &e), -1);
    cr_expect_str_eq(e.msg, "row 3, column 1 (a): expected a finite number, got \"q\"");
    memset(&e, 0, sizeof e);
    cr_expect_eq(csvload_feed(c, "2,z\n", 4, &e), -1);
    cr_expect_str_eq(e.msg, "row 3, column 1 (a): expected a finite number, got \"q\"");
    ds_data *d = (ds_data *)1;
    memset(&e, 0, sizeof e);
    cr_expect_eq(csvload_finish(c, &d, &e), -1);
    cr_expect_null(d);
    cr_expect_eq(e.code, ERR_INVALID_ARGUMENT);
    csvload_free(c);
    csvload_free(NULL);

    /* Freed half-way, with data held: no leak (checked under ASan). */
    cr_assert_eq(csvload_begin("y", &l, &c, &e), 0);
    cr_assert_eq(csvload_feed(c, "a,y\n1,x\n2,y\n3", 13, &e), 0);
    csvload_free(c);
}

Test(csv, many_rows_and_distinct_targets)
{
    /* 100k rows with all-distinct numeric labels: the matrix grows
     * geometrically and the label column ends as a numeric target. */
    srv_limits l = csv_limits();
    l.max_classes = 1000;
    size_t cap = 4u << 20, n = 0;
    char *buf = malloc(cap);
    n += (size_t)snprintf(buf, cap, "x1,x2,target\n");
    for (int i = 0; i < 100000; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%d,-%d.5,%d.25\n", i, i, i);
    srv_err e = {0};
    ds_data *d = NULL, *c = NULL;
    cr_assert_eq(csv_run(buf, n, 0, NULL, &l, &d, &e), 0, "%s", e.msg);
    cr_assert_eq(csv_run(buf, n, 65536 + 3, NULL, &l, &c, &e), 0, "%s", e.msg);
    cr_expect_eq(d->rows, 100000);
    cr_expect_eq(d->features, 2);
    cr_expect_eq(d->target_width, 1);
    for (int i = 0; i < 100000; i += 9973) {
        cr_expect_float_eq(d->X[2 * i], (float)i, 0);
        cr_expect_float_eq(d->X[2 * i + 1], -((float)i + 0.5f), 0);
        cr_expect_float_eq(d->Y[i], (float)(i + 0.25), 0, "Y[%d]", i);
    }
    csv_expect_same(d, c, "64K chunks");
    ds_data_free(d);
    ds_data_free(c);
    free(buf);
}
