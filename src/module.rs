//! Apache's face: the `wsgi_module` record, the directive table built from
//! [`crate::config::DIRECTIVES`], and the `extern "C"` trampolines for every
//! hook. Each trampoline catches panics (one unwinding across FFI would
//! abort the Apache child) and turns errors into Apache's own channels.

use crate::config::{
    self, Apply, ConfigError, DirConfig, DirectiveSpec, GlobalConfig, GlobalContext, Merge,
    ServerConfig, ServerScope,
};
use crate::httpd::cmd::CmdParms;
use crate::httpd::log::{self, Level};
use crate::httpd::{Pool, Request, Server, sys};
use std::ffi::{CStr, c_void};
use std::os::raw::{c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Number of directives, known at compile time so the command table can be
/// a static that httpd reads when LoadModule runs (before register_hooks).
const NDIRECTIVES: usize = config::DIRECTIVES.len();

#[repr(transparent)]
struct CommandTable([sys::command_rec; NDIRECTIVES + 1]);
// SAFETY: the table is immutable after construction and holds only pointers
// to 'static data (names, help strings, directive specs).
unsafe impl Sync for CommandTable {}

const fn build_commands() -> CommandTable {
    // SAFETY: command_rec is plain old data; all-zero is httpd's terminator.
    let mut table: [sys::command_rec; NDIRECTIVES + 1] = unsafe { std::mem::zeroed() };
    let mut i = 0;
    while i < NDIRECTIVES {
        let spec: &'static DirectiveSpec = &config::DIRECTIVES[i];
        table[i] = sys::command_rec {
            name: spec.name.as_ptr(),
            func: sys::cmd_func {
                raw_args: Some(cmd_raw_args),
            },
            cmd_data: spec as *const DirectiveSpec as *mut c_void,
            req_override: spec.req_override as c_int,
            args_how: sys::cmd_how_RAW_ARGS,
            errmsg: spec.help.as_ptr(),
        };
        i += 1;
    }
    CommandTable(table)
}

static COMMANDS: CommandTable = build_commands();

/// The module record. httpd writes into it (module_index, next, ...), hence
/// `static mut`; its name is `mod_wsgi.c` so that `<IfModule mod_wsgi.c>`
/// and `LogLevel wsgi:debug` behave as with the C module.
#[unsafe(no_mangle)]
pub static mut wsgi_module: sys::module = sys::module {
    version: sys::MODULE_MAGIC_NUMBER_MAJOR as c_int,
    minor_version: sys::MODULE_MAGIC_NUMBER_MINOR as c_int,
    module_index: -1,
    name: c"mod_wsgi.c".as_ptr(),
    dynamic_load_handle: std::ptr::null_mut(),
    next: std::ptr::null_mut(),
    magic: sys::MODULE_MAGIC_COOKIE as std::os::raw::c_ulong,
    rewrite_args: None,
    create_dir_config: Some(create_config::<DirConfig, c_char>),
    merge_dir_config: Some(merge_config::<DirConfig>),
    create_server_config: Some(create_config::<ServerConfig, sys::server_rec>),
    merge_server_config: Some(merge_config::<ServerConfig>),
    cmds: &COMMANDS.0 as *const sys::command_rec,
    register_hooks: Some(register_hooks),
    flags: 0,
};

pub(crate) fn module_ptr() -> *const sys::module {
    &raw const wsgi_module
}

pub(crate) fn module_index() -> c_int {
    // SAFETY: httpd sets module_index once at LoadModule; reading an int.
    unsafe { (*module_ptr()).module_index }
}

/// The module's per-server configuration for `s`.
pub(crate) fn server_config(s: &Server) -> &ServerConfig {
    // SAFETY: create/merge_server_config store a ServerConfig for every server.
    unsafe { &*(s.module_config() as *const ServerConfig) }
}

#[allow(clippy::mut_from_ref)] // config-time only, see SAFETY
fn server_config_mut(s: &Server) -> &mut ServerConfig {
    // SAFETY: only called while httpd reads the configuration, which is
    // single-threaded; the value lives in pconf.
    unsafe { &mut *(s.module_config() as *mut ServerConfig) }
}

/// The module's directory configuration that a config vector holds: a
/// server's defaults ([`Server::default_dir_module_config`]) or a section's
/// ([`crate::httpd::server::SectionRef`]); None for a null pointer.
pub(crate) fn dir_config_at<'a>(p: *mut c_void) -> Option<&'a DirConfig> {
    // SAFETY: create/merge_dir_config store a DirConfig in every vector;
    // it lives in pconf, which outlives the configuration's readers.
    unsafe { (p as *const DirConfig).as_ref() }
}

/// The module's merged per-directory configuration for `r`.
pub(crate) fn dir_config(r: &Request) -> &DirConfig {
    // SAFETY: create/merge_dir_config store a DirConfig in every vector.
    unsafe { &*(r.dir_config() as *const DirConfig) }
}

/// The state shared by one whole configuration read (the daemon process
/// list, WSGIImportScript): created in pre_config, owned by pconf, and
/// forgotten by a pconf cleanup, so a restart starts from nothing.
static GLOBALS: std::sync::atomic::AtomicPtr<GlobalConfig> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

fn globals_mut() -> Option<&'static mut GlobalConfig> {
    let p = GLOBALS.load(std::sync::atomic::Ordering::Acquire);
    // SAFETY: p lives in pconf until the cleanup below clears GLOBALS;
    // configuration is read on one thread.
    unsafe { p.as_mut() }
}

