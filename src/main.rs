//! The `photoshield` binary: parses the command line and drives the library's batch engine.
//! It owns everything the user sees in a terminal: the lines it prints (file names escaped, a
//! closed pipe ending the run quietly), the signals that stop a batch, and the exit codes.

mod cli;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Mutex;

use clap::{CommandFactory, Parser};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use cli::{Cli, Command, CompareArgs, CompletionsArgs, DetectArgs, InspectArgs, KeygenArgs, ProtectPlan, Ui};
use photoshield::batch::{self, FileRecord, Status, Summary};
use photoshield::Pipeline;

/// A bug that panics while one file is processed fails that file (the batch engine catches
/// it) and is reported on its line: one line here instead of Rust's panic message, unless
/// RUST_BACKTRACE asks for the details.
fn quiet_panics() {
    if std::env::var_os("RUST_BACKTRACE").is_some() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("photoshield: internal error{at} (set RUST_BACKTRACE=1 for details)");
    }));
}

/// Exit code when standard output or standard error was closed before the end (128 + SIGPIPE,
/// what a shell reports for a program stopped by a closed pipe).
const EXIT_CLOSED: u8 = 141;

fn main() -> ExitCode {
    keep_freed_memory();
    quiet_panics();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Protect(args) => args.resolve().and_then(run_batch),
        Command::Strip(args) => args.resolve().and_then(run_batch),
        Command::Inspect(args) => inspect(args),
        Command::Compare(args) => compare(args),
        Command::Keygen(args) => keygen(args),
        Command::Detect(args) => detect(args),
        Command::Completions(args) => completions(args),
        Command::Man(args) => man(args),
    };
    match result {
        // The reader went away (`photoshield inspect --json | head -1`): end quietly, and say
        // with the exit code that the output is incomplete.
        _ if say::closed() => ExitCode::from(EXIT_CLOSED),
        Ok(code) => code,
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::from(EXIT_CLOSED)
        }
        Err(e) => {
            say::err(&format!("Error: {e:#}"));
            ExitCode::from(2)
        }
    }
}

