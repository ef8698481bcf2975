/*
 * job_status.c - the spellings of the job statuses (job_status.h).
 */
#include "job_status.h"

#include <string.h>

static const char *const names[JOB_STATUS_COUNT] = {"queued", "running", "succeeded", "failed",
                                                    "cancelled"};

const char *job_status_name(job_status s)
{
    return (unsigned)s < JOB_STATUS_COUNT ? names[s] : NULL;
}

int job_status_parse(const char *s, job_status *out)
{
    for (int i = 0; s && i < JOB_STATUS_COUNT; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (job_status)i;
            return 0;
        }
    return -1;
}

int job_status_final(job_status s)
{
    return s == JOB_SUCCEEDED || s == JOB_FAILED || s == JOB_CANCELLED;
}
