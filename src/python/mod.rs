//! Python inside Apache: the interpreter's lifecycle ([`init`]), loading
//! WSGI scripts ([`script`]) and the `mod_wsgi` module seen by applications.

pub mod bytes;
pub mod init;
pub mod modwsgi;
pub mod script;
