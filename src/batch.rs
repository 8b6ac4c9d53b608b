//! The file-system edge: turning inputs (files, folders, stdin) into jobs, naming each output,
//! running the jobs on a thread pool and writing every output atomically. It keeps going past
//! bad files and records each file's fate; it never writes over an input.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::Error;
use crate::format::OutputFormat;
use crate::pipeline::{FileContext, Pipeline, Report};

/// One thing the user named on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Standard input (`-`): one image, its output on standard output or at `-o`.
    Stdin,
    /// A file, or a folder walked recursively.
    Path(PathBuf),
}

/// Where outputs go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Beside the input: `NAME.protected.EXT` for a file, `FOLDER-protected/` for a folder.
    Beside,
    /// Into this folder, mirroring each input folder's tree.
    Dir(PathBuf),
    /// Exactly this file (one input only).
    File(PathBuf),
    /// Standard output (one input only).
    Stdout,
}

/// What to do when an output file already exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum IfExists {
    /// Leave the existing file and report the input as skipped.
    Skip,
    /// Replace the existing file (atomically).
    Overwrite,
    /// Leave the existing file and report the input as failed. The default: nothing is
    /// replaced silently and nothing is silently left stale.
    #[default]
    Error,
}

/// What a batch does to each file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Operation {
    /// [`Pipeline::process`]: decode, orient, resize, watermark, re-encode.
    #[default]
    Protect,
    /// [`Pipeline::strip`]: remove metadata, keep the compressed pixels byte for byte.
    Strip,
}

/// How a batch runs.
#[derive(Clone, Debug)]
pub struct BatchOptions {
    /// What is done to each file.
    pub operation: Operation,
    /// Where the outputs go.
    pub destination: Destination,
    /// What to do when an output already exists.
    pub if_exists: IfExists,
    /// Worker threads; 0 means one per core.
    pub jobs: usize,
    /// List what would be written, write nothing.
    pub dry_run: bool,
}

/// Where one job's output goes, before the output format (and so the extension) is known.
#[derive(Clone, Debug)]
enum Target {
    /// This path, with the extension changed if the output format needs another.
    Mirror(PathBuf),
    /// `STEM.protected.EXT` beside this input file.
    Sibling(PathBuf),
    /// Exactly this path.
    Exact(PathBuf),
    Stdout,
}

/// One file to protect.
#[derive(Clone, Debug)]
struct Job {
    source: Input,
    /// Path relative to the input root, `/`-separated: the name the pipeline sees.
    rel: String,
    target: Target,
    /// Found by walking a folder (so a non-image is skipped rather than refused).
    walked: bool,
}

/// The fate of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Written to its output.
    Written,
    /// Dry run: would have been written.
    WouldWrite,
    /// Not processed, and not an error: a non-image found by walking a folder, an output
    /// that exists under `--if-exists skip`, a file the batch never started after Ctrl-C.
    Skipped,
    /// Could not be processed or written; the record's `reason` says why.
    Failed,
}

/// One line of the batch's record.
#[derive(Clone, Debug, Serialize)]
pub struct FileRecord {
    /// The input as shown to the user: its path, or `-` for standard input.
    pub input: String,
    /// Where the output went (or would go), when it was written (or would be).
    pub output: Option<String>,
    /// What became of the file.
    pub status: Status,
    /// Why the file failed or was skipped.
    pub reason: Option<String>,
    /// What the pipeline did, when it ran to the end.
    #[serde(flatten)]
    pub report: Option<Report>,
    /// Size of the input file, in bytes.
    pub bytes_in: u64,
    /// Size of the output file, in bytes (0 when nothing was written).
    pub bytes_out: u64,
    /// Time spent on the file, in milliseconds.
    pub ms: f64,
    /// The file was not written because its output exists (`--if-exists error` or `skip`):
    /// the command line tells these in one line.
    #[serde(skip)]
    pub output_exists: bool,
}

/// The reason of a file a folder walk met that is not an image.
pub const NOT_AN_IMAGE: &str = "not an image";

/// The reason of a file not started because the batch was stopped (Ctrl-C, SIGTERM).
pub(crate) const NOT_STARTED: &str = "interrupted before it started";

impl FileRecord {
    fn new(input: String, status: Status, reason: Option<String>) -> FileRecord {
        FileRecord {
            input,
            output: None,
            status,
            reason,
            report: None,
            bytes_in: 0,
            bytes_out: 0,
            ms: 0.0,
            output_exists: false,
        }
    }

    /// The one-line message for a failed or skipped file.
    pub fn message(&self) -> String {
        format!("{}: {}", self.input, self.reason.as_deref().unwrap_or("ok"))
    }
}

/// Totals of a batch.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Files written (or, in a dry run, that would have been).
    pub written: u64,
    /// Files skipped (see [`Status::Skipped`]).
    pub skipped: u64,
    /// Files that failed.
    pub failed: u64,
    /// Bytes read, over every input.
    pub bytes_in: u64,
    /// Bytes written, over every output.
    pub bytes_out: u64,
    /// Wall-clock time of the whole batch, in seconds.
    pub seconds: f64,
    /// The batch was stopped (Ctrl-C) before every file was done.
    pub interrupted: bool,
}

