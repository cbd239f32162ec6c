//! The `ultrasched` binary: all work is in [`ultrasched::cli::run`].

fn main() {
    if let Err(err) = ultrasched::cli::run() {
        eprintln!("Error: {err:#}");
        std::process::exit(ultrasched::error::exit_code(&err));
    }
}
