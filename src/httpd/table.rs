//! `apr_table_t`: httpd's ordered, case-insensitive string multimap.

use super::sys;
use std::ffi::CStr;
use std::marker::PhantomData;

#[repr(transparent)]
/// Wraps the C struct in an UnsafeCell: httpd and our own setters write
/// through shared references, which is only sound through UnsafeCell.
pub(crate) struct Table(std::cell::UnsafeCell<sys::apr_table_t>);

impl Table {
    /// # Safety
    /// `t` must be a live table that outlives `'a`.
    pub(crate) unsafe fn from_ptr<'a>(t: *mut sys::apr_table_t) -> &'a Table {
        // SAFETY: repr(transparent); liveness is the caller's.
        unsafe { &*(t as *const Table) }
    }

    fn as_ptr(&self) -> *mut sys::apr_table_t {
        self as *const Table as *mut sys::apr_table_t
    }

    /// `apr_table_get`
    pub(crate) fn get(&self, key: &CStr) -> Option<&CStr> {
        // SAFETY: the table is live for &self; the value lives in its pool.
        let v = unsafe { sys::apr_table_get(self.as_ptr(), key.as_ptr()) };
        if v.is_null() {
            None
        } else {
            // SAFETY: apr tables hold NUL-terminated strings.
            Some(unsafe { CStr::from_ptr(v) })
        }
    }

    /// `apr_table_set` (copies both key and value into the table's pool).
    pub(crate) fn set(&self, key: &CStr, val: &CStr) {
        // SAFETY: apr_table_set copies both strings.
        unsafe { sys::apr_table_set(self.as_ptr(), key.as_ptr(), val.as_ptr()) }
    }

    /// `apr_table_add` (copies both).
    pub(crate) fn add(&self, key: &CStr, val: &CStr) {
        // SAFETY: apr_table_add copies both strings.
        unsafe { sys::apr_table_add(self.as_ptr(), key.as_ptr(), val.as_ptr()) }
    }

    /// `apr_table_unset`
    pub(crate) fn unset(&self, key: &CStr) {
        // SAFETY: the table is live.
        unsafe { sys::apr_table_unset(self.as_ptr(), key.as_ptr()) }
    }

    /// `apr_table_elts`: the entries in order. Deleted entries have a NULL key.
    pub(crate) fn iter(&self) -> TableIter<'_> {
        // SAFETY: apr_table_elts(t) is a cast of the table to its array
        // header; the table's first member is that header.
        let arr = self.as_ptr() as *const sys::apr_array_header_t;
        let (elts, n) = unsafe { ((*arr).elts as *const sys::apr_table_entry_t, (*arr).nelts) };
        TableIter {
            elts,
            n: n.max(0) as usize,
            i: 0,
            _t: PhantomData,
        }
    }
}

pub(crate) struct TableIter<'a> {
    elts: *const sys::apr_table_entry_t,
    n: usize,
    i: usize,
    _t: PhantomData<&'a Table>,
}

impl<'a> Iterator for TableIter<'a> {
    type Item = (&'a CStr, &'a CStr);
    fn next(&mut self) -> Option<Self::Item> {
        while self.i < self.n {
            // SAFETY: i < nelts, and the entries live as long as the table.
            let e = unsafe { &*self.elts.add(self.i) };
            self.i += 1;
            if e.key.is_null() {
                continue;
            }
            // SAFETY: keys and values are NUL-terminated pool strings.
            let k = unsafe { CStr::from_ptr(e.key) };
            let v = if e.val.is_null() {
                c""
            } else {
                unsafe { CStr::from_ptr(e.val) }
            };
            return Some((k, v));
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.n - self.i))
    }
}
