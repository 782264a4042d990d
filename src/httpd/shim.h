/* Wrappers for httpd/APR function-like macros that bindgen cannot see.
 * Nothing else belongs here: every function is a one-line expansion of a
 * macro, so the Rust side keeps all the logic. */
#ifndef MWRS_SHIM_H
#define MWRS_SHIM_H

#include <httpd.h>
#include <http_log.h>
#include <apr_buckets.h>

/* ap_log_error / ap_log_rerror are macros over the variadic ap_log_error_.
 * The message is always passed through a fixed "%s", never as a format. */
void mwrs_log_error(const char *file, int line, int module_index, int level,
                    apr_status_t status, const server_rec *s, const char *msg);
void mwrs_log_rerror(const char *file, int line, int module_index, int level,
                     apr_status_t status, const request_rec *r, const char *msg);
/* APLOG_MODULE_IS_LEVEL / APLOG_R_MODULE_IS_LEVEL */
int mwrs_server_is_level(const server_rec *s, int module_index, int level);
int mwrs_request_is_level(const request_rec *r, int module_index, int level);

/* APR_BRIGADE_INSERT_TAIL */
void mwrs_brigade_insert_tail(apr_bucket_brigade *bb, apr_bucket *b);
/* apr_bucket_eos_create / flush are real functions; these are macros: */
int mwrs_brigade_empty(apr_bucket_brigade *bb);
/* APR_BRIGADE_FIRST, APR_BRIGADE_SENTINEL, APR_BUCKET_NEXT */
apr_bucket *mwrs_brigade_first(apr_bucket_brigade *bb);
apr_bucket *mwrs_brigade_sentinel(apr_bucket_brigade *bb);
apr_bucket *mwrs_bucket_next(apr_bucket *e);
/* APR_BUCKET_IS_SOCKET */
int mwrs_bucket_is_socket(apr_bucket *e);

#endif
