//! The `deploy` binary: parse arguments, run, map the outcome to an exit code.

use clap::Parser;

fn main() {
    let cli = deploy::cli::Cli::parse();
    let code = deploy::run::main(cli);
    std::process::exit(code);
}
