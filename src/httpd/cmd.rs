//! `cmd_parms`: what httpd hands a directive handler.

use super::{Pool, Server, sys};
use std::ffi::CStr;
use std::os::raw::c_char;

#[repr(transparent)]
/// Wraps the C struct in an UnsafeCell: httpd and our own setters write
/// through shared references, which is only sound through UnsafeCell.
pub(crate) struct CmdParms(std::cell::UnsafeCell<sys::cmd_parms>);

impl CmdParms {
    /// # Safety
    /// `c` must be the live cmd_parms of the directive being processed.
    pub(crate) unsafe fn from_ptr<'a>(c: *mut sys::cmd_parms) -> &'a CmdParms {
        // SAFETY: repr(transparent); liveness is the caller's.
        unsafe { &*(c as *const CmdParms) }
    }

    fn raw(&self) -> &sys::cmd_parms {
        // SAFETY: httpd does not change cmd_parms while a handler runs.
        unsafe { &*self.0.get() }
    }

    fn as_ptr(&self) -> *mut sys::cmd_parms {
        self as *const CmdParms as *mut sys::cmd_parms
    }

    pub(crate) fn server(&self) -> &Server {
        // SAFETY: cmd->server is the server being configured.
        unsafe { Server::from_ptr(self.raw().server) }
    }

    pub(crate) fn pool(&self) -> &Pool {
        // SAFETY: cmd->pool is pconf, live for the configuration generation.
        unsafe { Pool::from_ptr(self.raw().pool) }
    }

    pub(crate) fn temp_pool(&self) -> &Pool {
        // SAFETY: live for the duration of configuration reading.
        unsafe { Pool::from_ptr(self.raw().temp_pool) }
    }

    /// `cmd->info`: the `cmd_data` of the command_rec entry.
    pub(crate) fn info(&self) -> *mut std::ffi::c_void {
        self.raw().info
    }

    /// `ap_check_cmd_context`: httpd's own sentence when the directive is in
    /// a section where it is not allowed.
    pub(crate) fn check_context(&self, forbidden: u32) -> Result<(), String> {
        // SAFETY: valid cmd_parms; the returned message lives in cmd->pool.
        let msg = unsafe { sys::ap_check_cmd_context(self.as_ptr(), forbidden) };
        if msg.is_null() {
            Ok(())
        } else {
            // SAFETY: NUL-terminated pool string.
            Err(unsafe { CStr::from_ptr(msg) }
                .to_string_lossy()
                .into_owned())
        }
    }

    /// Splits the raw argument string with `ap_getword_conf` (quotes and
    /// backslash escapes as httpd handles them everywhere else).
    pub(crate) fn split_args(&self, args: *const c_char) -> Vec<String> {
        let mut out = Vec::new();
        if args.is_null() {
            return out;
        }
        let mut p = args;
        loop {
            // SAFETY: p walks the NUL-terminated argument string; each word
            // is allocated in temp_pool.
            let w = unsafe { sys::ap_getword_conf(self.temp_pool().as_ptr(), &mut p) };
            if w.is_null() {
                break;
            }
            let w = unsafe { CStr::from_ptr(w) };
            if w.to_bytes().is_empty() {
                // ap_getword_conf returns "" at the end of the line.
                // SAFETY: p points into the argument string.
                if unsafe { *p } == 0 {
                    break;
                }
            }
            out.push(w.to_string_lossy().into_owned());
        }
        out
    }
}
