//! `coffer scan` without the rest of the binary, for the benchmark:
//! `cargo run --release -p coffer-scan --example scan -- [ARGS]`.

use clap::Parser;

#[derive(Parser)]
#[command(name = "coffer-scan")]
struct Cli {
    #[command(flatten)]
    args: coffer_scan::ScanArgs,
}

fn main() {
    std::process::exit(coffer_scan::run(Cli::parse().args));
}
