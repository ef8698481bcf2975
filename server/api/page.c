/*
 * page.c - the paging of every list endpoint: ?limit= and ?after= read at
 * the edge, and the {"<items>": [...], "next": cursor|null} body.  The
 * store does the paging itself (store.h, store_page).
 */
#include "api/api.h"

#include <errno.h>
#include <stdlib.h>

#include "name.h"

static int page_limit(const char *s, uint32_t *out, srv_err *e)
{
    char *end;
    unsigned long v;
    if (!s || s[0] < '0' || s[0] > '9')
        goto bad;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v < 1 || v > STORE_PAGE_MAX)
        goto bad;
    *out = (uint32_t)v;
    return 0;
bad:
    return err_set(e, ERR_INVALID_ARGUMENT, "limit: expected a whole number from 1 to %d, got \"%.32s\"",
                   STORE_PAGE_MAX, s ? s : "");
}

/* A sequence cursor: the digits of a positive 63-bit number. */
static int page_seq(const char *s, srv_err *e)
{
    char *end;
    long long v;
    errno = 0;
    v = s && s[0] >= '1' && s[0] <= '9' ? strtoll(s, &end, 10) : 0;
    if (v <= 0 || errno || *end)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "after: expected the \"next\" value of the previous page, got \"%.32s\"",
                       s ? s : "");
    return 0;
}

int api_page_parse(const http_req *rq, api_page_kind kind, store_page *pg, srv_err *e)
{
    const char *limit = http_query(rq, "limit"), *after = http_query(rq, "after");
    pg->limit = STORE_PAGE_MAX;
    pg->after = NULL;
    pg->next[0] = '\0';
    if (limit && page_limit(limit, &pg->limit, e) != 0)
        return -1;
    if (after) {
        if (kind == PAGE_BY_NAME ? name_check("after", after, e) != 0 : page_seq(after, e) != 0)
            return -1;
        pg->after = after;
    }
    return 0;
}

void api_page_list(app *a, const http_req *rq, http_res *rs, api_page_kind kind,
                   store_list_fn list, const char *key)
{
    srv_err e = {0};
    json_t *arr = NULL;
    store_page pg;
    if (api_page_parse(rq, kind, &pg, &e) != 0) {
        http_res_error(rs, &e);
        return;
    }
    store *s = store_pool_get(a->pool);
    int rc = s ? list(s, &pg, &arr, &e)
               : err_set(&e, ERR_UNAVAILABLE, "the database is not available; retry later");
    store_pool_put(a->pool, s);
    if (rc != 0) {
        http_res_error(rs, &e);
        return;
    }
    http_res_json(rs, 200, api_page_body(key, arr, &pg));
}

json_t *api_page_body(const char *key, json_t *items, const store_page *pg)
{
    return json_pack("{s:o,s:o}", key, items, "next",
                     pg->next[0] ? json_string(pg->next) : json_null());
}