impl Summary {
    fn add(&mut self, r: &FileRecord) {
        match r.status {
            Status::Written | Status::WouldWrite => self.written += 1,
            Status::Skipped => self.skipped += 1,
            Status::Failed => self.failed += 1,
        }
        self.bytes_in += r.bytes_in;
        self.bytes_out += r.bytes_out;
    }
}

/// A usage problem found before any file is touched (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// An input that does not exist (its path).
    #[error("{0}: no such file or folder")]
    Missing(String),
    /// Inputs and destination that do not go together, in words.
    #[error("{0}")]
    Usage(String),
}

/// The jobs of a batch, plus what the walk already decided (failures, and what it passed over
/// with a reason: non-regular files, earlier outputs).
pub struct Plan {
    jobs: Vec<Job>,
    walk_failures: Vec<FileRecord>,
    /// Every input file of the plan, by identity: no output may ever replace one.
    inputs: HashSet<FileId>,
    /// Output folders this run creates, marked as photoshield's so a later run never reads them.
    new_output_roots: Vec<PathBuf>,
}

impl Plan {
    /// Number of files to process (excluding walk failures).
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether there is no file to process.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Files that could not even be listed (symlink loops, unreadable folders), and what the
    /// walk passed over with a reason (FIFOs and devices, earlier outputs).
    pub fn walk_failures(&self) -> &[FileRecord] {
        &self.walk_failures
    }
}

/// The name of the file photoshield leaves in an output folder it creates. A folder holding it
/// is never read as input: its files are earlier outputs, not originals.
pub const OUTPUT_MARKER: &str = ".photoshield";

const OUTPUT_MARKER_TEXT: &[u8] =
    b"This folder holds copies written by photoshield. photoshield never reads \
it as input, so a later run over a parent folder does not protect these copies again.\n";

/// A file's identity on its device (inode), or its canonical path where there are no inodes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum FileId {
    #[cfg(unix)]
    Inode(u64, u64),
    #[cfg(not(unix))]
    Path(PathBuf),
}

impl FileId {
    fn of(path: &Path) -> Option<FileId> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            fs::metadata(path).ok().map(|m| FileId::Inode(m.dev(), m.ino()))
        }
        #[cfg(not(unix))]
        {
            path.canonicalize().ok().map(FileId::Path)
        }
    }
}

/// True for the temporary files photoshield writes before renaming them into place
/// (`.photoshield-XXXXXX.tmp`): never inputs, and removed when found stale.
pub(crate) fn is_temporary_file(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.strip_prefix(".photoshield-")
        .and_then(|rest| rest.strip_suffix(".tmp"))
        .is_some_and(|mid| mid.len() == 6 && mid.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// What a file found in a folder is, when it is not simply an input. `outputs`: earlier outputs
/// are passed over too (for `protect` and `strip`, not for `inspect`, which must see them).
fn passed_over(entry: &walkdir::DirEntry, outputs: bool) -> Option<&'static str> {
    let name = entry.file_name();
    if is_temporary_file(name) {
        return Some("photoshield temporary file");
    }
    if name == OUTPUT_MARKER {
        return Some("photoshield output marker");
    }
    if outputs && name.to_string_lossy().contains(".protected.") {
        return Some("an earlier photoshield output (NAME.protected.EXT), not read");
    }
    let kind = entry.file_type();
    if kind.is_file() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("not a regular file (a FIFO), not read");
        }
        if kind.is_char_device() || kind.is_block_device() {
            return Some("not a regular file (a device), not read");
        }
        if kind.is_socket() {
            return Some("not a regular file (a socket), not read");
        }
    }
    Some("not a regular file, not read")
}

/// A folder that holds an earlier run's outputs: marked by photoshield, or named
/// `NAME-protected` beside a folder `NAME` (the default output folder of `protect NAME`).
fn is_output_folder(dir: &Path) -> bool {
    if dir.join(OUTPUT_MARKER).is_file() {
        return true;
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.strip_suffix("-protected")
        .filter(|stem| !stem.is_empty())
        .is_some_and(|stem| dir.with_file_name(stem).is_dir())
}

/// The first file under `dir` (following links), if any: what would be lost if outputs were
/// written into it.
fn first_file(dir: &Path) -> Option<PathBuf> {
    walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| {
            !e.file_type().is_dir() && e.file_name() != OUTPUT_MARKER && !is_temporary_file(e.file_name())
        })
        .map(walkdir::DirEntry::into_path)
}

/// Extensions that mark a file as meant to be an image, so a folder walk reports it when its
/// content is not one (a non-image without such an extension is skipped silently).
const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "jpe", "jfif", "png", "webp", "tif", "tiff", "gif", "heic", "heif", "avif", "jxl", "bmp",
    "dng", "cr2", "cr3", "nef", "arw", "orf", "rw2", "raf", "mpo",
];

