//! Stand-in for `ultrasched frag-study` until the subcommand is wired into src/main.rs:
//! `cargo run --release --example frag_study -- --nodes ... --pods ... --csv out.csv`.

use clap::Parser;

/// Reproduce the FGD fragmentation study on an openb trace.
#[derive(Parser)]
#[command(name = "frag-study")]
struct Cli {
    #[command(flatten)]
    args: ultrasched::cli::frag_study::FragStudyArgs,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = ultrasched::cli::frag_study::run(&cli.args) {
        eprintln!("Error: {e:#}");
        std::process::exit(ultrasched::error::exit_code(&e));
    }
}
