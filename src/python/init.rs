//! The interpreter's lifecycle in an Apache child or daemon process:
//! initialise once (never in Apache's root parent), keep one thread state
//! per Apache thread, finalise when the process's pool is destroyed.

use pyo3::Python;
use pyo3::ffi;
use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

/// What the configuration says about the interpreter.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub home: Option<String>,
    pub optimize: i32,
    pub hash_seed: Option<String>,
    pub warnings: Vec<String>,
    pub dont_write_bytecode: bool,
}

/// The Python this module was built against; used as `program_name` so
/// that the standard library is found where its headers came from.
pub const BUILD_PYTHON: &str = env!("MWRS_PYTHON_EXECUTABLE");

static INITIALISED: AtomicBool = AtomicBool::new(false);
static MAIN_TSTATE: AtomicPtr<ffi::PyThreadState> = AtomicPtr::new(std::ptr::null_mut());

pub fn is_initialised() -> bool {
    INITIALISED.load(Ordering::Acquire)
}

fn status_error(what: &str, st: &ffi::PyStatus) -> String {
    // SAFETY: PyStatus's strings are static C strings or NULL.
    let cs = |p: *const std::os::raw::c_char| {
        if p.is_null() {
            String::new()
        } else {
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    let (func, msg) = (cs(st.func), cs(st.err_msg));
    if func.is_empty() {
        format!("{what}: {msg}")
    } else {
        format!("{what}: {func}: {msg}")
    }
}

/// `program_name` for a home: a virtualenv's own interpreter when the
/// home is a venv (it has pyvenv.cfg), so `sys.prefix` becomes the venv
/// the way it does when that python is run.
fn program_name_for(home: Option<&str>) -> (String, bool) {
    match home {
        Some(h) if std::path::Path::new(h).join("pyvenv.cfg").is_file() => {
            let exe = std::path::Path::new(h).join("bin").join("python3");
            let exe = if exe.exists() {
                exe
            } else {
                std::path::Path::new(h).join("bin").join("python")
            };
            (exe.to_string_lossy().into_owned(), true)
        }
        _ => (BUILD_PYTHON.to_string(), false),
    }
}

/// Initialises Python in this process. Must run on the process's main
/// thread before any other thread uses Python (child_init, or a daemon
/// process right after fork). Leaves the GIL released.
pub fn initialize(s: &Settings) -> Result<(), String> {
    if is_initialised() {
        return Ok(());
    }
    let (program, is_venv) = program_name_for(s.home.as_deref());
    let cstr = |v: &str| CString::new(v).map_err(|_| format!("value holds a NUL byte: {v:?}"));
    let program = cstr(&program)?;
    let home = match (&s.home, is_venv) {
        (Some(h), false) => Some(cstr(h)?),
        _ => None,
    };
    let warnings: Vec<CString> = s
        .warnings
        .iter()
        .map(|w| cstr(w))
        .collect::<Result<_, _>>()?;
    // SAFETY: the documented PyConfig sequence; every PyConfig is cleared
    // on every path, strings are copied by PyConfig_SetBytesString.
    unsafe {
        let mut config: ffi::PyConfig = std::mem::zeroed();
        ffi::PyConfig_InitPythonConfig(&mut config);
        // Apache owns signals; Python must not install handlers in a server.
        config.install_signal_handlers = 0;
        config.parse_argv = 0;
        config.optimization_level = s.optimize;
        config.write_bytecode = if s.dont_write_bytecode { 0 } else { 1 };
        match s.hash_seed.as_deref() {
            None | Some("random") => {}
            Some(n) => {
                config.use_hash_seed = 1;
                config.hash_seed = n
                    .parse()
                    .map_err(|_| format!("invalid WSGIPythonHashSeed '{n}'"))?;
            }
        }
        let check =
            |what: &str, st: ffi::PyStatus, config: &mut ffi::PyConfig| -> Result<(), String> {
                if ffi::PyStatus_Exception(st) != 0 {
                    let e = status_error(what, &st);
                    ffi::PyConfig_Clear(config);
                    return Err(e);
                }
                Ok(())
            };
        let st =
            ffi::PyConfig_SetBytesString(&mut config, &mut config.program_name, program.as_ptr());
        check("setting program name", st, &mut config)?;
        if let Some(h) = &home {
            let st = ffi::PyConfig_SetBytesString(&mut config, &mut config.home, h.as_ptr());
            check("setting Python home", st, &mut config)?;
        }
        for w in &warnings {
            let wide = ffi::Py_DecodeLocale(w.as_ptr(), std::ptr::null_mut());
            if wide.is_null() {
                ffi::PyConfig_Clear(&mut config);
                return Err("cannot decode WSGIPythonWarnings value".into());
            }
            let st = ffi::PyWideStringList_Append(&mut config.warnoptions, wide);
            ffi::PyMem_RawFree(wide as *mut _);
            check("adding warning option", st, &mut config)?;
        }
        let st = ffi::Py_InitializeFromConfig(&config);
        let r = check("Python initialisation failed", st, &mut config);
        if r.is_ok() {
            ffi::PyConfig_Clear(&mut config);
        }
        r?;
        INITIALISED.store(true, Ordering::Release);
        // This thread's state is the main one; release the GIL and keep it
        // for finalisation.
        MAIN_TSTATE.store(ffi::PyEval_SaveThread(), Ordering::Release);
        THREAD_READY.with(|c| c.set(true));
    }
    Ok(())
}

thread_local! {
    static THREAD_READY: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the GIL. The first call on a thread creates a thread state
/// that stays with the thread (ensure once, then save), so later calls do
/// not pay for creating and destroying one per request.
pub fn with_gil<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    THREAD_READY.with(|ready| {
        if !ready.get() {
            // SAFETY: Python is initialised (callers check); this thread
            // holds no thread state yet. Ensure creates one and takes the
            // GIL; SaveThread releases the GIL but leaves the state bound
            // to the thread with a gilstate count of one, so the matching
            // Ensure/Release pairs in Python::attach never free it.
            unsafe {
                ffi::PyGILState_Ensure();
                ffi::PyEval_SaveThread();
            }
            ready.set(true);
        }
    });
    Python::attach(f)
}

/// Finalises Python: runs atexit callbacks and frees the interpreter. Call
/// from the process's main thread when no other thread uses Python.
pub fn finalize() {
    if !INITIALISED.swap(false, Ordering::AcqRel) {
        return;
    }
    let ts = MAIN_TSTATE.swap(std::ptr::null_mut(), Ordering::AcqRel);
    if ts.is_null() {
        return;
    }
    // SAFETY: ts is the main thread state saved at initialisation; this
    // runs on the main thread at process exit.
    unsafe {
        ffi::PyEval_RestoreThread(ts);
        ffi::Py_FinalizeEx();
    }
}
