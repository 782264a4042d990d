fn main() {
    eprintln!("wsgi-express: not implemented yet (see README)");
    std::process::exit(2);
}
