#include "shim.h"

void mwrs_log_error(const char *file, int line, int module_index, int level,
                    apr_status_t status, const server_rec *s, const char *msg)
{
    ap_log_error_(file, line, module_index, level, status, s, "%s", msg);
}

void mwrs_log_rerror(const char *file, int line, int module_index, int level,
                     apr_status_t status, const request_rec *r, const char *msg)
{
    ap_log_rerror_(file, line, module_index, level, status, r, "%s", msg);
}

int mwrs_server_is_level(const server_rec *s, int module_index, int level)
{
    return APLOG_MODULE_IS_LEVEL(s, module_index, level);
}

int mwrs_request_is_level(const request_rec *r, int module_index, int level)
{
    return APLOG_R_MODULE_IS_LEVEL(r, module_index, level);
}

void mwrs_brigade_insert_tail(apr_bucket_brigade *bb, apr_bucket *b)
{
    APR_BRIGADE_INSERT_TAIL(bb, b);
}

int mwrs_brigade_empty(apr_bucket_brigade *bb)
{
    return APR_BRIGADE_EMPTY(bb);
}

apr_bucket *mwrs_brigade_first(apr_bucket_brigade *bb)
{
    return APR_BRIGADE_FIRST(bb);
}

apr_bucket *mwrs_brigade_sentinel(apr_bucket_brigade *bb)
{
    return APR_BRIGADE_SENTINEL(bb);
}

apr_bucket *mwrs_bucket_next(apr_bucket *e)
{
    return APR_BUCKET_NEXT(e);
}

int mwrs_bucket_is_socket(apr_bucket *e)
{
    return APR_BUCKET_IS_SOCKET(e);
}
