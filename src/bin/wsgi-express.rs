//! wsgi-express: mod_wsgi-express for mod_wsgi-rs. See `mod_wsgi_rs::express`.
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(mod_wsgi_rs::express::main(std::env::args().collect()));
}