/// The configuration read's global state, for hooks after it.
pub(crate) fn globals() -> Option<&'static GlobalConfig> {
    globals_mut().map(|g| &*g)
}

unsafe extern "C" fn hook_pre_config(
    pconf: *mut sys::apr_pool_t,
    _plog: *mut sys::apr_pool_t,
    _ptemp: *mut sys::apr_pool_t,
) -> c_int {
    guard("pre_config", crate::httpd::OK, || {
        // SAFETY: httpd passes pconf, live for this configuration generation.
        let pool = unsafe { Pool::from_ptr(pconf) };
        let g = pool.give(GlobalConfig::default());
        GLOBALS.store(g, std::sync::atomic::Ordering::Release);
        pool.on_cleanup(Box::new(move || {
            let _ = GLOBALS.compare_exchange(
                g,
                std::ptr::null_mut(),
                std::sync::atomic::Ordering::AcqRel,
                std::sync::atomic::Ordering::Acquire,
            );
        }));
        crate::httpd::OK
    })
}

fn guard<T>(what: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(e) => {
            let msg = e
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| e.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            log::current(
                Level::Crit,
                &format!(
                    "mod_wsgi (pid={}): internal error in {what}: {msg}",
                    crate::process_id()
                ),
            );
            fallback
        }
    }
}

// ---------------------------------------------------------------- config

/// `create_server_config` / `create_dir_config`: a default `T` owned by
/// the pool httpd passes (pconf, or a request pool for merged dir configs).
unsafe extern "C" fn create_config<T: Default + 'static, A>(
    p: *mut sys::apr_pool_t,
    _: *mut A,
) -> *mut c_void {
    // SAFETY: httpd passes a live pool that outlives the config vector.
    let pool = unsafe { Pool::from_ptr(p) };
    pool.give(T::default()) as *mut c_void
}

/// `merge_server_config` / `merge_dir_config`.
unsafe extern "C" fn merge_config<T: Merge + 'static>(
    p: *mut sys::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    // SAFETY: both were made by create_config::<T> or merge_config::<T>;
    // the result lives in p, as httpd expects.
    let (pool, base, add) =
        unsafe { (Pool::from_ptr(p), &*(base as *const T), &*(add as *const T)) };
    pool.give(T::merge(base, add)) as *mut c_void
}

/// The one trampoline behind every directive: tokenises the arguments like
/// httpd does, checks the context, and runs the pure parser.
unsafe extern "C" fn cmd_raw_args(
    cmd: *mut sys::cmd_parms,
    mconfig: *mut c_void,
    args: *const c_char,
) -> *const c_char {
    // SAFETY: httpd calls directive handlers with live cmd_parms.
    let cmd = unsafe { CmdParms::from_ptr(cmd) };
    let result = guard("directive", Err("internal error".to_string()), || {
        // SAFETY: cmd_data is the &'static DirectiveSpec put in the table.
        let spec = unsafe { &*(cmd.info() as *const DirectiveSpec) };
        apply_directive(cmd, spec, mconfig, args)
    });
    match result {
        Ok(()) => std::ptr::null(),
        Err(msg) => {
            // mod_wsgi's sentence, then the line as written, so the user sees
            // which directive and which value were refused even where
            // mod_wsgi's sentence names neither.
            // SAFETY: cmd_data is the &'static DirectiveSpec put in the table;
            // args is httpd's NUL-terminated argument string (or NULL).
            let spec = unsafe { &*(cmd.info() as *const DirectiveSpec) };
            let raw = if args.is_null() {
                String::new()
            } else {
                unsafe { CStr::from_ptr(args) }
                    .to_string_lossy()
                    .trim()
                    .to_string()
            };
            let line = if raw.is_empty() {
                spec.name_str().to_string()
            } else {
                format!("{} {raw}", spec.name_str())
            };
            let full = if msg.contains(&line) {
                msg
            } else {
                format!("{msg} ({line})")
            };
            cmd.pool().strdup(full.as_bytes())
        }
    }
}

