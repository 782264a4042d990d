//! What the access-control scripts need from httpd: registering the `wsgi`
//! authn provider, the `wsgi-group` authz provider and the access checker,
//! and the request facts their cut-down environ is built from.

use super::{Request, sys};
use std::ffi::CStr;
use std::os::raw::{c_char, c_int};

/// An authn provider's answer (`authn_status` of mod_auth.h).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Authn {
    Denied,
    Granted,
    /// Digest: the user exists and this is the hex MD5 of user:realm:password.
    UserFound(Vec<u8>),
    UserNotFound,
    GeneralError,
}

/// An authz provider's answer (`authz_status` of mod_auth.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Authz {
    Denied,
    Granted,
    DeniedNoUser,
}

impl Authz {
    pub(crate) fn raw(self) -> sys::authz_status {
        match self {
            Authz::Denied => sys::authz_status_AUTHZ_DENIED,
            Authz::Granted => sys::authz_status_AUTHZ_GRANTED,
            Authz::DeniedNoUser => sys::authz_status_AUTHZ_DENIED_NO_USER,
        }
    }
}

impl Authn {
    /// The status for `check_password`/`get_realm_hash`, storing a realm
    /// hash in `r->pool` through `rethash`.
    ///
    /// # Safety
    /// `rethash` must be NULL or the pointer mod_auth_digest passed.
    pub(crate) unsafe fn raw(self, r: &Request, rethash: *mut *mut c_char) -> sys::authn_status {
        match self {
            Authn::Denied => sys::authn_status_AUTH_DENIED,
            Authn::Granted => sys::authn_status_AUTH_GRANTED,
            Authn::UserFound(hash) => {
                if rethash.is_null() {
                    return sys::authn_status_AUTH_GENERAL_ERROR;
                }
                // SAFETY: the caller's contract; the copy lives in r->pool,
                // as long as mod_auth_digest reads it.
                unsafe { *rethash = r.pool().strdup(&hash) as *mut c_char };
                sys::authn_status_AUTH_USER_FOUND
            }
            Authn::UserNotFound => sys::authn_status_AUTH_USER_NOT_FOUND,
            Authn::GeneralError => sys::authn_status_AUTH_GENERAL_ERROR,
        }
    }
}

/// A provider record httpd keeps a pointer to for as long as the module is
/// loaded.
pub(crate) struct AuthnProvider(pub(crate) sys::authn_provider);
pub(crate) struct AuthzProvider(pub(crate) sys::authz_provider);

/// `ap_register_auth_provider(p, "authn", name, "0", provider,
/// AP_AUTH_INTERNAL_PER_URI)`. Per URI, like mod_wsgi's plain
/// `ap_register_provider`: the script sees each request's own URI.
pub(crate) fn register_authn(
    p: *mut sys::apr_pool_t,
    name: &'static CStr,
    prov: &'static AuthnProvider,
) {
    // SAFETY: called from register_hooks with the pool httpd passes; the
    // provider and names are statics.
    unsafe {
        sys::ap_register_auth_provider(
            p,
            sys::AUTHN_PROVIDER_GROUP.as_ptr() as *const c_char,
            name.as_ptr(),
            sys::AUTHN_PROVIDER_VERSION.as_ptr() as *const c_char,
            &prov.0 as *const sys::authn_provider as *const std::ffi::c_void,
            sys::AP_AUTH_INTERNAL_PER_URI as c_int,
        );
    }
}

/// `ap_register_auth_provider(p, "authz", name, "0", provider,
/// AP_AUTH_INTERNAL_PER_URI)`.
pub(crate) fn register_authz(
    p: *mut sys::apr_pool_t,
    name: &'static CStr,
    prov: &'static AuthzProvider,
) {
    // SAFETY: as register_authn.
    unsafe {
        sys::ap_register_auth_provider(
            p,
            sys::AUTHZ_PROVIDER_GROUP.as_ptr() as *const c_char,
            name.as_ptr(),
            sys::AUTHZ_PROVIDER_VERSION.as_ptr() as *const c_char,
            &prov.0 as *const sys::authz_provider as *const std::ffi::c_void,
            sys::AP_AUTH_INTERNAL_PER_URI as c_int,
        );
    }
}

fn opt(p: *const c_char) -> Option<Vec<u8>> {
    if p.is_null() {
        None
    } else {
        // SAFETY: httpd strings are NUL-terminated and live in a pool that
        // outlives this call.
        Some(unsafe { CStr::from_ptr(p) }.to_bytes().to_vec())
    }
}

/// Apache's version as built against (`AP_SERVER_*_NUMBER`): the
/// `apache.version` environ key.
pub(crate) const APACHE_VERSION: (u32, u32, u32) = (
    sys::AP_SERVER_MAJORVERSION_NUMBER,
    sys::AP_SERVER_MINORVERSION_NUMBER,
    sys::AP_SERVER_PATCHLEVEL_NUMBER,
);

impl Request {
    /// `r->user`: who authenticated, once a provider said so.
    pub(crate) fn user(&self) -> Option<&CStr> {
        // SAFETY: a live request; the string lives in r->pool.
        let p = unsafe { (*self.as_ptr()).user };
        if p.is_null() {
            None
        } else {
            // SAFETY: as above.
            Some(unsafe { CStr::from_ptr(p) })
        }
    }

    /// Sets `r->user` (a copy in r->pool).
    pub(crate) fn set_user(&self, user: &[u8]) {
        let p = self.pool().strdup(user);
        // SAFETY: a live request; p lives in r->pool.
        unsafe { (*self.as_ptr()).user = p as *mut c_char };
    }

