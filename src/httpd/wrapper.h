/* Everything the httpd layer binds. Kept in one place so bindgen and the C
 * shim see the same declarations. */
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_main.h>
#include <http_protocol.h>
#include <http_request.h>
#include <ap_mpm.h>
#include <ap_regex.h>
#include <util_script.h>
#include <util_filter.h>
#include <mod_auth.h>
#include <unixd.h>
#include <apr_strings.h>
#include <apr_buckets.h>
#include <apr_date.h>
#include <apr_file_io.h>
#include <apr_thread_proc.h>
#include "shim.h"