/// Whether `path` has the extension of an image format (photoshield's or not, RAW included),
/// in any case: a file named so that is not an image is reported rather than passed over.
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Lists the jobs for `inputs`, deciding each output's place.
pub fn plan(inputs: &[Input], destination: &Destination) -> Result<Plan, PlanError> {
    let mut jobs = Vec::new();
    let mut walk_failures = Vec::new();
    let mut new_output_roots = Vec::new();
    if inputs.is_empty() {
        return Err(PlanError::Usage("no input given".into()));
    }
    let single = inputs.len() == 1;
    let stdin_count = inputs.iter().filter(|i| **i == Input::Stdin).count();
    if stdin_count > 0 && !single {
        return Err(PlanError::Usage(
            "'-' (standard input) cannot be combined with other inputs".into(),
        ));
    }
    for input in inputs {
        let path = match input {
            Input::Stdin => {
                let target = match destination {
                    Destination::File(p) => Target::Exact(p.clone()),
                    Destination::Stdout | Destination::Beside => Target::Stdout,
                    Destination::Dir(_) => {
                        return Err(PlanError::Usage(
                            "standard input needs -o FILE or no -o (output to standard output)".into(),
                        ))
                    }
                };
                jobs.push(Job {
                    source: Input::Stdin,
                    rel: String::new(),
                    target,
                    walked: false,
                });
                continue;
            }
            Input::Path(p) => p,
        };
        let meta = fs::metadata(path).map_err(|_| PlanError::Missing(path.display().to_string()))?;
        if meta.is_dir() {
            let out_root = match destination {
                Destination::Beside => sibling_folder(path)?,
                Destination::Dir(d) if single => d.clone(),
                Destination::Dir(d) => d.join(path.file_name().unwrap_or(path.as_os_str())),
                Destination::File(_) | Destination::Stdout => {
                    return Err(PlanError::Usage(format!(
                        "{}: a folder needs an output folder (-o DIR), not a file",
                        path.display()
                    )))
                }
            };
            let (out_resolved, in_resolved) = (resolve(&out_root), resolve(path));
            if out_resolved == in_resolved {
                return Err(PlanError::Usage(format!(
                    "{}: the output folder is the input folder; outputs would replace the originals",
                    path.display()
                )));
            }
            if in_resolved.starts_with(&out_resolved) {
                return Err(PlanError::Usage(format!(
                    "{}: the output folder {} contains the input folder; outputs could replace the originals",
                    path.display(),
                    out_root.display()
                )));
            }
            // An output folder inside the input folder is passed over by the walk. That is only
            // safe when it holds nothing but earlier outputs: otherwise its originals would be
            // left out, and an output could replace one.
            if out_resolved.starts_with(&in_resolved) && out_root.is_dir() && !is_output_folder(&out_root) {
                if let Some(original) = first_file(&out_root) {
                    return Err(PlanError::Usage(format!(
                        "{}: the output folder {} is inside the input folder and holds files that \
                         photoshield did not write ({}); choose an output folder outside the input",
                        path.display(),
                        out_root.display(),
                        original.display()
                    )));
                }
            }
            if first_file(&out_root).is_none() && !new_output_roots.contains(&out_root) {
                new_output_roots.push(out_root.clone());
            }
            walk_folder(path, Some(&out_root), &mut jobs, &mut walk_failures);
        } else {
            let target = match destination {
                Destination::Beside => Target::Sibling(path.clone()),
                Destination::Dir(d) => Target::Mirror(d.join(path.file_name().unwrap_or_default())),
                Destination::File(f) if single => Target::Exact(f.clone()),
                Destination::Stdout if single => Target::Stdout,
                _ => return Err(PlanError::Usage("-o FILE takes exactly one input".into())),
            };
            let rel = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            jobs.push(Job {
                source: Input::Path(path.clone()),
                rel,
                target,
                walked: false,
            });
        }
    }
    let inputs = jobs
        .iter()
        .filter_map(|j| match &j.source {
            Input::Path(p) => FileId::of(p),
            Input::Stdin => None,
        })
        .collect();
    Ok(Plan {
        jobs,
        walk_failures,
        inputs,
        new_output_roots,
    })
}

/// A file that `inspect` or `detect` reads.
pub struct Listed {
    /// The file's path.
    pub path: PathBuf,
    /// Found by walking a folder: a file that is not an image (and has no image extension) is
    /// passed over rather than reported.
    pub walked: bool,
}

/// The files `protect` would read from `paths`, by the same rules (folders walked in name
/// order, earlier outputs and non-regular files passed over), and the walk's own records
/// (failures, and what it passed over with the reason).
pub fn list(paths: &[PathBuf]) -> Result<(Vec<Listed>, Vec<FileRecord>), PlanError> {
    let mut jobs = Vec::new();
    let mut records = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|_| PlanError::Missing(path.display().to_string()))?;
        if meta.is_dir() {
            walk_folder(path, None, &mut jobs, &mut records);
        } else {
            jobs.push(Job {
                source: Input::Path(path.clone()),
                rel: String::new(),
                target: Target::Stdout,
                walked: false,
            });
        }
    }
    let files = jobs
        .into_iter()
        .filter_map(|j| match j.source {
            Input::Path(path) => Some(Listed {
                path,
                walked: j.walked,
            }),
            Input::Stdin => None,
        })
        .collect();
    Ok((files, records))
}