fn apply_directive(
    cmd: &CmdParms,
    spec: &DirectiveSpec,
    mconfig: *mut c_void,
    args: *const c_char,
) -> Result<(), String> {
    if spec.global_only {
        cmd.check_context(sys::GLOBAL_ONLY)?;
    }
    if spec.not_in_dir {
        cmd.check_context(sys::NOT_IN_DIR_LOC_FILE)?;
    }
    let tokens = cmd.split_args(args);
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let r: Result<(), ConfigError> = match spec.apply {
        Apply::Server(f) => f(server_config_mut(cmd.server()), &tokens),
        Apply::Global(f) => {
            let server = cmd.server();
            let sc = server_config_mut(server);
            let before = sc.script_aliases().len();
            let globals =
                globals_mut().ok_or_else(|| "mod_wsgi: configuration state missing".to_string())?;
            let scope = ServerScope {
                hostname: (!server.hostname().is_empty()).then(|| server.hostname().to_string()),
                is_virtual: server.is_virtual(),
                server_id: server.id(),
            };
            let mut cx = GlobalContext {
                server: sc,
                globals,
                scope,
            };
            f(&mut cx, &tokens).and_then(|()| compile_new_regexes(cmd, cx.server, before))
        }
        // SAFETY: for directory-capable directives httpd passes the dir
        // config of the section being read (or the server's defaults).
        Apply::Dir(f) => {
            f(unsafe { &mut *(mconfig as *mut DirConfig) }, &tokens).map(|()| {
                // Only while the configuration files are read: a .htaccess
                // file is parsed by a request thread, too late to matter.
                if config::auth::SCRIPT_DIRECTIVES.contains(&spec.name_str())
                    && crate::httpd::is_reading_config()
                    && let Some(g) = globals_mut()
                {
                    g.access_scripts = true;
                }
            })
        }
        Apply::NotSupported => Err(ConfigError::NotSupported(
            spec.name.to_string_lossy().into_owned(),
        )),
    };
    r.map_err(|e| e.to_string())?;
    if config::INERT_DIRECTIVES.contains(&spec.name_str()) {
        log::server(
            None,
            Level::Warning,
            &format!(
                "mod_wsgi-rs: {} is accepted but has no effect yet in mod_wsgi-rs (see the README's feature table).",
                spec.name_str()
            ),
        );
    }
    Ok(())
}

