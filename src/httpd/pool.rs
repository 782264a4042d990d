//! `apr_pool_t`: memory and cleanups with a lifetime Apache decides.

use super::sys;
use std::ffi::c_void;
use std::os::raw::c_char;

#[repr(transparent)]
/// Wraps the C struct in an UnsafeCell: httpd and our own setters write
/// through shared references, which is only sound through UnsafeCell.
pub(crate) struct Pool(std::cell::UnsafeCell<sys::apr_pool_t>);

impl Pool {
    /// # Safety
    /// `p` must be a live pool that outlives `'a`.
    pub(crate) unsafe fn from_ptr<'a>(p: *mut sys::apr_pool_t) -> &'a Pool {
        // SAFETY: repr(transparent) over apr_pool_t; liveness is the caller's.
        unsafe { &*(p as *const Pool) }
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::apr_pool_t {
        self as *const Pool as *mut sys::apr_pool_t
    }

    /// `apr_pstrmemdup`: a NUL-terminated copy of `s` owned by the pool.
    /// Interior NULs cut the C view short, never memory safety.
    pub(crate) fn strdup(&self, s: &[u8]) -> *const c_char {
        // SAFETY: apr_pstrmemdup copies len bytes and appends a NUL.
        unsafe { sys::apr_pstrmemdup(self.as_ptr(), s.as_ptr() as *const c_char, s.len()) }
    }

    /// Moves `value` into the pool's lifetime: it is dropped by a pool
    /// cleanup when the pool is cleared or destroyed.
    pub(crate) fn give<T: 'static>(&self, value: T) -> *mut T {
        unsafe extern "C" fn drop_box<T>(data: *mut c_void) -> sys::apr_status_t {
            // SAFETY: registered below with a pointer from Box::into_raw::<T>,
            // and APR runs each cleanup once.
            drop(unsafe { Box::from_raw(data as *mut T) });
            0
        }
        let raw = Box::into_raw(Box::new(value));
        // SAFETY: the pool is live (self borrows it); the cleanup frees the box.
        unsafe {
            sys::apr_pool_cleanup_register(
                self.as_ptr(),
                raw as *const c_void,
                Some(drop_box::<T>),
                Some(sys::apr_pool_cleanup_null),
            )
        };
        raw
    }

    /// Registers `f` to run when the pool is cleared (`apr_pool_cleanup_register`).
    pub(crate) fn on_cleanup(&self, f: Box<dyn FnOnce()>) {
        unsafe extern "C" fn run(data: *mut c_void) -> sys::apr_status_t {
            // SAFETY: data is the Box<Box<dyn FnOnce()>> leaked below; APR
            // runs a cleanup once.
            let f = unsafe { Box::from_raw(data as *mut Box<dyn FnOnce()>) };
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            0
        }
        let raw = Box::into_raw(Box::new(f));
        // SAFETY: as in `give`.
        unsafe {
            sys::apr_pool_cleanup_register(
                self.as_ptr(),
                raw as *const c_void,
                Some(run),
                Some(sys::apr_pool_cleanup_null),
            )
        };
    }
}
