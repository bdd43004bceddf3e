//! `deploy man [COMMAND]`: the man page, deploy(1) or deploy-COMMAND(1), in roff on stdout,
//! generated from the clap definitions (`deploy man > deploy.1; man ./deploy.1`).

use crate::cli::Cli;
use crate::run::Failure;
use clap::CommandFactory;

pub fn run(command: Option<&str>) -> Result<(), Failure> {
    // `deploy help` is left out: it has no page of its own. Built once so each command knows
    // its full name (`deploy-plan`) for its own page.
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    let page = match command {
        None => root,
        Some(name) => root.find_subcommand(name).cloned().ok_or_else(|| {
            let names: Vec<&str> = root.get_subcommands().map(|c| c.get_name()).collect();
            Failure::Other(format!(
                "no command `{name}`; the commands are: {}",
                names.join(", ")
            ))
        })?,
    };
    let mut roff = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut roff)
        .map_err(|e| Failure::Other(format!("cannot render the man page: {e}")))?;
    crate::printer::write_stdout(&roff)
}
