/*
 * fuzz_csv.c - libFuzzer harness for the streaming CSV loader (csvload.c),
 * fed the way http.c feeds it: csvload_begin, csvload_feed per chunk of the
 * body as it arrives, csvload_finish, csvload_free.
 *
 * Input layout:
 *   byte 0       seeds the chunk sizes (a small xorshift over it); its low
 *                bit picks the limits (fuzz_limits, fuzz_common.h): loose,
 *                or tight enough that the column, cell and class limits
 *                (and the switch of a label column with too many distinct
 *                values to numeric) are reached by a few hundred bytes
 *   then         if a NUL byte follows within 80 bytes: the label column's
 *                name (the ?label= query value; empty means none, as http.c
 *                rejects an empty one before csvload sees it), then the CSV;
 *                otherwise all of it is the CSV and the label is the last
 *                column.
 *
 * Checks besides "no crash, no leak, no UB": the result does not depend on
 * how the body was cut into chunks (the same CSV fed whole and in varying
 * chunks gives the same data set, or the same error), a failure carries a
 * 4xx code and a message err_to_json can encode, and a data set respects
 * the limits and has the shape it claims.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define FUZZ_NAME "fuzz_csv"
#include "decode/csvload.h"
#include "decode/dataset.h"
#include "fuzz_common.h"

#define LABEL_MAX 80

/* The limits in force for the current input. */
static srv_limits g_lim;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One run of the loader over csv[0..n) cut into chunks; seed 0 = whole. */
static int load(const char *label, const uint8_t *csv, size_t n, unsigned seed, ds_data **out,
                srv_err *e)
{
    csvload *c = NULL;
    *out = NULL;
    memset(e, 0, sizeof *e);
    if (csvload_begin(label, &g_lim, &c, e) != 0) {
        fuzz_check_error("csvload", e);
        return -1;
    }
    int failed = 0;
    size_t off = 0;
    uint32_t x = seed * 2654435761u + 1;
    while (off < n) {
        size_t len = n - off;
        if (seed) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            /* Mostly tiny chunks (cuts inside fields, quotes, CRLF), some
             * empty ones, now and then a large one. */
            size_t want = (x & 7) == 0 ? (x >> 8) % 512 : (x >> 8) % 5;
            if (want < len)
                len = want;
        }
        srv_err fe = {0};
        if (csvload_feed(c, (const char *)csv + off, len, &fe) != 0) {
            fuzz_check_error("csvload", &fe);
            if (!failed)
                *e = fe;
            failed = 1;
            /* http.c stops feeding after the first error; keep feeding
             * here once to check it keeps failing with that error. */
            srv_err again = {0};
            if (csvload_feed(c, "x", 1, &again) == 0)
                fuzz_fail("csvload_feed", "succeeded after an error");
            break;
        }
        off += len;
    }
    int rc = -1;
    if (failed) {
        /* http.c answers with the feed error and never calls finish. */
    } else if (csvload_finish(c, out, e) == 0) {
        fuzz_check_data("csvload", *out, &g_lim, 1);
        rc = 0;
    } else {
        fuzz_check_error("csvload", e);
        if (*out)
            fuzz_fail("csvload_finish", "failed but set *out");
    }
    csvload_free(c);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned seed = data[0] | 0x100u; /* never 0: 0 means "one chunk" */
    g_lim = *fuzz_limits_for(data[0] & 1);
    data++;
    size--;

    char labelbuf[LABEL_MAX + 1];
    const char *label = NULL;
    const uint8_t *nul = memchr(data, '\0', size < LABEL_MAX ? size : LABEL_MAX);
    if (nul) {
        size_t ln = (size_t)(nul - data);
        memcpy(labelbuf, data, ln);
        labelbuf[ln] = '\0';
        if (ln > 0)
            label = labelbuf;
        size -= ln + 1;
        data = nul + 1;
    }

    ds_data *whole = NULL, *chunked = NULL;
    srv_err ew, ec;
    int rw = load(label, data, size, 0, &whole, &ew);
    int rc = load(label, data, size, seed, &chunked, &ec);
    if (rw != rc)
        fuzz_fail("csvload: chunking changes the outcome", rw == 0 ? ec.msg : ew.msg);
    if (rw == 0 && !fuzz_same_data(whole, chunked))
        fuzz_fail("csvload", "chunking changes the data set");
    if (rw != 0 && (ew.code != ec.code || strcmp(ew.msg, ec.msg) != 0)) {
        fprintf(stderr, "whole:   %s\nchunked: %s\n", ew.msg, ec.msg);
        fuzz_fail("csvload", "chunking changes the error");
    }
    ds_data_free(whole);
    ds_data_free(chunked);
    return 0;
}
