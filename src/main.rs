//! The `ultrasched` binary: all work is in [`ultrasched::cli::run`].

fn main() {
    // Mesa's Vulkan drivers print "XDG_RUNTIME_DIR is invalid" on every adapter probe when the variable is
    // unset (CI, containers). Set it for this process only, before any thread starts.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    if let Err(err) = ultrasched::cli::run() {
        eprintln!("Error: {err:#}");
        std::process::exit(ultrasched::error::exit_code(&err));
    }
}