fn sibling_folder(dir: &Path) -> Result<PathBuf, PlanError> {
    let abs = resolve(dir);
    let name = abs
        .file_name()
        .ok_or_else(|| PlanError::Usage(format!("{}: give an output folder with -o", dir.display())))?;
    let mut sibling = OsString::from(name);
    sibling.push("-protected");
    Ok(abs.with_file_name(sibling))
}

/// An absolute, symlink-free form of `path`, even when its last parts do not exist yet.
fn resolve(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(canon) = existing.canonicalize() {
            let mut out = canon;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return abs,
        }
    }
}

/// Walks a folder (following symbolic links, which walkdir checks for loops), in a stable
/// order. Passes over the output folder when it lies inside the input, folders of earlier
/// outputs, photoshield's temporary files, and anything that is not a regular file (a FIFO
/// would block the reader, a device never ends): each of those is reported, not processed.
///
/// Without an output folder (`inspect`, `detect`), earlier outputs are read like any file: a
/// gate before an upload must see every file.
fn walk_folder(root: &Path, out_root: Option<&Path>, jobs: &mut Vec<Job>, records: &mut Vec<FileRecord>) {
    let out_resolved = out_root.map(resolve);
    let mut walker = walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = walker.next() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().unwrap_or(root).display().to_string();
                let reason = if e.loop_ancestor().is_some() {
                    "symbolic link loop (not followed)".to_string()
                } else {
                    e.io_error().map(io_reason).unwrap_or_else(|| e.to_string())
                };
                records.push(FileRecord::new(path, Status::Failed, Some(reason)));
                continue;
            }
        };
        if entry.file_type().is_dir() {
            if entry.depth() == 0 {
                continue;
            }
            if out_resolved.as_ref() == Some(&resolve(entry.path())) {
                walker.skip_current_dir();
            } else if out_root.is_some() && is_output_folder(entry.path()) {
                records.push(FileRecord::new(
                    entry.path().display().to_string(),
                    Status::Skipped,
                    Some("a folder of earlier photoshield outputs, not read".into()),
                ));
                walker.skip_current_dir();
            }
            continue;
        }
        if let Some(reason) = passed_over(&entry, out_root.is_some()) {
            // The marker and temporary files are photoshield's own: nothing to report.
            if !is_temporary_file(entry.file_name()) && entry.file_name() != OUTPUT_MARKER {
                records.push(FileRecord::new(
                    entry.path().display().to_string(),
                    Status::Skipped,
                    Some(reason.into()),
                ));
            }
            continue;
        }
        let rel_path = entry.path().strip_prefix(root).unwrap_or(entry.path());
        if rel_path.components().any(|c| !matches!(c, Component::Normal(_))) {
            continue;
        }
        let rel = rel_path
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        jobs.push(Job {
            source: Input::Path(entry.path().to_path_buf()),
            rel,
            target: match out_root {
                Some(out_root) => Target::Mirror(out_root.join(rel_path)),
                None => Target::Stdout,
            },
            walked: true,
        });
    }
}

/// Why a file could not be read or written: the message the user sees, and the I/O error
/// underneath when there is one (kept as the source).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FileError {
    message: String,
    #[source]
    source: Option<io::Error>,
}

impl FileError {
    /// A file photoshield refuses to read (a FIFO, a folder, one too large).
    fn refused(message: impl Into<String>) -> FileError {
        FileError {
            message: message.into(),
            source: None,
        }
    }

    /// An I/O failure, described by `message`, with its error as the source.
    fn io(message: String, source: io::Error) -> FileError {
        FileError {
            message,
            source: Some(source),
        }
    }

    /// An I/O failure told by its short reason alone ([`io_reason`]).
    fn reason(source: io::Error) -> FileError {
        FileError::io(io_reason(&source), source)
    }
}

/// A short reason for an I/O error, without the "(os error N)" noise.
pub fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::NotFound => "no such file or folder".into(),
        io::ErrorKind::StorageFull => "no space left on the device".into(),
        io::ErrorKind::IsADirectory => "is a folder".into(),
        io::ErrorKind::ReadOnlyFilesystem => "read-only file system".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

/// The output path of a target once the output format is known (`None` for stdout).
fn output_path(target: &Target, format: OutputFormat) -> Option<PathBuf> {
    let keeps_ext = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| format.accepts_extension(e))
    };
    match target {
        Target::Mirror(p) if keeps_ext(p) => Some(p.clone()),
        Target::Mirror(p) => Some(p.with_extension(format.extension())),
        Target::Sibling(p) => {
            let stem = p.file_stem().unwrap_or_default().to_string_lossy();
            let ext = match p.extension().and_then(|e| e.to_str()) {
                Some(e) if format.accepts_extension(e) => e.to_string(),
                _ => format.extension().to_string(),
            };
            Some(p.with_file_name(format!("{stem}.protected.{ext}")))
        }
        Target::Exact(p) => Some(p.clone()),
        Target::Stdout => None,
    }
}

