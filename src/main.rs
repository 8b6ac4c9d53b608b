//! The `photoshield` binary: parses the command line and drives the library's batch engine.

mod cli;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use cli::{Cli, Command, ProtectArgs};
use photoshield::batch::{self, FileRecord, Status, Summary};
use photoshield::Pipeline;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Protect(args) => protect(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn protect(args: ProtectArgs) -> anyhow::Result<ExitCode> {
    let plan_args = args.resolve()?;
    let pipeline = Pipeline::new(&plan_args.options)?;
    let plan = batch::plan(&plan_args.inputs, &plan_args.batch.destination)?;

    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = Arc::clone(&cancel);
        // First Ctrl-C: finish the files in flight, start no new one. Second: leave at once.
        let _ = ctrlc::set_handler(move || {
            if cancel.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    }

    let total = (plan.len() + plan.walk_failures().len()) as u64;
    let progress = if std::io::stderr().is_terminal() && !args.quiet && !args.json {
        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} files  {elapsed} elapsed, ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let on_record = |r: &FileRecord| {
        progress.inc(1);
        if args.json {
            let line = serde_json::to_string(r).unwrap_or_default();
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
        } else if args.dry_run && r.status == Status::WouldWrite && !args.quiet {
            progress.suspend(|| println!("{} -> {}", r.input, r.output.as_deref().unwrap_or("")));
        }
        let show = match r.status {
            Status::Failed => true,
            Status::Skipped => args.verbose,
            _ => false,
        };
        if show {
            let level = if r.status == Status::Failed {
                "error"
            } else {
                "skipped"
            };
            progress.suspend(|| eprintln!("{level}: {}", r.message()));
        }
    };
    let summary = batch::run(plan, &pipeline, &plan_args.batch, &cancel, &on_record);
    progress.finish_and_clear();
    print_summary(&summary, &args);

    Ok(if summary.interrupted {
        ExitCode::from(130)
    } else if summary.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_summary(s: &Summary, args: &ProtectArgs) {
    if args.json {
        let line = serde_json::json!({ "summary": s });
        println!("{line}");
    }
    if args.quiet && s.failed == 0 {
        return;
    }
    let verb = if args.dry_run { "would write" } else { "written" };
    eprintln!(
        "{}{} {verb}, {} skipped, {} failed; {} in, {} out; {:.2} s",
        if s.interrupted { "interrupted: " } else { "" },
        s.written,
        s.skipped,
        s.failed,
        human_bytes(s.bytes_in),
        human_bytes(s.bytes_out),
        s.seconds
    );
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}
