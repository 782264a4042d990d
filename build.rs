//! Finds Apache's and APR's headers with `apxs -q`, generates the bindings
//! the `httpd` module sees, and compiles the small C shim for the
//! function-like macros bindgen cannot see.
//!
//! `APXS` points at another apxs (a custom-built httpd); otherwise `apxs` on
//! PATH, then Debian's and Red Hat's usual places.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn find_apxs() -> String {
    if let Ok(apxs) = env::var("APXS") {
        return apxs;
    }
    for candidate in ["apxs", "/usr/bin/apxs", "/usr/bin/apxs2", "/usr/sbin/apxs"] {
        if Command::new(candidate)
            .arg("-q")
            .arg("INCLUDEDIR")
            .output()
            .is_ok()
        {
            return candidate.to_string();
        }
    }
    panic!(
        "apxs was not found: install Apache's development files \
         (Debian/Ubuntu: apt-get install apache2-dev; Red Hat: dnf install httpd-devel) \
         or set APXS=/path/to/apxs"
    );
}

fn apxs_query(apxs: &str, var: &str) -> String {
    let out = Command::new(apxs)
        .args(["-q", var])
        .output()
        .unwrap_or_else(|e| panic!("running `{apxs} -q {var}` failed: {e}"));
    if !out.status.success() {
        panic!(
            "`{apxs} -q {var}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn main() {
    println!("cargo:rerun-if-env-changed=APXS");
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    let python = env::var("PYO3_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".to_string());
    println!("cargo:rustc-env=MWRS_PYTHON_EXECUTABLE={python}");
    // X.Y of that Python, for the "Python/X.Y" server token mod_wsgi adds.
    let version = Command::new(&python)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| panic!("cannot run {python} to learn its version"));
    println!("cargo:rustc-env=MWRS_PYTHON_VERSION={version}");
    println!("cargo:rerun-if-changed=src/httpd/shim.c");
    println!("cargo:rerun-if-changed=src/httpd/wrapper.h");

    let apxs = find_apxs();
    let include = apxs_query(&apxs, "INCLUDEDIR");
    let apr_include = apxs_query(&apxs, "APR_INCLUDEDIR");
    let apu_include = apxs_query(&apxs, "APU_INCLUDEDIR");
    let cppflags = apxs_query(&apxs, "EXTRA_CPPFLAGS");

    let mut includes: Vec<String> = vec![include.clone(), apr_include.clone()];
    if !apu_include.is_empty() && !includes.contains(&apu_include) {
        includes.push(apu_include);
    }
    let defines: Vec<String> = cppflags
        .split_whitespace()
        .filter(|f| f.starts_with("-D"))
        .map(str::to_string)
        .collect();

    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());

    let mut builder = bindgen::Builder::default()
        .header("src/httpd/wrapper.h")
        .allowlist_function("ap_.*|apr_.*|mwrs_.*")
        .allowlist_type(
            "request_rec|server_rec|conn_rec|module_struct|command_rec|cmd_parms|process_rec|core_dir_config|core_server_config|ap_regex_t|apr_table_entry_t|ap_regmatch_t|unixd_config_rec|authn_provider|authz_provider|core_net_rec|core_filter_ctx",
        )
        .allowlist_var(
            "OK|DECLINED|DONE|HTTP_.*|APLOG_.*|MODULE_MAGIC_.*|RSRC_CONF|ACCESS_CONF|OR_.*|AP_SQ_.*|APR_OC_REASON_.*|OPT_.*|REQUEST_CHUNKED_.*|APR_SUCCESS|APR_EOF|APR_EGENERAL|APR_FINFO_.*|APR_NOFILE|APR_REG|APR_DIR|M_GET|M_POST|M_INVALID|GLOBAL_ONLY|NOT_IN_.*|APR_HOOK_.*|AP_REG_.*|APR_BLOCK_READ|APR_NONBLOCK_READ|DEFAULT_HTTP_PORT|DEFAULT_HTTPS_PORT|AP_MPMQ_.*|ap_server_conf|ap_unixd_config|ap_server_root|APR_OS_DEFAULT|APR_FOPEN_.*|AP_MAX_REG_MATCH|AUTHN_PROVIDER_.*|AUTHZ_PROVIDER_.*|AP_AUTH_INTERNAL_.*|REMOTE_HOST|AP_SERVER_.*_NUMBER",
        )
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for inc in &includes {
        builder = builder.clang_arg(format!("-I{inc}"));
    }
    for d in &defines {
        builder = builder.clang_arg(d);
    }
    let bindings = builder
        .generate()
        .expect("bindgen could not read Apache's headers (is libclang-dev installed?)");
    bindings
        .write_to_file(out_dir.join("httpd_sys.rs"))
        .expect("writing bindings");

    let mut cc = cc::Build::new();
    cc.file(Path::new("src/httpd/shim.c"));
    for inc in &includes {
        cc.include(inc);
    }
    for d in &defines {
        let d = &d[2..];
        match d.split_once('=') {
            Some((k, v)) => cc.define(k, Some(v)),
            None => cc.define(d, None),
        };
    }
    cc.warnings(true).compile("mwrs_shim");
}