    /// `ap_get_remote_host(c, r->per_dir_config, REMOTE_HOST, NULL)`, else
    /// `r->useragent_ip`: the host an access script is asked about. With
    /// `HostnameLookups Off` (the default) that is the client's address.
    pub(crate) fn remote_host_or_ip(&self) -> Option<Vec<u8>> {
        // SAFETY: a live request and its connection.
        unsafe {
            let r = self.as_ptr();
            let h = sys::ap_get_remote_host(
                (*r).connection,
                (*r).per_dir_config as *mut std::ffi::c_void,
                sys::REMOTE_HOST as c_int,
                std::ptr::null_mut(),
            );
            opt(h).or_else(|| opt((*r).useragent_ip))
        }
    }

    /// The variables mod_wsgi passes to access-control scripts, in its
    /// order: the request headers as `HTTP_*` (never `Authorization` or
    /// `Proxy-Authorization`, and never `Proxy`), and a few CGI variables
    /// computed from the request itself. Nothing from `r->subprocess_env`:
    /// a `SetEnv` in `.htaccess` must not be able to steer these scripts.
    pub(crate) fn access_script_vars(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (k, v) in self.headers_in().iter() {
            let key = k.to_bytes();
            let name = String::from_utf8_lossy(key);
            if name.eq_ignore_ascii_case("content-type") {
                out.push((b"CONTENT_TYPE".to_vec(), v.to_bytes().to_vec()));
            } else if name.eq_ignore_ascii_case("content-length") {
                out.push((b"CONTENT_LENGTH".to_vec(), v.to_bytes().to_vec()));
            } else if name.eq_ignore_ascii_case("authorization")
                || name.eq_ignore_ascii_case("proxy-authorization")
                || name.eq_ignore_ascii_case("proxy")
            {
                continue;
            } else if let Some(env) = crate::config::dir::http2env(&name) {
                out.push((env.into_bytes(), v.to_bytes().to_vec()));
            }
        }
        // SAFETY: a live request, its server and connection; every string
        // read lives in a pool that outlives this call.
        unsafe {
            let r = self.as_ptr();
            let c = (*r).connection;
            let s = (*r).server;
            let mut push = |k: &str, v: Option<Vec<u8>>| {
                if let Some(v) = v {
                    out.push((k.as_bytes().to_vec(), v));
                }
            };
            push("SERVER_SIGNATURE", opt(sys::ap_psignature(c"".as_ptr(), r)));
            push("SERVER_SOFTWARE", opt(sys::ap_get_server_banner()));
            push(
                "SERVER_NAME",
                opt(sys::ap_escape_html2(
                    (*r).pool,
                    sys::ap_get_server_name(r),
                    0,
                )),
            );
            push("SERVER_ADDR", opt((*c).local_ip));
            push(
                "SERVER_PORT",
                Some(sys::ap_get_server_port(r).to_string().into_bytes()),
            );
            push(
                "REMOTE_HOST",
                opt(sys::ap_get_remote_host(
                    c,
                    (*r).per_dir_config as *mut std::ffi::c_void,
                    sys::REMOTE_HOST as c_int,
                    std::ptr::null_mut(),
                )),
            );
            push("REMOTE_ADDR", opt((*r).useragent_ip));
            push("DOCUMENT_ROOT", opt(sys::ap_document_root(r)));
            push("SERVER_ADMIN", opt((*s).server_admin));
            let rport = if (*c).client_addr.is_null() {
                0
            } else {
                (*(*c).client_addr).port
            };
            push("REMOTE_PORT", Some(rport.to_string().into_bytes()));
            push("SERVER_PROTOCOL", opt((*r).protocol));
            push("REQUEST_METHOD", opt((*r).method));
            push("QUERY_STRING", Some(opt((*r).args).unwrap_or_default()));
            push("REQUEST_URI", Some(original_uri(opt((*r).the_request))));
            // SCRIPT_NAME / PATH_INFO as the handler would split them.
            let uri = opt((*r).uri).unwrap_or_default();
            let path_info = opt((*r).path_info).unwrap_or_default();
            let included = opt((*r).protocol).as_deref() == Some(b"INCLUDED");
            let (script_name, path_info) = if included || path_info.is_empty() {
                (uri, path_info)
            } else {
                let at = sys::ap_find_path_info((*r).uri, (*r).path_info).max(0) as usize;
                (uri[..at.min(uri.len())].to_vec(), path_info)
            };
            push("SCRIPT_NAME", Some(script_name));
            push("PATH_INFO", Some(path_info));
        }
        out
    }
}

/// The URL as the client sent it: the request line's second word.
fn original_uri(the_request: Option<Vec<u8>>) -> Vec<u8> {
    let Some(line) = the_request else {
        return Vec::new();
    };
    let is_space = |b: &u8| crate::config::is_space(*b);
    let mut words = line.split(is_space).filter(|w| !w.is_empty());
    words.next();
    words.next().map(<[u8]>::to_vec).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_uri_is_the_second_word() {
        assert_eq!(
            original_uri(Some(b"GET /a%20b?x=1 HTTP/1.1".to_vec())),
            b"/a%20b?x=1"
        );
        assert_eq!(original_uri(Some(b"GET  /x".to_vec())), b"/x");
        assert_eq!(original_uri(Some(b"GET".to_vec())), b"");
        assert_eq!(original_uri(None), b"");
    }
}
