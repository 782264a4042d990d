//! `server_rec`: the main server or one VirtualHost.

use super::sys;
use std::ffi::{CStr, c_void};

#[repr(transparent)]
/// Wraps the C struct in an UnsafeCell: httpd and our own setters write
/// through shared references, which is only sound through UnsafeCell.
pub(crate) struct Server(std::cell::UnsafeCell<sys::server_rec>);

impl Server {
    /// # Safety
    /// `s` must be a live server_rec that outlives `'a` (they live as long as
    /// the configuration pool).
    pub(crate) unsafe fn from_ptr<'a>(s: *const sys::server_rec) -> &'a Server {
        // SAFETY: repr(transparent); liveness is the caller's.
        unsafe { &*(s as *const Server) }
    }

    /// `ap_server_conf`: the main server.
    pub(crate) fn main() -> Option<&'static Server> {
        // SAFETY: ap_server_conf is set before any hook runs and lives for
        // the configuration generation we are in.
        unsafe {
            let s = sys::ap_server_conf;
            if s.is_null() {
                None
            } else {
                Some(Server::from_ptr(s))
            }
        }
    }

    fn raw(&self) -> &sys::server_rec {
        // SAFETY: server_recs are only written while configuration is read.
        unsafe { &*self.0.get() }
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::server_rec {
        self as *const Server as *mut sys::server_rec
    }

    pub(crate) fn hostname(&self) -> &str {
        let h = self.raw().server_hostname;
        if h.is_null() {
            return "";
        }
        // SAFETY: NUL-terminated and lives in pconf.
        unsafe { CStr::from_ptr(h) }.to_str().unwrap_or("")
    }

    /// The next server in httpd's list (the VirtualHosts follow the main one).
    pub(crate) fn next(&self) -> Option<&Server> {
        // SAFETY: the server list lives in pconf as long as self.
        unsafe { self.raw().next.as_ref().map(|s| Server::from_ptr(s)) }
    }

    pub(crate) fn is_virtual(&self) -> bool {
        self.raw().is_virtual != 0
    }

    /// `ap_get_module_config(s->module_config, &wsgi_module)`
    pub(crate) fn module_config(&self) -> *mut c_void {
        // SAFETY: module_config is this server's config vector.
        unsafe { sys::ap_get_module_config(self.raw().module_config, crate::module::module_ptr()) }
    }
}