/// WSGIScriptAliasMatch patterns are compiled once, with httpd's own regex
/// engine, so they behave as AliasMatch's do.
fn compile_new_regexes(
    cmd: &CmdParms,
    sc: &mut ServerConfig,
    from: usize,
) -> Result<(), ConfigError> {
    for alias in sc.script_aliases_mut().iter_mut().skip(from) {
        if alias.is_regex && alias.compiled.is_none() {
            let pat = Request::owned_cstring(alias.location.as_bytes());
            // SAFETY: ap_pregcomp allocates the regex in pconf and registers
            // its own cleanup.
            let re = unsafe { sys::ap_pregcomp(cmd.pool().as_ptr(), pat.as_ptr(), 0) };
            if re.is_null() {
                return Err(ConfigError::Message(
                    "Regular expression could not be compiled.".into(),
                ));
            }
            alias.compiled = Some(config::RegexHandle(re as usize));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- hooks

unsafe extern "C" fn register_hooks(p: *mut sys::apr_pool_t) {
    /// A NULL-terminated list of module names, as the hook API takes them.
    struct Names<const N: usize>([*const c_char; N]);
    // SAFETY: pointers to static C strings, never written.
    unsafe impl<const N: usize> Sync for Names<N> {}
    // WSGIScriptAlias runs after mod_alias (an Alias for /static wins, as
    // with mod_wsgi) and before mod_userdir/mod_vhost_alias.
    static PRED_TRANSLATE: Names<2> = Names([c"mod_alias.c".as_ptr(), std::ptr::null()]);
    static SUCC_TRANSLATE: Names<3> = Names([
        c"mod_userdir.c".as_ptr(),
        c"mod_vhost_alias.c".as_ptr(),
        std::ptr::null(),
    ]);
    static PRED_ACCESS: Names<2> = Names([c"mod_ssl.c".as_ptr(), std::ptr::null()]);
    static SUCC_ACCESS: Names<2> = Names([c"mod_authz_host.c".as_ptr(), std::ptr::null()]);
    // SAFETY: registering hooks with static name lists, as httpd expects
    // during register_hooks.
    unsafe {
        sys::ap_hook_pre_config(
            Some(hook_pre_config),
            std::ptr::null(),
            std::ptr::null(),
            sys::APR_HOOK_MIDDLE as c_int,
        );
        sys::ap_hook_post_config(
            Some(hook_post_config),
            std::ptr::null(),
            std::ptr::null(),
            sys::APR_HOOK_MIDDLE as c_int,
        );
        sys::ap_hook_child_init(
            Some(hook_child_init),
            std::ptr::null(),
            std::ptr::null(),
            sys::APR_HOOK_MIDDLE as c_int,
        );
        sys::ap_hook_translate_name(
            Some(hook_translate_name),
            PRED_TRANSLATE.0.as_ptr(),
            SUCC_TRANSLATE.0.as_ptr(),
            sys::APR_HOOK_MIDDLE as c_int,
        );
        sys::ap_hook_handler(
            Some(hook_handler),
            std::ptr::null(),
            std::ptr::null(),
            sys::APR_HOOK_MIDDLE as c_int,
        );
        // WSGIAccessScript: after mod_ssl (SSLRequire), before
        // mod_authz_host, as mod_wsgi orders it.
        sys::ap_hook_access_checker(
            Some(hook_access_checker),
            PRED_ACCESS.0.as_ptr(),
            SUCC_ACCESS.0.as_ptr(),
            sys::APR_HOOK_MIDDLE as c_int,
        );
    }
    // WSGIAuthUserScript and WSGIAuthGroupScript: `AuthBasicProvider wsgi`,
    // `AuthDigestProvider wsgi`, `Require wsgi-group name ...`.
    crate::httpd::auth::register_authn(p, c"wsgi", &AUTHN_PROVIDER);
    crate::httpd::body::register_filter();
    crate::httpd::auth::register_authz(p, c"wsgi-group", &AUTHZ_PROVIDER);
}

static AUTHN_PROVIDER: crate::httpd::auth::AuthnProvider =
    crate::httpd::auth::AuthnProvider(sys::authn_provider {
        check_password: Some(provider_check_password),
        get_realm_hash: Some(provider_get_realm_hash),
    });

static AUTHZ_PROVIDER: crate::httpd::auth::AuthzProvider =
    crate::httpd::auth::AuthzProvider(sys::authz_provider {
        check_authorization: Some(provider_check_authorization),
        parse_require_line: None,
    });

/// Copies a C string httpd passed (NULL as "").
///
/// # Safety
/// `p` is NULL or NUL-terminated and live for the call.
unsafe fn arg<'a>(p: *const c_char) -> &'a CStr {
    if p.is_null() {
        c""
    } else {
        // SAFETY: the caller's contract.
        unsafe { CStr::from_ptr(p) }
    }
}

unsafe extern "C" fn provider_check_password(
    r: *mut sys::request_rec,
    user: *const c_char,
    password: *const c_char,
) -> sys::authn_status {
    // SAFETY: mod_auth_basic calls providers with a live request and
    // NUL-terminated user and password.
    let (r, user, password) = unsafe { (Request::from_ptr(r), arg(user), arg(password)) };
    guard(
        "check_password",
        sys::authn_status_AUTH_GENERAL_ERROR,
        || {
            // SAFETY: no realm hash is returned for Basic.
            unsafe { crate::auth::check_password(r, user, password).raw(r, std::ptr::null_mut()) }
        },
    )
}

unsafe extern "C" fn provider_get_realm_hash(
    r: *mut sys::request_rec,
    user: *const c_char,
    realm: *const c_char,
    rethash: *mut *mut c_char,
) -> sys::authn_status {
    // SAFETY: mod_auth_digest calls providers with a live request,
    // NUL-terminated user and realm, and a place for the hash.
    let (r, user, realm) = unsafe { (Request::from_ptr(r), arg(user), arg(realm)) };
    guard(
        "get_realm_hash",
        sys::authn_status_AUTH_GENERAL_ERROR,
        || {
            // SAFETY: rethash is mod_auth_digest's out pointer.
            unsafe { crate::auth::get_realm_hash(r, user, realm).raw(r, rethash) }
        },
    )
}

unsafe extern "C" fn provider_check_authorization(
    r: *mut sys::request_rec,
    require_args: *const c_char,
    _parsed: *const c_void,
) -> sys::authz_status {
    // SAFETY: mod_authz_core calls providers with a live request and the
    // rest of the Require line.
    let (r, args) = unsafe { (Request::from_ptr(r), arg(require_args)) };
    guard("wsgi-group", sys::authz_status_AUTHZ_GENERAL_ERROR, || {
        crate::auth::check_groups(r, &args.to_string_lossy()).raw()
    })
}

unsafe extern "C" fn hook_access_checker(r: *mut sys::request_rec) -> c_int {
    // SAFETY: as hook_translate_name.
    let r = unsafe { Request::from_ptr(r) };
    guard(
        "access_checker",
        sys::HTTP_INTERNAL_SERVER_ERROR as c_int,
        || crate::auth::access_checker(r),
    )
}

unsafe extern "C" fn hook_post_config(
    pconf: *mut sys::apr_pool_t,
    _plog: *mut sys::apr_pool_t,
    _ptemp: *mut sys::apr_pool_t,
    s: *mut sys::server_rec,
) -> c_int {
    guard("post_config", crate::httpd::OK, || {
        log::install_logger();
        if crate::httpd::is_pre_config_pass() {
            return crate::httpd::OK;
        }
        // SAFETY: s is the main server, live for this generation.
        let s = unsafe { Server::from_ptr(s) };
        // SAFETY: httpd passes pconf, live for this configuration generation.
        let pconf = unsafe { Pool::from_ptr(pconf) };
        // As mod_wsgi: "mod_wsgi/X.Y.Z Python/X.Y" in the server's version.
        let (a, b, c) = crate::wsgi::environ::MOD_WSGI_VERSION;
        crate::httpd::add_version_component(pconf, &format!("mod_wsgi/{a}.{b}.{c}"));
        crate::httpd::add_version_component(pconf, concat!("Python/", env!("MWRS_PYTHON_VERSION")));
        crate::handler::post_config(s);
        // ---- daemon mode (branch daemon): bind sockets, fork daemons.
        crate::daemon::parent::post_config(pconf, s);
        crate::httpd::OK
    })
}

unsafe extern "C" fn hook_child_init(p: *mut sys::apr_pool_t, s: *mut sys::server_rec) {
    guard("child_init", (), || {
        log::install_logger();
        crate::note_process_id();
        // SAFETY: pchild and the main server are live for the child's life.
        let (pool, s) = unsafe { (Pool::from_ptr(p), Server::from_ptr(s)) };
        // ---- daemon mode (branch daemon): close the daemons' sockets.
        crate::daemon::parent::child_init();
        crate::handler::child_init(pool, s);
    })
}

unsafe extern "C" fn hook_translate_name(r: *mut sys::request_rec) -> c_int {
    // SAFETY: Apache calls request hooks with a live request_rec whose pool
    // outlives this call.
    let r = unsafe { Request::from_ptr(r) };
    guard("translate_name", crate::httpd::DECLINED, || {
        crate::handler::translate_name(r)
    })
}

unsafe extern "C" fn hook_handler(r: *mut sys::request_rec) -> c_int {
    // SAFETY: as hook_translate_name.
    let r = unsafe { Request::from_ptr(r) };
    guard("handler", sys::HTTP_INTERNAL_SERVER_ERROR as c_int, || {
        crate::handler::handler(r)
    })
}

/// Request-time helpers that need the module record.
pub(crate) fn regex_match(
    handle: config::RegexHandle,
    subject: &CStr,
) -> Option<Vec<(usize, usize)>> {
    let re = handle.0 as *mut sys::ap_regex_t;
    let mut m: [sys::ap_regmatch_t; 10] = Default::default();
    // SAFETY: re came from ap_pregcomp in pconf, still live.
    let rc = unsafe { sys::ap_regexec(re, subject.as_ptr(), m.len(), m.as_mut_ptr(), 0) };
    if rc != 0 {
        return None;
    }
    Some(
        m.iter()
            .take_while(|x| x.rm_so >= 0)
            .map(|x| (x.rm_so as usize, x.rm_eo as usize))
            .collect(),
    )
}
