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

    /// This server's position in httpd's server list (0 = the main server).
    /// Apache's children and the daemon processes are all forked from the
    /// parent after the configuration was read, so a position names the
    /// same VirtualHost in each of them.
    pub(crate) fn position(&self) -> u32 {
        let mut n = 0u32;
        let mut s = Server::main();
        while let Some(cur) = s {
            if std::ptr::eq(cur, self) {
                return n;
            }
            n = n.saturating_add(1);
            s = cur.next();
        }
        0
    }

    /// The server at `position` in httpd's server list (see [`Self::position`]).
    pub(crate) fn at_position(position: u32) -> Option<&'static Server> {
        let mut s = Server::main();
        for _ in 0..position {
            s = s?.next();
        }
        s
    }

    /// The server whose address is `id` (a value of [`Self::id`] taken in
    /// this configuration generation), found by walking the server list:
    /// `id` is only compared, never dereferenced.
    pub(crate) fn by_id(id: usize) -> Option<&'static Server> {
        let mut s = Server::main();
        while let Some(cur) = s {
            if cur.id() == id {
                return Some(cur);
            }
            s = cur.next();
        }
        None
    }

    /// An opaque identity for this server_rec (its address), for pure
    /// configuration code that must remember where a directive was read.
    pub(crate) fn id(&self) -> usize {
        self.as_ptr() as usize
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

/// A `&'static Server` that may be kept by objects shared between threads
/// (a daemon request's log, which Python holds). Sound because server_recs
/// are written only while the configuration is read, before any thread that
/// could hold one exists, and live for the whole configuration generation.
#[derive(Clone, Copy)]
pub(crate) struct ServerRef(&'static Server);

// SAFETY: see the type's comment: read-only after configuration.
unsafe impl Send for ServerRef {}
// SAFETY: as above.
unsafe impl Sync for ServerRef {}

impl ServerRef {
    pub(crate) fn new(s: &'static Server) -> ServerRef {
        ServerRef(s)
    }
}

impl std::ops::Deref for ServerRef {
    type Target = Server;
    fn deref(&self) -> &Server {
        self.0
    }
}