/// True when `a` and `b` name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (fs::metadata(a), fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
    }
}

/// Runs a plan. `on_record` sees every file's record as soon as it is known (from worker
/// threads); `cancel` stops the batch before the next file when set (Ctrl-C).
pub fn run(
    plan: Plan,
    pipeline: &Pipeline,
    options: &BatchOptions,
    cancel: &AtomicBool,
    on_record: &(dyn Fn(&FileRecord) + Sync),
) -> Summary {
    let start = Instant::now();
    let summary = Mutex::new(Summary::default());
    let record = |r: FileRecord| {
        summary.lock().unwrap_or_else(|e| e.into_inner()).add(&r);
        on_record(&r);
    };
    for failure in plan.walk_failures {
        record(failure);
    }
    // Two inputs must not write the same output: the first one claims it.
    let claimed = Mutex::new(HashSet::new());
    let folders = OutputFolders::new(plan.new_output_roots);
    let memory = MemoryBudget::new(pipeline.options().max_memory);
    let inputs = &plan.inputs;
    // Once stopped, the files not started yet still get a record: every input has one.
    let work = |job: &Job| {
        if cancel.load(Ordering::Relaxed) {
            record(FileRecord::new(
                display_input(job),
                Status::Skipped,
                Some(NOT_STARTED.into()),
            ));
            return;
        }
        let started = Instant::now();
        let shared = Shared {
            claimed: &claimed,
            inputs,
            folders: &folders,
            memory: &memory,
        };
        // A bug that panics on one file fails that file, not the batch.
        let mut r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            process_job(job, pipeline, options, &shared)
        }))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            FileRecord::new(
                display_input(job),
                Status::Failed,
                Some(format!(
                    "internal error ({what}); please report it with this file"
                )),
            )
        });
        r.ms = started.elapsed().as_secs_f64() * 1e3;
        record(r);
    };
    let threads = if options.jobs == 0 {
        num_cpus()
    } else {
        options.jobs
    };
    match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool.install(|| plan.jobs.par_iter().with_max_len(1).for_each(work)),
        Err(_) => plan.jobs.iter().for_each(work),
    }
    let mut summary = summary.into_inner().unwrap_or_else(|e| e.into_inner());
    summary.seconds = start.elapsed().as_secs_f64();
    summary.interrupted = cancel.load(Ordering::Relaxed);
    summary
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn display_input(job: &Job) -> String {
    match &job.source {
        Input::Stdin => "<stdin>".to_string(),
        Input::Path(p) => p.display().to_string(),
    }
}

/// What the jobs of one run share.
struct Shared<'a> {
    /// Outputs claimed so far.
    claimed: &'a Mutex<HashSet<PathBuf>>,
    /// Every input file: no output may replace one.
    inputs: &'a HashSet<FileId>,
    folders: &'a OutputFolders,
    memory: &'a MemoryBudget,
}

/// The memory that the files protected at once share ([`crate::Options::max_memory`]): a file
/// starts when its estimate fits beside those in flight, or when it is alone (a file over the
/// whole budget is refused by the pipeline itself).
struct MemoryBudget {
    limit: u64,
    used: Mutex<u64>,
    freed: std::sync::Condvar,
}

impl MemoryBudget {
    fn new(limit: u64) -> MemoryBudget {
        MemoryBudget {
            limit,
            used: Mutex::new(0),
            freed: std::sync::Condvar::new(),
        }
    }

    /// Waits until `need` bytes fit, then holds them until the lease is dropped.
    fn lease(&self, need: u64) -> Lease<'_> {
        let need = need.min(self.limit);
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used > 0 && *used + need > self.limit {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += need;
        Lease { budget: self, need }
    }
}

struct Lease<'a> {
    budget: &'a MemoryBudget,
    need: u64,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        *self.budget.used.lock().unwrap_or_else(|e| e.into_inner()) -= self.need;
        self.budget.freed.notify_all();
    }
}

/// Housekeeping of the folders outputs go into, done once per folder at its first write: the
/// marker in an output folder this run creates, and stale temporary files of killed runs.
struct OutputFolders {
    new_roots: Vec<PathBuf>,
    done: Mutex<HashSet<PathBuf>>,
}

/// A temporary file older than this was left by a run that was killed (a write takes seconds).
const STALE_TEMPORARY: std::time::Duration = std::time::Duration::from_secs(3600);

impl OutputFolders {
    fn new(new_roots: Vec<PathBuf>) -> OutputFolders {
        OutputFolders {
            new_roots,
            done: Mutex::new(HashSet::new()),
        }
    }

    /// Called after `path` was written.
    fn written(&self, path: &Path) {
        let Some(dir) = path.parent() else { return };
        if !self
            .done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dir.to_path_buf())
        {
            return;
        }
        remove_stale_temporaries(dir);
        for root in &self.new_roots {
            if path.starts_with(root)
                && self
                    .done
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(root.join(OUTPUT_MARKER))
            {
                // Best effort: without the marker a later run still refuses to overwrite an input.
                let _ = write_atomic(&root.join(OUTPUT_MARKER), OUTPUT_MARKER_TEXT, IfExists::Skip);
            }
        }
    }
}

