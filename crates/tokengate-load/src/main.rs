//! `tokengate-load`: see the crate documentation and README.md.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use tokengate_load::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tokengate-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    if let Some(call) = cli.dump_body {
        let body = cli.body(call)?;
        let mut out = std::io::stdout().lock();
        out.write_all(&body)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let cfg = cli.to_config()?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if cli.threads > 0 {
        builder.worker_threads(cli.threads);
    }
    let runtime = builder.build()?;
    let report = runtime.block_on(tokengate_load::run(&cfg))?;
    if cli.json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
    Ok(if cli.fail_on_errors && report.errors_total() > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
