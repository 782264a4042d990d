//! The only code that sees bindgen output. Everything here is a small
//! wrapper that borrows from the request, pool or server it came from;
//! the rest of the crate never touches a raw httpd pointer except through
//! these types.

pub(crate) mod sys;

pub(crate) mod auth;
pub(crate) mod body;
pub(crate) mod cmd;
pub(crate) mod io;
pub(crate) mod log;
pub(crate) mod pool;
pub(crate) mod request;
pub(crate) mod server;
pub(crate) mod table;

pub(crate) use pool::Pool;
pub(crate) use request::Request;
pub(crate) use server::Server;
pub(crate) use table::Table;

use std::os::raw::c_int;

/// Handler return codes, cast once: bindgen gives `OK` as u32 and
/// `DECLINED` as i32.
pub(crate) const OK: c_int = sys::OK as c_int;
pub(crate) const DECLINED: c_int = sys::DECLINED;

/// `ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG`: true in
/// the first, throw-away pass of post_config at start-up.
pub(crate) fn is_pre_config_pass() -> bool {
    // SAFETY: ap_state_query only reads httpd's global state.
    unsafe {
        sys::ap_state_query(sys::AP_SQ_MAIN_STATE as c_int)
            == sys::AP_SQ_MS_CREATE_PRE_CONFIG as c_int
    }
}

/// Whether httpd is reading its configuration files (start-up or a
/// restart), as opposed to parsing a `.htaccess` file for a request.
pub(crate) fn is_reading_config() -> bool {
    // SAFETY: ap_state_query only reads httpd's global state.
    let st = unsafe { sys::ap_state_query(sys::AP_SQ_MAIN_STATE as c_int) };
    st == sys::AP_SQ_MS_CREATE_PRE_CONFIG as c_int || st == sys::AP_SQ_MS_CREATE_CONFIG as c_int
}

/// Whether Apache runs more than one child process, as mod_wsgi decides
/// `wsgi.multiprocess` in embedded mode: a forking MPM whose
/// `AP_MPMQ_MAX_DAEMONS` (ServerLimit) is not 1.
pub(crate) fn mpm_multiprocess() -> bool {
    let mut forked: c_int = 0;
    let mut daemons: c_int = 0;
    // SAFETY: ap_mpm_query writes one int.
    let rv = unsafe { sys::ap_mpm_query(sys::AP_MPMQ_IS_FORKED as c_int, &mut forked) };
    if rv != sys::APR_SUCCESS as c_int || forked == sys::AP_MPMQ_NOT_SUPPORTED as c_int {
        return false;
    }
    // SAFETY: as above.
    unsafe { sys::ap_mpm_query(sys::AP_MPMQ_MAX_DAEMONS as c_int, &mut daemons) };
    daemons != 1
}

/// `ap_add_version_component`: appends `component` to the server's
/// version string (the `Server` header and `SERVER_SOFTWARE`, under
/// `ServerTokens Full`), for this configuration generation.
pub(crate) fn add_version_component(pconf: &Pool, component: &str) {
    let c = pconf.strdup(component.as_bytes());
    // SAFETY: pconf is live for the generation; the string lives in it.
    unsafe { sys::ap_add_version_component(pconf.as_ptr(), c) };
}

/// The MPM's threads per child (`ap_mpm_query(AP_MPMQ_MAX_THREADS)`).
pub(crate) fn mpm_threads() -> i32 {
    let mut v: c_int = 0;
    // SAFETY: ap_mpm_query writes one int.
    unsafe { sys::ap_mpm_query(sys::AP_MPMQ_MAX_THREADS as c_int, &mut v) };
    v
}