/// Removes `.photoshield-XXXXXX.tmp` files in `dir` that a killed run left behind.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        if !is_temporary_file(&entry.file_name()) {
            continue;
        }
        let stale = entry
            .metadata()
            .ok()
            .filter(fs::Metadata::is_file)
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMPORARY);
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn process_job(job: &Job, pipeline: &Pipeline, options: &BatchOptions, shared: &Shared) -> FileRecord {
    let input = display_input(job);
    let fail = |reason: String| FileRecord::new(input.clone(), Status::Failed, Some(reason));
    #[cfg(test)]
    if input.ends_with("panics-in-tests.jpg") {
        panic!("a planted bug");
    }

    // Read.
    let bytes = match read_input(&job.source, pipeline.options().max_pixels) {
        Ok(b) => b,
        Err(e) => return fail(e.to_string()),
    };
    let format = match crate::format::sniff(&bytes) {
        Ok(f) => f,
        Err(Error::NotAnImage(_)) | Err(Error::Empty)
            if job.walked && !has_image_extension(Path::new(&input)) =>
        {
            let mut r = FileRecord::new(input, Status::Skipped, Some(NOT_AN_IMAGE.into()));
            r.bytes_in = bytes.len() as u64;
            return r;
        }
        Err(e) => return fail(e.to_string()),
    };

    // Name the output and check it before doing the work.
    let out_format = match options.operation {
        Operation::Protect => pipeline.output_format(format),
        Operation::Strip => OutputFormat::for_input(format),
    };
    let out_path = output_path(&job.target, out_format);
    if let (Target::Exact(out), Some(ext)) = (&job.target, job_extension(&job.target)) {
        // `-o x.png` for a JPEG that `strip` keeps as JPEG (standard input is only known now).
        if has_image_extension(out) && !out_format.accepts_extension(&ext) {
            return fail(format!(
                "the output {} is named .{ext} but the data is {}; name it .{}",
                out.display(),
                out_format.as_format(),
                out_format.extension()
            ));
        }
    }
    if let Some(out) = &out_path {
        // Every output of a plan derives from one mapping, so equal paths are spelled equally.
        if !shared
            .claimed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(out.clone())
        {
            return fail(format!("another input already writes {}", out.display()));
        }
        if fs::symlink_metadata(out).is_ok() {
            if let Input::Path(src) = &job.source {
                if same_file(src, out) {
                    return fail(format!(
                        "output {} would replace the input; choose another -o",
                        out.display()
                    ));
                }
            }
            if FileId::of(out).is_some_and(|id| shared.inputs.contains(&id)) {
                return fail(format!(
                    "output {} is one of the inputs and is never replaced; choose another -o",
                    out.display()
                ));
            }
            if options.if_exists != IfExists::Overwrite {
                return exists_record(input, out, options.if_exists, bytes.len());
            }
        }
    }
    let output = out_path
        .as_ref()
        .map(|p| p.display().to_string())
        .or(Some("<stdout>".into()));
    if options.dry_run {
        let mut r = FileRecord::new(input, Status::WouldWrite, None);
        r.output = output;
        r.bytes_in = bytes.len() as u64;
        return r;
    }

    // Protect, once this file's memory fits beside that of the files in flight (held until its
    // output is written).
    let _memory = match options.operation {
        Operation::Protect => shared
            .memory
            .lease(crate::memory::estimate(&bytes, format, pipeline.options()).unwrap_or(0)),
        Operation::Strip => shared.memory.lease(0),
    };
    let ctx = FileContext { name: &job.rel };
    // A lossless strip is written straight from the input buffer; a protected image is new.
    let result = match options.operation {
        Operation::Protect => pipeline
            .process(&bytes, &ctx)
            .map(|p| (Output::Whole(p.bytes), p.report)),
        Operation::Strip => pipeline
            .strip_spliced(&bytes, &ctx)
            .map(|(s, r)| (Output::Spliced(s), r)),
    };
    // A file in flight when the batch is stopped is finished and written: the work is done.
    let (output_bytes, report) = match result {
        Ok(p) => p,
        Err(e) => return fail(e.to_string()),
    };

    // Write.
    let parts: Vec<&[u8]> = match &output_bytes {
        Output::Whole(v) => vec![v.as_slice()],
        Output::Spliced(s) => s.parts().collect(),
    };
    let written = match &out_path {
        Some(path) => write_atomic_parts(path, &parts, options.if_exists),
        None => write_stdout(&parts).map(|_| true),
    };
    let mut r = match written {
        Ok(true) => {
            if let Some(path) = &out_path {
                shared.folders.written(path);
            }
            FileRecord::new(input, Status::Written, None)
        }
        Ok(false) => {
            // Another process created the output meanwhile.
            return exists_record(
                input,
                out_path.as_deref().unwrap_or(Path::new("")),
                options.if_exists,
                bytes.len(),
            );
        }
        Err(e) => return fail(e.to_string()),
    };
    r.output = output;
    r.bytes_in = bytes.len() as u64;
    r.bytes_out = parts.iter().map(|p| p.len() as u64).sum();
    r.report = Some(report);
    r
}

