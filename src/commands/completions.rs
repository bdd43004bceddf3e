//! `deploy completions SHELL`: the shell's completion script for every command and flag,
//! generated from the same clap definitions that parse them, so it cannot fall behind.

use crate::cli::{Cli, CompletionShell};
use crate::run::Failure;
use clap::CommandFactory;

pub fn run(shell: CompletionShell) -> Result<(), Failure> {
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "deploy", &mut script);
    crate::printer::write_stdout(&script)
}
