//! WSGIDispatchScript and WSGIHandlerScript against a real Apache.

mod common;

use common::{Apache, Response, json_field};
use std::time::Duration;

fn ok(r: &Response) -> String {
    let t = r.text();
    assert_eq!(r.status, 200, "{t}");
    t
}

const DISPATCH_CONF: &str = r#"
WSGIDaemonProcess dispd threads=2
WSGIScriptAlias /d {APPS}/dispatch_target.wsgi
<Location /d>
    WSGIDispatchScript {APPS}/dispatch.wsgi
</Location>
WSGIScriptAlias /plain {APPS}/dispatch_target.wsgi
"#;

#[test]
fn dispatch_chooses_process_group_per_request() {
    let a = Apache::start("dispatch_pg", DISPATCH_CONF);
    let embedded = ok(&a.get("/d"));
    assert_eq!(json_field(&embedded, "process_group"), "");
    assert_eq!(json_field(&embedded, "callable"), "application");
    let daemon = ok(&a.get("/d?pg=dispd"));
    assert_eq!(json_field(&daemon, "process_group"), "dispd");
    let plain = ok(&a.get("/plain"));
    assert_eq!(json_field(&plain, "process_group"), "");
    // The daemon request ran in another process than the embedded ones.
    assert_ne!(json_field(&daemon, "pid"), json_field(&embedded, "pid"));
    assert_ne!(json_field(&daemon, "pid"), json_field(&plain, "pid"));
    // Again, to see the choice is made per request, not once.
    assert_eq!(json_field(&ok(&a.get("/d")), "process_group"), "");
    assert_eq!(
        json_field(&ok(&a.get("/d?pg=dispd")), "process_group"),
        "dispd"
    );
    // A group the script names but nobody configured: mod_wsgi's 500.
    assert_eq!(a.get("/d?pg=nosuch").status, 500);
    assert!(a.wait_log(
        "No WSGI daemon process called 'nosuch' has been configured",
        Duration::from_secs(10)
    ));
    // The environ has the request and the values chosen so far.
    assert!(
        a.wait_log(
            "dispatch saw /d?pg=dispd application",
            Duration::from_secs(10)
        ),
        "{}",
        a.error_log()
    );
}

#[test]
fn dispatch_chooses_application_group_and_callable() {
    let a = Apache::start("dispatch_ag", DISPATCH_CONF);
    // Default WSGIApplicationGroup is %{RESOURCE}.
    let t = ok(&a.get("/d"));
    assert_eq!(
        json_field(&t, "application_group"),
        format!("localhost:{}|/d", a.port)
    );
    let t = ok(&a.get("/d?ag=mygroup"));
    assert_eq!(json_field(&t, "application_group"), "mygroup");
    // The returned string is expanded as WSGIApplicationGroup's would be.
    let t = ok(&a.get("/d?ag=%25%7BGLOBAL%7D"));
    assert_eq!(json_field(&t, "application_group"), "");
    let t = ok(&a.get("/d?co=other"));
    assert_eq!(json_field(&t, "callable"), "other");
    assert_eq!(json_field(&t, "callable_object"), "other");
    // All three at once, with the application in the daemon.
    let t = ok(&a.get("/d?pg=dispd&ag=g2&co=other"));
    assert_eq!(json_field(&t, "process_group"), "dispd");
    assert_eq!(json_field(&t, "application_group"), "g2");
    assert_eq!(json_field(&t, "callable"), "other");
    // A callable the script does not define: 404, as mod_wsgi answers in
    // embedded mode.
    assert_eq!(a.get("/d?co=missing").status, 404);
    assert!(a.wait_log(
        "does not contain WSGI application 'missing'",
        Duration::from_secs(10)
    ));
}

#[test]
fn dispatch_script_errors_are_500_with_traceback() {
    let a = Apache::start("dispatch_err", DISPATCH_CONF);
    assert_eq!(a.get("/d?boom=1").status, 500);
    assert!(
        a.wait_log("RuntimeError: dispatch boom", Duration::from_secs(10)),
        "{}",
        a.error_log()
    );
    let log = a.error_log();
    assert!(log.contains("Traceback (most recent call last)"), "{log}");
    assert!(
        log.contains("Exception occurred processing WSGI script"),
        "{log}"
    );
    assert_eq!(a.get("/d?badtype=1").status, 500);
    assert!(
        a.wait_log(
            "TypeError: Callable object must be a string object",
            Duration::from_secs(10)
        ),
        "{}",
        a.error_log()
    );
    // The script still works for the next request.
    assert_eq!(a.get("/d").status, 200);
}

const HANDLER_CONF: &str = r#"
WSGIDaemonProcess hd threads=2
WSGIHandlerScript wsgi-resource {APPS}/resource_handler.wsgi
WSGIHandlerScript wsgi-resource-d {APPS}/resource_handler.wsgi process-group=hd application-group=%{GLOBAL} pass-authorization=On
Alias /res {APPS}
Alias /resd {APPS}
Alias /set {APPS}
<Location /res>
    AddHandler wsgi-resource .myext
</Location>
<Location /resd>
    AddHandler wsgi-resource-d .myext
</Location>
<Location /set>
    SetHandler wsgi-resource
</Location>
"#;

#[test]
fn handler_script_serves_files_in_embedded_and_daemon_mode() {
    let a = Apache::start("handler_script", HANDLER_CONF);
    let apps = a.root.join("app");
    let page = apps.join("page.myext").display().to_string();
    let handler = apps.join("resource_handler.wsgi").display().to_string();

    let auth = [("Authorization", "Basic c3B5OnNlY3JldA==")];
    let t = ok(&a.request("GET", "/res/page.myext", &auth, b""));
    assert_eq!(json_field(&t, "script_filename"), page);
    assert_eq!(json_field(&t, "handler_script"), handler);
    assert_eq!(json_field(&t, "callable_object"), "handle_request");
    assert_eq!(json_field(&t, "process_group"), "");
    assert_eq!(json_field(&t, "content"), "page content\\n");
    assert_eq!(json_field(&t, "authorization"), "null");
    let embedded_pid = json_field(&t, "pid");

    let t = ok(&a.request("GET", "/resd/page.myext", &auth, b""));
    assert_eq!(json_field(&t, "script_filename"), page);
    assert_eq!(json_field(&t, "handler_script"), handler);
    assert_eq!(json_field(&t, "process_group"), "hd");
    assert_eq!(json_field(&t, "application_group"), "");
    assert_eq!(json_field(&t, "content"), "page content\\n");
    assert_eq!(json_field(&t, "authorization"), "Basic c3B5OnNlY3JldA==");
    assert_ne!(json_field(&t, "pid"), embedded_pid);

    // SetHandler: any file, no Options ExecCGI needed.
    let t = ok(&a.get("/set/hello.wsgi"));
    assert_eq!(
        json_field(&t, "script_filename"),
        apps.join("hello.wsgi").display().to_string()
    );
    // Other extensions are not the handler's: served as static files.
    let r = a.get("/res/data.bin");
    assert_eq!(r.status, 200);
    assert!(!r.text().contains("handler_script"));
    // A file that does not exist.
    assert_eq!(a.get("/res/nothere.myext").status, 404);
}