/// The extension of an exact output path.
fn job_extension(target: &Target) -> Option<String> {
    match target {
        Target::Exact(p) => p.extension().and_then(|e| e.to_str()).map(str::to_string),
        _ => None,
    }
}

/// The bytes of one output.
enum Output<'a> {
    Whole(Vec<u8>),
    Spliced(crate::strip::Spliced<'a>),
}

fn exists_record(input: String, out: &Path, policy: IfExists, bytes_in: usize) -> FileRecord {
    let mut r = if policy == IfExists::Skip {
        FileRecord::new(
            input,
            Status::Skipped,
            Some(format!("output {} exists", out.display())),
        )
    } else {
        FileRecord::new(
            input,
            Status::Failed,
            Some(format!(
                "output {} exists (use --if-exists skip or overwrite)",
                out.display()
            )),
        )
    };
    r.output = Some(out.display().to_string());
    r.bytes_in = bytes_in as u64;
    r.output_exists = true;
    r
}

/// Reads a file whole, as `read_input` does for `protect` under the default pixel limit.
pub fn read_file(path: &Path) -> Result<Vec<u8>, FileError> {
    read_input(
        &Input::Path(path.to_path_buf()),
        crate::Options::default().max_pixels,
    )
}

/// Reads an input whole, refusing files far larger than any image under the pixel limit could be
/// (8 bytes per pixel: the largest input this reads is documented in the README).
fn read_input(source: &Input, max_pixels: u64) -> Result<Vec<u8>, FileError> {
    let cap = max_pixels.saturating_mul(8).max(64 << 20);
    let mut bytes = Vec::new();
    let result = match source {
        Input::Stdin => io::stdin().lock().take(cap + 1).read_to_end(&mut bytes),
        Input::Path(p) => {
            let file = open_regular(p)?;
            let meta = file.metadata().map_err(FileError::reason)?;
            if meta.len() > cap {
                return Err(FileError::refused(format!(
                    "file is {} MB, larger than any image within the pixel limit",
                    meta.len() >> 20
                )));
            }
            bytes.reserve_exact(meta.len() as usize);
            file.take(cap + 1).read_to_end(&mut bytes)
        }
    };
    result.map_err(|e| FileError::io(format!("cannot read: {}", io_reason(&e)), e))?;
    if bytes.len() as u64 > cap {
        return Err(FileError::refused(
            "input is larger than any image within the pixel limit",
        ));
    }
    Ok(bytes)
}

/// Opens `path` for reading if it is a regular file. A FIFO or a device is refused without
/// being read: opening a FIFO would wait for a writer, and `/dev/zero` never ends. The file is
/// opened without blocking and checked again once open, so a swap after the first look cannot
/// make the reader wait either.
pub fn open_regular(path: &Path) -> Result<fs::File, FileError> {
    let meta = fs::metadata(path).map_err(FileError::reason)?;
    let kind = |m: &fs::Metadata| -> Option<FileError> {
        if m.is_file() {
            None
        } else if m.is_dir() {
            Some(FileError::refused("is a folder"))
        } else {
            Some(FileError::refused(
                "not a regular file (a FIFO, device or socket); not read",
            ))
        }
    };
    if let Some(why) = kind(&meta) {
        return Err(why);
    }
    let mut open = fs::OpenOptions::new();
    open.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.custom_flags(libc::O_NONBLOCK);
    }
    let file = open.open(path).map_err(FileError::reason)?;
    let meta = file.metadata().map_err(FileError::reason)?;
    match kind(&meta) {
        Some(why) => Err(why),
        None => Ok(file),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder, then renames it into
/// place, so that no reader ever sees a partial file. Returns `Ok(false)` when the path exists
/// and the policy forbids replacing it (checked atomically).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], policy: IfExists) -> Result<bool, FileError> {
    write_atomic_parts(path, &[bytes], policy)
}

/// [`write_atomic`] of the concatenation of `parts`.
pub(crate) fn write_atomic_parts(path: &Path, parts: &[&[u8]], policy: IfExists) -> Result<bool, FileError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let context = |what: &str, e: io::Error| {
        FileError::io(format!("cannot {what} {}: {}", dir.display(), io_reason(&e)), e)
    };
    let builder = || {
        let mut b = tempfile::Builder::new();
        b.prefix(".photoshield-").suffix(".tmp");
        // Like any new file: 0666 minus the umask, applied by the OS at creation (tempfile's
        // own default is 0600). Elsewhere the OS default applies.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            b.permissions(fs::Permissions::from_mode(0o666));
        }
        b
    };
    // The folder usually exists already: create it only when the first attempt says so.
    let mut tmp = match builder().tempfile_in(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| context("create folder", e))?;
            builder().tempfile_in(dir)
        }
        other => other,
    }
    .map_err(|e| match e.kind() {
        io::ErrorKind::NotADirectory => context("create folder", e),
        _ => context("write into", e),
    })?;
    parts
        .iter()
        .try_for_each(|p| tmp.write_all(p))
        .and_then(|_| tmp.flush())
        .map_err(|e| FileError::io(format!("cannot write {}: {}", path.display(), io_reason(&e)), e))?;
    // On failure the temporary file is removed when `tmp` (or the error holding it) drops.
    let persisted = if policy == IfExists::Overwrite {
        tmp.persist(path).map(|_| true)
    } else {
        match tmp.persist_noclobber(path) {
            Ok(_) => Ok(true),
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    };
    persisted.map_err(|e| {
        FileError::io(
            format!("cannot write {}: {}", path.display(), io_reason(&e.error)),
            e.error,
        )
    })
}

