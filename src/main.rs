//! The `dnsdoc` binary: parses arguments, runs a command, maps errors to exit codes.

use clap::Parser;

use dnsdoc::cli::{Cli, Command};
use dnsdoc::exit;

fn main() {
    let cli = match Cli::try_parse().and_then(|c| c.check().map(|()| c)) {
        Ok(cli) => cli,
        // --help and --version are not errors.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            std::process::exit(exit::OK);
        }
        Err(e) => {
            let args: Vec<String> = std::env::args().collect();
            eprintln!("{}", dnsdoc::cli::one_line(&e, &args));
            std::process::exit(exit::USAGE);
        }
    };
    let result = match &cli.command {
        Command::Watch(args) => dnsdoc::watch::run(&args.options()),
        Command::Doctor(args) => dnsdoc::doctor::run(&args.options()),
        Command::Rules(args) => dnsdoc::doctor::run_rules(&args.task()),
        Command::Serve(args) => dnsdoc::serve::run(&args.options()),
        Command::Top(args) => dnsdoc::top::run(&args.options()),
        Command::Explain(args) => dnsdoc::doctor::explain(&args.options()),
        Command::Chaos(args) => dnsdoc::chaos::run(&args.options()),
        Command::Version(args) => dnsdoc::version::run(args.format).map(|()| exit::OK),
        Command::Completions { shell } => {
            dnsdoc::cli::print_completions(*shell);
            Ok(exit::OK)
        }
        Command::Man => dnsdoc::cli::print_man_page()
            .map(|()| exit::OK)
            .map_err(Into::into),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            // One line: the chain of contexts, outermost first.
            let msg: Vec<String> = err.chain().map(ToString::to_string).collect();
            eprintln!("dnsdoc: error: {}", msg.join(": "));
            std::process::exit(exit::code_for(&err));
        }
    }
}
