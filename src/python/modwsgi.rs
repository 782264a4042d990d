//! The `mod_wsgi` Python module, as applications see it
//! (`import mod_wsgi; mod_wsgi.process_group`).
#![forbid(unsafe_code)]

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule, PyTuple};

pub struct Info<'a> {
    pub process_group: &'a str,
    pub application_group: &'a str,
    pub maximum_processes: u32,
    pub threads_per_process: u32,
}

/// Creates `mod_wsgi` in sys.modules (idempotent per interpreter).
pub fn install(py: Python<'_>, info: &Info<'_>) -> PyResult<()> {
    let m = PyModule::new(py, "mod_wsgi")?;
    let (a, b, c) = crate::wsgi::environ::MOD_WSGI_VERSION;
    m.add("version", PyTuple::new(py, [a, b, c])?)?;
    m.add("process_group", info.process_group)?;
    m.add("application_group", info.application_group)?;
    m.add("maximum_processes", info.maximum_processes)?;
    m.add("threads_per_process", info.threads_per_process)?;
    m.add("server_implementation", "mod_wsgi-rs")?;
    m.add_class::<crate::wsgi::input::Input>()?;
    m.add_class::<crate::wsgi::errors::Log>()?;
    m.add_class::<crate::wsgi::response::FileWrapper>()?;
    py.import("sys")?
        .getattr("modules")?
        .cast_into::<PyDict>()?
        .set_item("mod_wsgi", m)?;
    Ok(())
}
