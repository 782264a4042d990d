//! A `bytes` object filled in place: `wsgi.input` reads the request body
//! straight into the object it returns, with no zero-fill and no staging
//! copy (CPython's `PyBytesWriter`: uninitialised storage, fill, shrink).
//!
//! pyo3's `PyBytes::new_with` zero-fills first and cannot shrink the
//! object afterwards; a 50 MiB upload read in 64 KiB blocks paid a memset
//! and two copies per block through it and a staging `Vec`.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::mem::MaybeUninit;

/// A `bytes` object under construction (CPython's `PyBytesWriter`, which
/// pyo3 provides for every Python version): `len` bytes written, room for
/// `cap`. Nobody else can see the object until [`NewBytes::finish`], so
/// writing into it with the GIL released is fine although `bytes` are
/// immutable.
pub struct NewBytes {
    /// Never null until finished or dropped.
    writer: *mut ffi::compat::PyBytesWriter,
    len: usize,
    cap: usize,
}

// SAFETY: the writer and its object are private to this value; their
// storage may be written from whichever thread holds the value. Creating,
// growing, finishing and discarding take the GIL.
unsafe impl Send for NewBytes {}

fn py_size(n: usize) -> PyResult<ffi::Py_ssize_t> {
    ffi::Py_ssize_t::try_from(n).map_err(|_| pyo3::exceptions::PyMemoryError::new_err(()))
}

impl NewBytes {
    /// `PyBytesWriter_Create(cap)`: uninitialised storage.
    pub fn with_capacity(py: Python<'_>, cap: usize) -> PyResult<NewBytes> {
        let size = py_size(cap)?;
        // SAFETY: the GIL is held (py).
        let writer = unsafe { ffi::compat::PyBytesWriter_Create(size) };
        if writer.is_null() {
            return Err(PyErr::fetch(py));
        }
        Ok(NewBytes {
            writer,
            len: 0,
            cap,
        })
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left.
    pub fn spare_len(&self) -> usize {
        self.cap - self.len
    }

    fn data_ptr(&self) -> *mut u8 {
        // SAFETY: a live writer; the pointer is valid for cap bytes until
        // the next resize.
        unsafe { ffi::compat::PyBytesWriter_GetData(self.writer) as *mut u8 }
    }

    /// Appends a copy of as much of `data` as fits in the spare room.
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        let n = data.len().min(self.spare_len());
        // SAFETY: the destination lies inside the writer's cap bytes, past
        // what was written; the storage is private, so no overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.data_ptr().add(self.len), n);
        }
        self.len += n;
    }

    /// Lets `f` write into the spare room (possibly with the GIL released)
    /// and counts the bytes it reports as written at the start of it. `f`
    /// must report no more than it wrote; counts over the room are clamped.
    pub fn fill<E>(
        &mut self,
        f: impl FnOnce(&mut [MaybeUninit<u8>]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        let spare = self.spare_len();
        // SAFETY: the slice covers the unwritten tail of the writer's
        // storage, which only this value can reach; MaybeUninit makes no
        // claim about its contents.
        let tail = unsafe {
            std::slice::from_raw_parts_mut(
                self.data_ptr().add(self.len) as *mut MaybeUninit<u8>,
                spare,
            )
        };
        let n = f(tail)?.min(spare);
        self.len += n;
        Ok(n)
    }

    /// Grows the room to at least `cap` bytes (`PyBytesWriter_Resize`, a
    /// realloc that over-allocates a little).
    pub fn reserve_total(&mut self, py: Python<'_>, cap: usize) -> PyResult<()> {
        if cap <= self.cap {
            return Ok(());
        }
        let size = py_size(cap)?;
        // SAFETY: GIL held; a live writer.
        if unsafe { ffi::compat::PyBytesWriter_Resize(self.writer, size) } < 0 {
            return Err(PyErr::fetch(py));
        }
        self.cap = cap;
        Ok(())
    }

    /// The finished object, shrunk to what was written.
    pub fn finish(mut self, py: Python<'_>) -> PyResult<Bound<'_, PyBytes>> {
        let size = py_size(self.len)?;
        let writer = std::mem::replace(&mut self.writer, std::ptr::null_mut());
        // SAFETY: GIL held; the first len bytes are written; the writer is
        // consumed (freed) by this call whatever its result.
        let obj = unsafe { ffi::compat::PyBytesWriter_FinishWithSize(writer, size) };
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        // SAFETY: an owned reference to a new bytes object.
        Ok(unsafe { Bound::from_owned_ptr(py, obj).cast_into_unchecked() })
    }
}

impl Drop for NewBytes {
    fn drop(&mut self) {
        if !self.writer.is_null() {
            let writer = self.writer;
            // Never became visible: discard it with the GIL (re-attaching
            // if this runs detached).
            Python::attach(|_| {
                // SAFETY: a live writer, discarded once, GIL held.
                unsafe { ffi::compat::PyBytesWriter_Discard(writer) }
            });
        }
    }
}
