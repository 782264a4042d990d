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

    /// `ap_get_module_config(s->lookup_defaults, &wsgi_module)`: the module's
    /// directory config made of this server's directives outside any
    /// section (null if there is none).
    pub(crate) fn default_dir_module_config(&self) -> *mut c_void {
        let v = self.raw().lookup_defaults;
        if v.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: lookup_defaults is this server's per-directory vector.
        unsafe { sys::ap_get_module_config(v, crate::module::module_ptr()) }
    }

    /// The `<Directory>` (`sec_dir`) and `<Location>` (`sec_url`) sections
    /// core keeps for this server, in its order, each with the module's
    /// directory config made in it. For a VirtualHost, after httpd merged
    /// the configuration (post_config and later), the main server's come
    /// first.
    pub(crate) fn sections(&self) -> Vec<SectionRef<'_>> {
        let mut out = Vec::new();
        // SAFETY: core's server config is a core_server_config (http_core.h);
        // its arrays hold ap_conf_vector_t pointers and live in pconf, as do
        // the vectors, their core_dir_config and their strings.
        unsafe {
            let conf = sys::ap_get_core_module_config(self.raw().module_config)
                as *const sys::core_server_config;
            if conf.is_null() {
                return out;
            }
            for (is_dir, arr) in [(true, (*conf).sec_dir), (false, (*conf).sec_url)] {
                if arr.is_null() {
                    continue;
                }
                let n = (*arr).nelts.max(0) as usize;
                let elts = (*arr).elts as *const *mut sys::ap_conf_vector_t;
                for i in 0..n {
                    let v = *elts.add(i);
                    if v.is_null() {
                        continue;
                    }
                    let core = sys::ap_get_core_module_config(v) as *const sys::core_dir_config;
                    if core.is_null() || (*core).d.is_null() {
                        continue;
                    }
                    out.push(SectionRef {
                        is_directory: is_dir,
                        path: CStr::from_ptr((*core).d).to_str().unwrap_or(""),
                        is_pattern: !(*core).r.is_null() || (*core).d_is_fnmatch() != 0,
                        components: (*core).d_components,
                        module_config: sys::ap_get_module_config(v, crate::module::module_ptr()),
                    });
                }
            }
        }
        out
    }
}

/// One `<Directory>` or `<Location>` section: see [`Server::sections`].
pub(crate) struct SectionRef<'a> {
    pub(crate) is_directory: bool,
    pub(crate) path: &'a str,
    /// A regular-expression or wildcard section.
    pub(crate) is_pattern: bool,
    /// core's `d_components`: the number of '/' in the path.
    pub(crate) components: u32,
    /// The module's directory config in this section (null if none).
    pub(crate) module_config: *mut c_void,
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