fn write_stdout(parts: &[&[u8]]) -> Result<(), FileError> {
    let mut out = io::stdout().lock();
    parts
        .iter()
        .try_for_each(|p| out.write_all(p))
        .and_then(|_| out.flush())
        .map_err(|e| FileError::io(format!("cannot write to standard output: {}", io_reason(&e)), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_errors_say_why_and_keep_the_io_error() {
        use std::error::Error as _;
        let dir = tempfile::tempdir().unwrap();
        let missing = open_regular(&dir.path().join("missing.jpg")).unwrap_err();
        assert_eq!(missing.to_string(), "no such file or folder");
        let io = missing
            .source()
            .and_then(|s| s.downcast_ref::<io::Error>())
            .unwrap();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        // A refusal is photoshield's own: there is no I/O error under it.
        let folder = open_regular(dir.path()).unwrap_err();
        assert_eq!(folder.to_string(), "is a folder");
        assert!(folder.source().is_none());
        // Writing into a path whose folder is a file.
        let file = dir.path().join("file");
        fs::write(&file, b"x").unwrap();
        let err = write_atomic(&file.join("out.jpg"), b"y", IfExists::Error).unwrap_err();
        assert!(err.to_string().starts_with("cannot create folder "), "{err}");
        assert!(err.source().is_some());
    }

    #[test]
    fn a_panic_fails_its_file_and_the_batch_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let png = |name: &str| {
            let path = dir.path().join(name);
            image::RgbImage::from_pixel(8, 8, image::Rgb([9, 99, 199]))
                .save(&path)
                .unwrap();
            Input::Path(path)
        };
        let inputs = [png("a.png"), png("panics-in-tests.jpg"), png("c.png")];
        let out = dir.path().join("out");
        let plan = plan(&inputs, &Destination::Dir(out.clone())).unwrap();
        let pipeline = Pipeline::new(&crate::Options::default()).unwrap();
        let options = BatchOptions {
            operation: Operation::default(),
            destination: Destination::Dir(out.clone()),
            if_exists: IfExists::default(),
            jobs: 1,
            dry_run: false,
        };
        let records = Mutex::new(Vec::new());
        let summary = run(plan, &pipeline, &options, &AtomicBool::new(false), &|r| {
            records
                .lock()
                .unwrap()
                .push((r.input.clone(), r.status, r.reason.clone()))
        });
        let records = records.into_inner().unwrap();
        assert_eq!(records.len(), 3, "{records:?}");
        let failed: Vec<_> = records.iter().filter(|r| r.1 == Status::Failed).collect();
        assert_eq!(failed.len(), 1, "{records:?}");
        assert!(failed[0].0.ends_with("panics-in-tests.jpg"));
        assert!(failed[0]
            .2
            .as_deref()
            .unwrap()
            .contains("internal error (a planted bug)"));
        assert!(out.join("a.png").exists() && out.join("c.png").exists());
        assert_eq!(summary.failed, 1);
    }

    #[test]
    fn output_names_follow_the_format() {
        let sib = Target::Sibling(PathBuf::from("/a/IMG_1.JPG"));
        assert_eq!(
            output_path(&sib, OutputFormat::Jpeg),
            Some(PathBuf::from("/a/IMG_1.protected.JPG"))
        );
        assert_eq!(
            output_path(&sib, OutputFormat::WebP),
            Some(PathBuf::from("/a/IMG_1.protected.webp"))
        );
        let mirror = Target::Mirror(PathBuf::from("/o/x/scan.tif"));
        assert_eq!(
            output_path(&mirror, OutputFormat::Png),
            Some(PathBuf::from("/o/x/scan.png"))
        );
        assert_eq!(output_path(&Target::Stdout, OutputFormat::Png), None);
    }

    #[test]
    fn resolve_handles_paths_that_do_not_exist_yet() {
        let dir = tempfile::tempdir().unwrap();
        let canon = dir.path().canonicalize().unwrap();
        assert_eq!(resolve(&dir.path().join("new/deeper")), canon.join("new/deeper"));
    }

    #[test]
    fn atomic_write_never_clobbers_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.jpg");
        assert!(write_atomic(&p, b"one", IfExists::Error).unwrap());
        assert!(!write_atomic(&p, b"two", IfExists::Skip).unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert!(write_atomic(&p, b"three", IfExists::Overwrite).unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"three");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![OsString::from("out.jpg")],
            "no temporary file left behind"
        );
    }
}