/// Every line photoshield prints goes through here. File names can hold any byte but `/` and
/// NUL: a newline or an escape sequence in a name must not forge an `error:` line or recolour
/// the terminal, so control characters are printed escaped. A write to a closed pipe neither
/// panics (as `println!` would) nor is retried: it marks the run as cut short.
mod say {
    use std::borrow::Cow;
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};

    static CLOSED: AtomicBool = AtomicBool::new(false);

    /// True once standard output or standard error turned out to be closed.
    pub fn closed() -> bool {
        CLOSED.load(Ordering::Relaxed)
    }

    /// `text` with control characters (newline, CR, tab, ESC, DEL, C1 controls) written as
    /// `\n`, `\r`, `\t`, `\x1b` and `\u{..}`; a backslash itself stays as it is.
    pub fn escape(text: &str) -> Cow<'_, str> {
        if !text.chars().any(char::is_control) {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len() + 8);
        for c in text.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x80 && c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        Cow::Owned(out)
    }

    fn write(mut w: impl Write, line: &str) {
        if closed() {
            return;
        }
        if let Err(e) = writeln!(w, "{}", escape(line)).and_then(|()| w.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                CLOSED.store(true, Ordering::Relaxed);
            }
        }
    }

    /// One line on standard error.
    pub fn err(line: &str) {
        write(std::io::stderr().lock(), line);
    }

    /// One line on standard output.
    pub fn out(line: &str) {
        write(std::io::stdout().lock(), line);
    }

    /// One line of machine-readable output (JSON) on standard output, unescaped: JSON escapes
    /// control characters itself.
    pub fn record(line: &str) {
        if closed() {
            return;
        }
        let mut w = std::io::stdout().lock();
        if let Err(e) = writeln!(w, "{line}").and_then(|()| w.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                CLOSED.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// Set by the first SIGINT/SIGTERM (or a closed pipe): the batch starts no new file.
static CANCEL: AtomicBool = AtomicBool::new(false);
/// The signal that stopped the batch, 0 if none.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// First Ctrl-C or SIGTERM: finish the files in flight, start no new one, summarise, exit
/// 128 + the signal (130, 143). A second one: leave at once.
fn handle_signals() {
    #[cfg(unix)]
    {
        extern "C" fn on_signal(signal: libc::c_int) {
            // Only atomics and _exit here: both are async-signal-safe.
            if SIGNAL.swap(signal, Ordering::SeqCst) != 0 {
                // SAFETY: _exit ends the process without running anything else.
                unsafe { libc::_exit(128 + signal) };
            }
            CANCEL.store(true, Ordering::SeqCst);
        }
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: the handler only touches atomics and calls _exit, which is allowed in a
            // signal handler.
            unsafe {
                libc::signal(
                    signal,
                    on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
                )
            };
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrlc::set_handler(|| {
            if SIGNAL.swap(2, Ordering::SeqCst) != 0 {
                std::process::exit(130);
            }
            CANCEL.store(true, Ordering::SeqCst);
        });
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
    for warning in &plan_args.warnings {
        say::err(&format!("warning: {warning}"));
    }
    let plan = batch::plan(&plan_args.inputs, &plan_args.batch.destination)?;
    handle_signals();

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
    // Outputs that exist already are told in one line at the end, not one line each.
    let exists = Mutex::new(Vec::<String>::new());
    let not_images = AtomicU64::new(0);
    let on_record = |r: &FileRecord| {
        progress.inc(1);
        let print = |line: String| progress.suspend(|| say::err(&line));
        if args.json {
            say::record(&serde_json::to_string(r).unwrap_or_default());
        } else if args.dry_run && r.status == Status::WouldWrite && !args.quiet {
            progress.suspend(|| say::out(&format!("{} -> {}", r.input, r.output.as_deref().unwrap_or(""))));
        }
        if r.status == Status::Skipped && r.reason.as_deref() == Some(batch::NOT_AN_IMAGE) {
            not_images.fetch_add(1, Ordering::Relaxed);
        }
        match r.status {
            Status::Failed if r.output_exists && !args.verbose => {
                exists.lock().unwrap_or_else(|e| e.into_inner()).push(r.message())
            }
            Status::Failed => print(format!("error: {}", r.message())),
            Status::Skipped if args.verbose => print(format!("skipped: {}", r.message())),
            _ => {}
        }
        if let Some(report) = r.report.as_ref().filter(|_| !args.quiet) {
            for note in &report.notes {
                print(format!("note: {}: {note}", r.input));
            }
        }
        if say::closed() {
            CANCEL.store(true, Ordering::SeqCst);
        }
    };
    let summary = batch::run(plan, &pipeline, &plan_args.batch, &CANCEL, &on_record);
    progress.finish_and_clear();

    let exists = exists.into_inner().unwrap_or_else(|e| e.into_inner());
    match exists.as_slice() {
        [] => {}
        [one] => say::err(&format!("error: {one}")),
        [..] => say::err(&format!(
            "error: {} outputs exist already and were kept (-v lists them); use --if-exists skip to keep them or --if-exists overwrite to replace them",
            exists.len(),
        )),
    }
    let not_images = not_images.into_inner();
    if summary.written + summary.failed + summary.skipped == not_images && !args.quiet && !summary.interrupted
    {
        let inputs: Vec<String> = plan_args
            .inputs
            .iter()
            .map(|i| match i {
                batch::Input::Stdin => "standard input".to_string(),
                batch::Input::Path(p) => p.display().to_string(),
            })
            .collect();
        let skipped = match not_images {
            0 => String::new(),
            1 => "; 1 file was skipped as not an image (-v names it)".to_string(),
            n => format!("; {n} files were skipped as not images (-v names them)"),
        };
        say::err(&format!(
            "warning: no images found in {}{skipped}",
            inputs.join(", ")
        ));
    }
    print_summary(&summary, args);

    Ok(if say::closed() {
        ExitCode::from(EXIT_CLOSED)
    } else if summary.interrupted {
        ExitCode::from(128 + SIGNAL.load(Ordering::SeqCst).clamp(1, 127) as u8)
    } else if summary.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_summary(s: &Summary, args: &Ui) {
    if args.json {
        say::record(&serde_json::json!({ "summary": s }).to_string());
    }
    if args.quiet && s.failed == 0 {
        return;
    }
    let verb = if args.dry_run { "would write" } else { "written" };
    say::err(&format!(
        "{}{} {verb}, {} skipped, {} failed; {} in, {} out; {:.2} s",
        if s.interrupted { "interrupted: " } else { "" },
        s.written,
        s.skipped,
        s.failed,
        human_bytes(s.bytes_in),
        human_bytes(s.bytes_out),
        s.seconds
    ));
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
            _ => say::err(&format!("note: {}", r.message())),
        }
    }
    out.extend(files.into_iter().map(Ok));
    Ok(out)
}

/// Reads a listed file; `Ok(None)` for a walked file that is not an image (and has no image
/// extension), which `protect` would pass over too.
fn read_listed(file: &batch::Listed) -> Result<Option<Vec<u8>>, String> {
    let bytes = batch::read_file(&file.path).map_err(|e| e.to_string())?;
    let not_image = matches!(
        photoshield::format::sniff(&bytes),
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
    for file in files {
        if say::closed() {
            break;
        }
        let file = match file {
            Ok(f) => f,
            Err(message) => {
                say::err(&format!("error: {message}"));
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
                    say::record(&record.to_string());
                } else {
                    let verdict = if ins.leaks() { "LEAKS" } else { "clean" };
                    say::out(&format!("{shown}: {verdict} ({})", ins.format));
                    for f in &ins.findings {
                        let mark = if f.leak { "!" } else { " " };
                        let name = serde_json::to_value(f.category)
                            .ok()
                            .and_then(|v| v.as_str().map(String::from))
                            .unwrap_or_default();
                        say::out(&format!("  {mark} {name:<15} {}", f.detail));
                    }
                }
            }
            Err(reason) => {
                any_leak = true;
                if args.json {
                    say::record(&serde_json::json!({ "path": shown, "error": reason }).to_string());
                } else {
                    say::err(&format!("error: {shown}: {reason}"));
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
    // A preset's copy is smaller than its original: compare it with the original brought to
    // the copy's size, the best the copy could be.
    let original_size = (a.width, a.height);
    let a = photoshield::compare::to_size_of(a, &b)
        .with_context(|| format!("{} and {}", args.original.display(), args.protected.display()))?;
    let mut c = photoshield::compare::compare(&a, &b)?;
    if original_size != (b.width, b.height) {
        c.original_resized_from = Some(original_size);
    }
    if args.json {
        say::record(&serde_json::to_string(&c)?);
    } else {
        match c.original_resized_from {
            Some((w, h)) => say::out(&format!(
                "size                     {}x{} (the original, {w}x{h}, resized to the copy's size for the comparison)",
                c.width, c.height
            )),
            None => say::out(&format!("size                     {}x{}", c.width, c.height)),
        }
        say::out(&format!("max abs difference       {} levels", c.max_abs_diff));
        say::out(&format!("PSNR                     {:.2} dB", c.psnr_db));
        say::out(&format!("SSIM (luminance)         {:.4}", c.ssim));
        say::out(&format!(
            "after JPEG q75           correlation {:.3}, energy kept {:.2}",
            c.jpeg75_correlation, c.jpeg75_energy_kept
        ));
        say::out(&format!(
            "after 2x downscale       energy kept {:.2}",
            c.downscale2x_energy_kept
        ));
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
    say::err(&format!(
        "wrote {} (fingerprint {}). Keep it secret and backed up: without it no mark can be read.",
        path.display(),
        key.fingerprint()
    ));
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
    for result in results {
        let (path, found, ms) = match result {
            Ok(r) => r,
            Err(message) => {
                all_verified = false;
                if args.json {
                    say::record(&serde_json::json!({ "error": message }).to_string());
                } else {
                    say::err(&format!("error: {message}"));
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
            say::record(&record.to_string());
        } else {
            say::out(&match found.id {
                Some(id) => format!("{shown}: mark {id} (score {:.1}, CRC ok)", found.score),
                None if found.crc_ok => format!(
                    "{shown}: no mark found (score {:.1} is under the threshold {})",
                    found.score,
                    photoshield::mark::THRESHOLD
                ),
                None => format!("{shown}: no mark found (score {:.1}, no CRC match)", found.score),
            });
        }
    }
    Ok(if all_verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `completions SHELL`: the completion script, generated from the same definitions as --help.
fn completions(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "photoshield", &mut script);
    std::io::stdout().lock().write_all(&script)?;
    Ok(ExitCode::SUCCESS)
}

/// `man [COMMAND]`: the manual page in roff, from the same definitions as --help.
fn man(args: cli::ManArgs) -> anyhow::Result<ExitCode> {
    let mut command = Cli::command();
    command.build();
    let page = match &args.command {
        None => command,
        Some(name) => {
            let sub = command
                .find_subcommand(name)
                .ok_or_else(|| anyhow::anyhow!("{}: no such command", say::escape(name)))?
                .clone();
            let full = format!("photoshield-{}", sub.get_name());
            // clap keeps names as static strings; this process prints one page and ends.
            sub.name(&*Box::leak(full.into_boxed_str()))
                .version(env!("CARGO_PKG_VERSION"))
        }
    };
    let mut roff = Vec::new();
    clap_mangen::Man::new(page).render(&mut roff)?;
    std::io::stdout().lock().write_all(&roff)?;
    Ok(ExitCode::SUCCESS)
}
