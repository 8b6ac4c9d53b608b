//! The `photoshield` binary: parses the command line and drives the library's batch engine.

mod cli;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use cli::{Cli, Command, CompareArgs, DetectArgs, InspectArgs, KeygenArgs, ProtectPlan, Ui};
use photoshield::batch::{self, FileRecord, Status, Summary};
use photoshield::Pipeline;

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Protect(args) => args.resolve().and_then(run_batch),
        Command::Strip(args) => args.resolve().and_then(run_batch),
        Command::Inspect(args) => inspect(args),
        Command::Compare(args) => compare(args),
        Command::Keygen(args) => keygen(args),
        Command::Detect(args) => detect(args),
    };
    match result {
        Ok(code) => code,
        // A closed pipe (`photoshield inspect --json | head -1`) is the reader's choice.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Every file needs the same few large buffers (the file, the decoded pixels, the output). By
/// default glibc gives each one fresh pages from the kernel and returns them when freed, so every
/// file pays for its buffers in page faults again (up to 20 ms for a 36 MB image). Keeping freed
/// memory in the allocator lets the next file reuse it; the peak stays the same.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; it is called before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

fn run_batch(plan_args: ProtectPlan) -> anyhow::Result<ExitCode> {
    let args = &plan_args.ui;
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
            progress.suspend(|| {
                let _ = writeln!(
                    std::io::stdout().lock(),
                    "{} -> {}",
                    r.input,
                    r.output.as_deref().unwrap_or("")
                );
            });
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
    print_summary(&summary, args);

    Ok(if summary.interrupted {
        ExitCode::from(130)
    } else if summary.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_summary(s: &Summary, args: &Ui) {
    if args.json {
        let line = serde_json::json!({ "summary": s });
        let _ = writeln!(std::io::stdout().lock(), "{line}");
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

/// The files named on the command line, folders walked by the same rules as `protect`
/// ([`batch::list`]). The walk's records come first: a failure as an `Err` line, a file passed
/// over (a FIFO, earlier outputs) as a note on standard error.
fn files_of(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<Result<batch::Listed, String>>> {
    let (files, records) = batch::list(paths)?;
    let mut out = Vec::new();
    for r in records {
        match r.status {
            Status::Failed => out.push(Err(r.message())),
            _ => eprintln!("note: {}", r.message()),
        }
    }
    out.extend(files.into_iter().map(Ok));
    Ok(out)
}

/// Reads a listed file; `Ok(None)` for a walked file that is not an image (and has no image
/// extension), which `protect` would pass over too.
fn read_listed(file: &batch::Listed) -> Result<Option<Vec<u8>>, String> {
    let bytes = batch::read_file(&file.path)?;
    let not_image = matches!(
        photoshield::codec::sniff(&bytes),
        Err(photoshield::Error::NotAnImage(_)) | Err(photoshield::Error::Empty)
    );
    if file.walked && not_image && !batch::has_image_extension(&file.path) {
        return Ok(None);
    }
    Ok(Some(bytes))
}

/// `inspect`: a report per file; exit 1 when any file leaks (or cannot be read).
fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let files = files_of(&args.paths)?;
    let mut any_leak = false;
    let mut out = std::io::stdout().lock();
    for file in files {
        let file = match file {
            Ok(f) => f,
            Err(message) => {
                eprintln!("error: {message}");
                any_leak = true;
                continue;
            }
        };
        let shown = file.path.display().to_string();
        let result = match read_listed(&file) {
            Ok(None) => continue,
            Ok(Some(bytes)) => photoshield::inspect::inspect(&bytes).map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match result {
            Ok(ins) => {
                any_leak |= ins.leaks();
                if args.json {
                    let record =
                        serde_json::json!({ "path": shown, "leaks": ins.leaks(), "inspection": ins });
                    writeln!(out, "{record}")?;
                } else {
                    let verdict = if ins.leaks() { "LEAKS" } else { "clean" };
                    writeln!(out, "{shown}: {verdict} ({})", ins.format)?;
                    for f in &ins.findings {
                        let mark = if f.leak { "!" } else { " " };
                        let name = serde_json::to_value(f.category)
                            .ok()
                            .and_then(|v| v.as_str().map(String::from))
                            .unwrap_or_default();
                        writeln!(out, "  {mark} {name:<15} {}", f.detail)?;
                    }
                }
            }
            Err(reason) => {
                any_leak = true;
                if args.json {
                    writeln!(out, "{}", serde_json::json!({ "path": shown, "error": reason }))?;
                } else {
                    eprintln!("error: {shown}: {reason}");
                }
            }
        }
    }
    Ok(if any_leak {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `compare`: quality cost and durability of a protected copy.
fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    let load = |path: &std::path::Path| -> anyhow::Result<photoshield::Pixels> {
        let bytes = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), batch::io_reason(&e)))?;
        photoshield::compare::load(&bytes).with_context(|| path.display().to_string())
    };
    let (a, b) = (load(&args.original)?, load(&args.protected)?);
    let c = photoshield::compare::compare(&a, &b)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&c)?)?;
    } else {
        writeln!(out, "size                     {}x{}", c.width, c.height)?;
        writeln!(out, "max abs difference       {} levels", c.max_abs_diff)?;
        writeln!(out, "PSNR                     {:.2} dB", c.psnr_db)?;
        writeln!(out, "SSIM (luminance)         {:.4}", c.ssim)?;
        writeln!(
            out,
            "after JPEG q75           correlation {:.3}, energy kept {:.2}",
            c.jpeg75_correlation, c.jpeg75_energy_kept
        )?;
        writeln!(
            out,
            "after 2x downscale       energy kept {:.2}",
            c.downscale2x_energy_kept
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `keygen`: a new random key, written with mode 0600 to a file that must not exist yet.
fn keygen(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    let path = &args.output;
    let key = photoshield::mark::Key::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(
            "{}: exists; refusing to replace a key (the marks made with it could no longer be read)",
            path.display()
        ),
        _ => anyhow::anyhow!(
            "cannot write key file {}: {}",
            path.display(),
            batch::io_reason(&e)
        ),
    })?;
    if let Err(e) = file
        .write_all(key.to_file_text().as_bytes())
        .and_then(|()| file.sync_all())
    {
        drop(file);
        let _ = std::fs::remove_file(path);
        anyhow::bail!(
            "cannot write key file {}: {}",
            path.display(),
            batch::io_reason(&e)
        );
    }
    eprintln!(
        "wrote {} (fingerprint {}). Keep it secret and backed up: without it no mark can be read.",
        path.display(),
        key.fingerprint()
    );
    Ok(ExitCode::SUCCESS)
}

/// `detect`: the mark of each file; exit 0 only when every file carries a verified one.
fn detect(args: DetectArgs) -> anyhow::Result<ExitCode> {
    use rayon::prelude::*;
    let key = cli::read_key(&args.key)?;
    let detector = photoshield::mark::Detector::new(&key);
    let files = files_of(&args.paths)?;
    let results: Vec<_> = files
        .into_par_iter()
        .filter_map(|file| {
            let file = match file {
                Ok(f) => f,
                Err(e) => return Some(Err(e)),
            };
            match read_listed(&file) {
                Ok(Some(bytes)) => Some(Ok((file.path, bytes))),
                Ok(None) => None,
                Err(e) => Some(Err(format!("{}: {e}", file.path.display()))),
            }
        })
        .map(|file| {
            let (path, bytes) = file?;
            let start = std::time::Instant::now();
            let pixels =
                photoshield::compare::load(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            let found = detector.detect(&pixels);
            Ok::<_, String>((path, found, start.elapsed().as_secs_f64() * 1e3))
        })
        .collect();
    let mut all_verified = true;
    let mut out = std::io::stdout().lock();
    for result in results {
        let (path, found, ms) = match result {
            Ok(r) => r,
            Err(message) => {
                all_verified = false;
                if args.json {
                    writeln!(out, "{}", serde_json::json!({ "error": message }))?;
                } else {
                    eprintln!("error: {message}");
                }
                continue;
            }
        };
        all_verified &= found.verified();
        let shown = path.display().to_string();
        if args.json {
            let mut record = serde_json::json!({
                "path": shown,
                "detected": found.verified(),
                "score": (found.score * 100.0).round() / 100.0,
                "crc_ok": found.crc_ok,
                "zoom": (found.zoom * 1e4).round() / 1e4,
                "core_ms": (ms * 10.0).round() / 10.0,
            });
            if let Some(id) = found.id {
                record["id"] = id.to_string().into();
                record["payload_hex"] = id.hex().into();
                record["id_bits"] = id.bits.into();
            }
            writeln!(out, "{record}")?;
        } else {
            match found.id {
                Some(id) => writeln!(out, "{shown}: mark {id} (score {:.1}, CRC ok)", found.score)?,
                None if found.crc_ok => writeln!(
                    out,
                    "{shown}: no mark found (score {:.1} is under the threshold {})",
                    found.score,
                    photoshield::mark::THRESHOLD
                )?,
                None => writeln!(
                    out,
                    "{shown}: no mark found (score {:.1}, no CRC match)",
                    found.score
                )?,
            }
        }
    }
    Ok(if all_verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
