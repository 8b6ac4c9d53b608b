//! The command line: clap definitions, the config file, and turning both into `Options` and a
//! batch plan. The only module that knows about flags.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use photoshield::batch::{BatchOptions, Destination, IfExists, Input, Operation};
use photoshield::perturb::{NoiseKind, Perturb};
use photoshield::watermark::{NoticeStyle, Position};
use photoshield::{Options, OutputFormat, Preset};

const EXIT_CODES: &str = "\
Exit codes:
  0    every file was written (or skipped as asked)
  1    some files failed; the others were still written
  2    usage or configuration error; nothing was processed
  130  interrupted (Ctrl-C); complete outputs are kept, no partial file remains";

const PROTECT_EXAMPLES: &str = "\
Examples:
  photoshield protect IMG_2041.jpg                   writes IMG_2041.protected.jpg beside it
  photoshield protect ~/Pictures/shoot -o ~/upload   mirrors the folder tree into ~/upload
  photoshield protect shoot --preset instagram       1080 px JPEGs in shoot-protected/
  photoshield protect - < in.jpg > out.jpg           standard input to standard output
  photoshield protect shoot -o out --json | jq .     one JSON record per file, then a summary";

/// `--version`: the version and the notices the licences of what the binary contains ask for
/// (THIRD_PARTY_LICENSES.md lists every crate).
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\nMIT or Apache-2.0. Built from the crates listed in THIRD_PARTY_LICENSES.md.\n",
    "This software is based in part on the work of the Independent JPEG Group (jpeg-encoder).\n",
    "Lossy WebP: libwebp, Copyright Google Inc. (BSD-3-Clause).\n",
    "Watermark font: DejaVu Sans (Bitstream Vera and Arev licence)."
);

#[derive(Debug, Parser)]
#[command(
    name = "photoshield",
    version,
    long_version = LONG_VERSION,
    about = "Protect photos before posting them online."
)]
#[command(after_long_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compare an original with its protected copy: how much the perturbation costs (max
    /// difference, PSNR, SSIM) and how much of it survives a JPEG q75 re-encode and a 2x
    /// downscale.
    Compare(CompareArgs),
    /// Report what identifies a person, a place or a device in each file (exit 1 if anything
    /// does: usable as a gate before an upload).
    #[command(after_long_help = INSPECT_HELP)]
    Inspect(InspectArgs),
    /// Remove the metadata without touching the pixels (JPEG, PNG, WebP: the compressed image
    /// data is copied byte for byte).
    #[command(after_long_help = format!("{STRIP_HELP}\n\n{EXIT_CODES}"))]
    Strip(StripArgs),
    /// Make a secret key for the invisible mark (file mode 0600; never printed).
    #[command(after_long_help = KEYGEN_HELP)]
    Keygen(KeygenArgs),
    /// Read the invisible mark: print each file's owner ID, or 'no mark found' (exit 0 only
    /// when every file carries a verified mark).
    #[command(after_long_help = DETECT_HELP)]
    Detect(DetectArgs),
    /// Write protected copies: upright, without identifying metadata, optionally resized.
    #[command(after_long_help = format!("{PROTECT_EXAMPLES}\n\n{EXIT_CODES}"))]
    Protect(Box<ProtectArgs>),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    #[command(after_long_help = COMPLETIONS_HELP)]
    Completions(CompletionsArgs),
    /// Print the manual page (roff), made from the same definitions as --help.
    #[command(after_long_help = MAN_HELP)]
    Man(ManArgs),
}

const COMPLETIONS_HELP: &str = "\
Examples:
  photoshield completions bash > ~/.local/share/bash-completion/completions/photoshield
  photoshield completions zsh > ~/.zfunc/_photoshield      (with fpath+=~/.zfunc in .zshrc)
  photoshield completions fish > ~/.config/fish/completions/photoshield.fish";

const MAN_HELP: &str = "\
Examples:
  photoshield man > ~/.local/share/man/man1/photoshield.1
  photoshield man protect > ~/.local/share/man/man1/photoshield-protect.1
  photoshield man | man -l -";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// A command's own page (photoshield-COMMAND.1) instead of the main page.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

const INSPECT_HELP: &str = "\
Examples:
  photoshield inspect IMG_2041.jpg          a readable report
  photoshield inspect upload/ --json        one JSON record per file
  photoshield inspect upload/ && upload.sh  upload only when nothing leaks

Exit codes:
  0  no file leaks identifying data (a colour profile, an orientation tag and a rights
     notice are not leaks)
  1  some file leaks, or could not be read
  2  usage error";

const STRIP_HELP: &str = "\
Kept: the compressed image data, the ICC profile (unless --strip-icc), JPEG's Adobe colour
marker, PNG's gamma/chromaticity/sRGB chunks, animation control. When the photo has an EXIF
orientation other than 1, a minimal EXIF block holding only that tag is written, so the photo
does not turn sideways.

Examples:
  photoshield strip IMG_2041.jpg                 writes IMG_2041.protected.jpg beside it
  photoshield strip shoot -o upload --rights \"© {year} Jane Doe\"";

const KEYGEN_HELP: &str = "\
The key is 32 random bytes from the operating system. Keep it secret and backed up: without
it no mark can be read, and anyone holding it can read, and forge, your marks. The printed
fingerprint is safe to share; record it with the date and the IDs you use.

Example:
  photoshield keygen -o ~/.config/photoshield/mark.key";

const DETECT_HELP: &str = "\
A mark is reported only when its pilot score reaches the threshold (7) and its CRC-16 matches;
a copy with a mismatching CRC is reported as 'no mark found', never with a wrong ID. The
detector handles resizing, crops keeping a third of the width or more, JPEG/WebP recompression
and brightness changes; it does not handle rotation, mirroring or aspect changes.

Examples:
  photoshield detect downloaded.jpg --key mark.key
  photoshield detect reposts/ --key mark.key --json

Exit codes:
  0  every file carries a verified mark
  1  some file has no verified mark, or could not be read
  2  usage error, or the key file cannot be read";

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the key (refuses to replace an existing file).
    #[arg(short, long, value_name = "KEYFILE")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Images or folders (searched recursively).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// The key file the marks were made with.
    #[arg(long, value_name = "KEYFILE")]
    pub key: PathBuf,

    /// One JSON record per file on standard output.
    #[arg(long)]
    pub json: bool,
}

/// A key file is one line of text; anything much larger is not a key.
const MAX_KEY_FILE: u64 = 1024;

/// Reads a key file, with the file named in every error. Only a small regular file is read (a
/// FIFO or `/dev/zero` given as the key would block or never end), and a key that other users
/// can read or change gets a warning, as ssh gives for its private keys.
pub fn read_key(path: &Path) -> anyhow::Result<photoshield::mark::Key> {
    use std::io::Read;
    let cannot = |why: String| anyhow::anyhow!("cannot read key file {}: {why}", path.display());
    let file = photoshield::batch::open_regular(path).map_err(|e| cannot(e.to_string()))?;
    let meta = file
        .metadata()
        .map_err(|e| cannot(photoshield::batch::io_reason(&e)))?;
    if meta.len() > MAX_KEY_FILE {
        return Err(cannot(format!(
            "{} bytes, too large for a key file (a key is one line of text)",
            meta.len()
        )));
    }
    warn_if_exposed(path, &meta);
    let mut text = Vec::new();
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut text)
        .map_err(|e| cannot(photoshield::batch::io_reason(&e)))?;
    let text = String::from_utf8(text)
        .map_err(|_| anyhow::anyhow!("{}: not a photoshield key file (not text)", path.display()))?;
    photoshield::mark::Key::parse(&text).map_err(|why| anyhow::anyhow!("{}: {why}", path.display()))
}

/// Warns when a key file can be read or written by other users.
fn warn_if_exposed(path: &Path, meta: &std::fs::Metadata) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            let what = if mode & 0o022 != 0 {
                "can be changed by other users"
            } else {
                "can be read by other users"
            };
            eprintln!(
                "warning: key file {} {what} (mode {:o}); anyone who reads it can find and forge \
                 your marks. Fix with: chmod 600 {}",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    pub original: PathBuf,
    pub protected: PathBuf,
    /// Print the figures as one JSON record.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Files or folders (searched recursively).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// One JSON record per file on standard output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StripArgs {
    #[command(flatten)]
    pub paths: Paths,

    /// Drop the ICC colour profile too.
    #[arg(long)]
    pub strip_icc: bool,

    /// Embed a rights notice (see `protect --help`).
    #[arg(long, value_name = "TEXT")]
    pub rights: Option<String>,

    /// With --rights: the creator's name.
    #[arg(long, value_name = "NAME", requires = "rights")]
    pub creator: Option<String>,

    /// With --rights: a URL with the licence terms.
    #[arg(long, value_name = "URL", requires = "rights")]
    pub rights_url: Option<String>,

    /// When an output exists: error, skip or overwrite.
    #[arg(long, value_enum, default_value = "error")]
    pub if_exists: IfExists,

    /// Files processed at once [default: one per core].
    #[arg(short, long, value_name = "N", allow_negative_numbers = true, value_parser = job_count)]
    pub jobs: Option<usize>,

    #[command(flatten)]
    pub ui: Ui,
}

impl StripArgs {
    pub fn resolve(&self) -> anyhow::Result<ProtectPlan> {
        let inputs = inputs_of(&self.paths.inputs);
        check_inputs_exist(&inputs)?;
        let destination = destination(&self.paths.output, &inputs)?;
        check_not_the_input(&destination, &inputs)?;
        if let (Destination::File(out), [Input::Path(input)]) = (&destination, inputs.as_slice()) {
            strip_keeps_format(input, out)?;
        }
        check_stdout(&destination, self.ui.json, self.ui.dry_run)?;
        let options = Options {
            keep_icc: !self.strip_icc,
            rights: self.rights.as_ref().map(|notice| photoshield::strip::Rights {
                notice: notice.clone(),
                creator: self.creator.clone(),
                web_statement: self.rights_url.clone(),
            }),
            today: source_date(),
            ..Options::default()
        };
        let batch = BatchOptions {
            operation: Operation::Strip,
            destination,
            if_exists: self.if_exists,
            jobs: self.jobs.unwrap_or(0),
            dry_run: self.ui.dry_run,
        };
        Ok(ProtectPlan {
            ui: self.ui,
            options,
            batch,
            inputs,
            warnings: Vec::new(),
        })
    }
}

/// `-j N`: a number of threads, 0 meaning one per core.
fn job_count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<i64>() {
        Ok(n) if (0..=4096).contains(&n) => Ok(n as usize),
        Ok(n) => Err(format!("{n} is not in 0..=4096 (0: one per core)")),
        Err(_) => Err(format!("'{text}' is not a whole number")),
    }
}

/// Inputs that do not exist are the first thing to report: nothing else about the run matters
/// until they are found.
fn check_inputs_exist(inputs: &[Input]) -> anyhow::Result<()> {
    for input in inputs {
        if let Input::Path(p) = input {
            if std::fs::symlink_metadata(p).is_err() {
                bail!("{}: no such file or folder", p.display());
            }
        }
    }
    Ok(())
}

/// `-o FILE` naming the input itself would replace the original: a usage error, found before
/// anything is read.
fn check_not_the_input(destination: &Destination, inputs: &[Input]) -> anyhow::Result<()> {
    if let (Destination::File(out), [Input::Path(input)]) = (destination, inputs) {
        if let (Ok(a), Ok(b)) = (out.canonicalize(), input.canonicalize()) {
            if a == b {
                bail!(
                    "{}: -o names the input itself; the original would be replaced (choose another output)",
                    out.display()
                );
            }
        }
    }
    Ok(())
}

/// The lower-case extension of `path`, if any.
fn extension_of(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
}

/// The command line's inputs, `-` meaning standard input.
fn inputs_of(paths: &[PathBuf]) -> Vec<Input> {
    paths
        .iter()
        .map(|p| {
            if p.as_os_str() == "-" {
                Input::Stdin
            } else {
                Input::Path(p.clone())
            }
        })
        .collect()
}

/// `strip -o FILE` copies the compressed image as it is: the file's extension must be the
/// input's format (a JPEG in `x.png` would be a lie that some programs refuse to open).
fn strip_keeps_format(input: &Path, out: &Path) -> anyhow::Result<()> {
    use std::io::Read;
    let Some(ext) = extension_of(out) else {
        return Ok(());
    };
    let mut head = Vec::new();
    let read = std::fs::File::open(input).and_then(|f| f.take(64).read_to_end(&mut head));
    let Ok(format) = read
        .map_err(drop)
        .and_then(|_| photoshield::format::sniff(&head).map_err(drop))
    else {
        // Unreadable or not an image: the batch reports it with its reason.
        return Ok(());
    };
    let kept = OutputFormat::for_input(format);
    if photoshield::batch::has_image_extension(out) && !kept.accepts_extension(&ext) {
        bail!(
            "{}: strip keeps the input's {format} data, which a .{ext} name would misdescribe; name the output .{} (protect --format converts)",
            out.display(),
            kept.extension()
        );
    }
    Ok(())
}

/// Image data must not go to a terminal, nor share standard output with JSON records.
fn check_stdout(destination: &Destination, json: bool, dry_run: bool) -> anyhow::Result<()> {
    if *destination == Destination::Stdout {
        use std::io::IsTerminal;
        if json {
            bail!("--json prints records on standard output; write the image with -o FILE");
        }
        if std::io::stdout().is_terminal() && !dry_run {
            bail!("refusing to write image data to a terminal; redirect standard output or use -o FILE");
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct ProtectArgs {
    #[command(flatten)]
    pub paths: Paths,

    /// Read settings from this TOML file instead of the default
    /// ($XDG_CONFIG_HOME/photoshield/config.toml or ~/.config/photoshield/config.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Ignore the default config file.
    #[arg(long, conflicts_with = "config")]
    pub no_config: bool,

    #[command(flatten)]
    pub settings: Settings,

    #[command(flatten)]
    pub ui: Ui,
}

/// Defines a layer of settings, every one optional, and its merge: `a.overridden_by(b)` is `a`
/// with every setting that `b` gives replaced by `b`'s. The flags, the config file and their
/// merge come from this one list of fields.
macro_rules! layered_settings {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$field_meta:meta])* pub $field:ident: Option<$ty:ty>,)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($(#[$field_meta])* pub $field: Option<$ty>,)*
        }

        impl $name {
            /// `self` with every setting that `over` gives replaced by it.
            fn overridden_by(self, over: $name) -> $name {
                $name {
                    $($field: over.$field.or(self.$field),)*
                }
            }
        }
    };
}

layered_settings! {
/// Settings that the config file may hold too; a flag overrides the file.
#[derive(Debug, Default, Clone, Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Platform preset: instagram (1080 px wide, 4:5 to 1.91:1, JPEG), facebook (2048 px JPEG),
    /// x (4096 px JPEG), web (2048 px WebP q85); a notice band counts inside the size.
    /// Explicit settings override it.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,

    /// Output format [default: the input's; TIFF and GIF become PNG].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<FormatArg>,

    /// JPEG and WebP quality, 1-100 [default: 90].
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: Option<u8>,

    /// Shrink so the long edge is at most PX pixels (never enlarges).
    #[arg(long, value_name = "PX", allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_size: Option<u32>,

    /// Drop the ICC colour profile too (kept by default: colours would shift without it).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub strip_icc: Option<bool>,

    /// Refuse images larger than this many megapixels [default: 250].
    #[arg(long, value_name = "MP", allow_negative_numbers = true)]
    pub max_megapixels: Option<f64>,

    /// Most memory one file may take, e.g. 4G or 800M; files that would need more are refused
    /// before they are decoded, and files protected at once share it [default: three quarters
    /// of the machine's memory].
    #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
    #[serde(default, deserialize_with = "memory_from_toml")]
    pub max_memory: Option<u64>,

    /// When an output exists: error (report it, keep it), skip, or overwrite [default: error].
    #[arg(long, value_enum)]
    pub if_exists: Option<IfExists>,

    /// Files processed at once [default: one per core].
    #[arg(short, long, value_name = "N", allow_negative_numbers = true, value_parser = job_count)]
    pub jobs: Option<usize>,

    /// Watermark text; tokens {year}, {date} (capture date, else today), {filename}; \n for
    /// a new line. Example: "© {year} Jane Doe".
    #[arg(long, help_heading = "Watermark")]
    pub text: Option<String>,

    /// Font file for the text (TrueType/OpenType) [default: bundled DejaVu Sans Bold].
    #[arg(long, value_name = "FILE", help_heading = "Watermark")]
    pub font: Option<PathBuf>,

    /// Text height, percent of the shorter side [default: 4].
    #[arg(
        long,
        value_name = "PERCENT",
        allow_negative_numbers = true,
        help_heading = "Watermark"
    )]
    pub size: Option<f32>,

    /// Where the text goes: a corner, an edge, center, or tile (repeated diagonally)
    /// [default: bottom-right].
    #[arg(long, value_enum, help_heading = "Watermark")]
    pub position: Option<Position>,

    /// Distance from the edges, percent of the shorter side [default: 3].
    #[arg(
        long,
        value_name = "PERCENT",
        allow_negative_numbers = true,
        help_heading = "Watermark"
    )]
    pub margin: Option<f32>,

    /// Tile angle in degrees, counter-clockwise [default: 30].
    #[arg(
        long,
        value_name = "DEGREES",
        allow_negative_numbers = true,
        help_heading = "Watermark"
    )]
    pub angle: Option<f32>,

    /// Tile gap between repeats, in text heights [default: 2].
    #[arg(
        long,
        value_name = "HEIGHTS",
        allow_negative_numbers = true,
        help_heading = "Watermark"
    )]
    pub spacing: Option<f32>,

    /// Opacity of text, logo and overlay notice, 0 to 1 [default: 0.6].
    #[arg(long, allow_negative_numbers = true, help_heading = "Watermark")]
    pub opacity: Option<f32>,

    /// Text colour: auto (light or dark from the background), white, black or #rrggbb
    /// [default: auto].
    #[arg(long, value_name = "COLOUR", help_heading = "Watermark")]
    pub color: Option<String>,

    /// Draw a contrasting outline around the text [default: true].
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", help_heading = "Watermark")]
    pub outline: Option<bool>,

    /// Draw a soft shadow under the text [default: true].
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", help_heading = "Watermark")]
    pub shadow: Option<bool>,

    /// Logo image (PNG with transparency).
    #[arg(long, value_name = "FILE", help_heading = "Watermark")]
    pub logo: Option<PathBuf>,

    /// Logo width, percent of the shorter side [default: 15].
    #[arg(
        long,
        value_name = "PERCENT",
        allow_negative_numbers = true,
        help_heading = "Watermark"
    )]
    pub logo_size: Option<f32>,

    /// Where the logo goes [default: bottom-left].
    #[arg(long, value_enum, help_heading = "Watermark")]
    pub logo_position: Option<Position>,

    /// A visible notice line, e.g. "Not licensed for AI training".
    #[arg(long, help_heading = "Watermark")]
    pub notice: Option<String>,

    /// band: a dark band added under the photo; overlay: over its bottom edge [default: band].
    #[arg(long, value_enum, help_heading = "Watermark")]
    pub notice_style: Option<NoticeStyle>,

    /// Experimental adversarial perturbation: low (±4 levels), medium (±8), high (±12) or a
    /// number of levels 1-16. Measured to disturb off-the-shelf image classifiers; not shown to
    /// stop face recognition; removable by denoising or upscaling. See the README's figures.
    #[arg(long, value_name = "LEVEL", allow_negative_numbers = true, value_parser = photoshield::perturb::parse_level, help_heading = "Perturbation")]
    #[serde(default, deserialize_with = "level_from_toml")]
    pub perturb: Option<u8>,

    /// Noise field: perlin (structured; default), gabor, or uniform (the random baseline).
    #[arg(long, value_enum, help_heading = "Perturbation")]
    pub perturb_kind: Option<NoiseKind>,

    /// Without the perceptual mask: full strength everywhere, also in skies and shadows.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", help_heading = "Perturbation")]
    pub no_mask: Option<bool>,

    /// Seed of the perturbation; each file's seed mixes in its path relative to the input
    /// folder, so outputs are reproducible whatever --jobs [default: 0].
    #[arg(long, allow_negative_numbers = true, help_heading = "Perturbation")]
    pub seed: Option<u64>,

    /// Embed a rights notice: this copyright text (EXIF Copyright, XMP dc:rights), marked
    /// copyrighted, with the IPTC Data Mining property set to "prohibited for AI/ML training".
    /// Tokens as for --text.
    #[arg(long, value_name = "TEXT", help_heading = "Rights notice")]
    pub rights: Option<String>,

    /// With --rights: the creator's name (XMP dc:creator).
    #[arg(long, value_name = "NAME", help_heading = "Rights notice")]
    pub creator: Option<String>,

    /// With --rights: a URL with the licence terms (XMP xmpRights:WebStatement).
    #[arg(long, value_name = "URL", help_heading = "Rights notice")]
    pub rights_url: Option<String>,

    /// Embed an invisible ownership mark carrying this ID: a number, or hex with 0x (32 bits
    /// unless --mark-bits 64). Needs --key. Read it back with `photoshield detect`.
    #[arg(
        long,
        value_name = "ID",
        allow_negative_numbers = true,
        help_heading = "Invisible mark"
    )]
    #[serde(default, deserialize_with = "id_from_toml")]
    pub mark: Option<String>,

    /// The key file for --mark (make one with `photoshield keygen`).
    #[arg(long, value_name = "KEYFILE", help_heading = "Invisible mark")]
    pub key: Option<PathBuf>,

    /// Size of the mark's ID: 32 or 64 bits [default: 32].
    #[arg(long, value_name = "BITS", value_parser = ["32", "64"], help_heading = "Invisible mark")]
    #[serde(default, deserialize_with = "bits_from_toml")]
    pub mark_bits: Option<String>,

    /// Fail a file that cannot carry the mark at full strength (too small: under 512 px wide;
    /// too flat) instead of writing it with a note.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", help_heading = "Invisible mark")]
    pub require_mark: Option<bool>,

    /// Draw no text, logo or notice, whatever the config file or preset says.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", help_heading = "Watermark")]
    pub no_watermark: Option<bool>,
}
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatArg {
    #[value(alias = "jpg")]
    #[serde(alias = "jpg")]
    Jpeg,
    Png,
    Webp,
}

impl FormatArg {
    fn format(self) -> OutputFormat {
        match self {
            FormatArg::Jpeg => OutputFormat::Jpeg,
            FormatArg::Png => OutputFormat::Png,
            FormatArg::Webp => OutputFormat::WebP,
        }
    }
}

impl Settings {
    /// Applies a layer of settings: its preset first, then its explicit values.
    fn apply(&self, options: &mut Options) -> anyhow::Result<()> {
        if let Some(preset) = self.preset {
            preset.apply(options);
        }
        if let Some(f) = self.format {
            options.format = Some(f.format());
        }
        if let Some(q) = self.quality {
            if !(1..=100).contains(&q) {
                bail!("quality must be 1 to 100, not {q}");
            }
            options.quality = q;
        }
        if let Some(px) = self.max_size {
            options.max_size = Some(px);
        }
        if let Some(strip) = self.strip_icc {
            options.keep_icc = !strip;
        }
        if let Some(mp) = self.max_megapixels {
            if !(mp > 0.0 && mp.is_finite()) {
                bail!("max-megapixels must be a positive number, not {mp}");
            }
            options.max_pixels = (mp * 1e6) as u64;
        }
        if let Some(bytes) = self.max_memory {
            options.max_memory = bytes;
        }
        let wm = &mut options.watermark;
        if let Some(t) = &self.text {
            wm.text = Some(t.clone());
        }
        if let Some(path) = &self.font {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read font {}", path.display()))?;
            wm.font = Some(Arc::new(bytes));
        }
        if let Some(path) = &self.logo {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read logo {}", path.display()))?;
            wm.logo = Some(Arc::new(bytes));
        }
        if let Some(c) = &self.color {
            wm.colour = c.parse().map_err(anyhow::Error::msg)?;
        }
        set(&mut wm.size, self.size);
        set(&mut wm.position, self.position);
        set(&mut wm.margin, self.margin);
        set(&mut wm.angle, self.angle);
        set(&mut wm.spacing, self.spacing);
        set(&mut wm.opacity, self.opacity);
        set(&mut wm.outline, self.outline);
        set(&mut wm.shadow, self.shadow);
        set(&mut wm.logo_size, self.logo_size);
        set(&mut wm.logo_position, self.logo_position);
        set(&mut wm.notice_style, self.notice_style);
        if let Some(n) = &self.notice {
            wm.notice = Some(n.clone());
        }
        if let Some(eps) = self.perturb {
            options.perturb = Some(Perturb::new(eps));
        }
        if let Some(p) = &mut options.perturb {
            set(&mut p.kind, self.perturb_kind);
            set(&mut p.seed, self.seed);
            if let Some(no) = self.no_mask {
                p.mask = !no;
            }
        }
        if let Some(notice) = &self.rights {
            options.rights = Some(photoshield::strip::Rights {
                notice: notice.clone(),
                creator: self.creator.clone(),
                web_statement: self.rights_url.clone(),
            });
        } else if self.creator.is_some() || self.rights_url.is_some() {
            bail!("--creator and --rights-url go with --rights");
        }
        let wm = &mut options.watermark;
        if self.no_watermark == Some(true) {
            wm.text = None;
            wm.logo = None;
            wm.notice = None;
        }
        Ok(())
    }

    /// The mark to embed, from the merged settings: the ID, its size and the key file.
    fn mark(&self) -> anyhow::Result<Option<photoshield::mark::Mark>> {
        let (id, key) = match (&self.mark, &self.key) {
            (None, None) => return Ok(None),
            (Some(_), None) => {
                bail!("--mark needs --key KEYFILE (make one with `photoshield keygen -o KEYFILE`)")
            }
            (None, Some(_)) => bail!("--key goes with --mark ID"),
            (Some(id), Some(key)) => (id, key),
        };
        let bits = self.mark_bits.as_deref().unwrap_or("32").parse().unwrap_or(32);
        let id =
            photoshield::mark::MarkId::parse(id, bits).map_err(|why| anyhow::anyhow!("--mark: {why}"))?;
        Ok(Some(photoshield::mark::Mark {
            key: read_key(key)?,
            id,
            required: self.require_mark.unwrap_or(false),
        }))
    }

    /// Watermark flags of this layer that draw nothing with the resolved watermark `wm` (an
    /// `--opacity` without `--text`, `--logo` or `--notice`), one warning per missing element.
    /// Their values are still checked: a wrong one is an error either way.
    fn without_effect(&self, wm: &photoshield::watermark::Watermark) -> Vec<String> {
        if self.no_watermark == Some(true) {
            return Vec::new();
        }
        let (text, logo, notice) = (wm.text.is_some(), wm.logo.is_some(), wm.notice.is_some());
        let groups = [
            (
                "--text",
                text,
                vec![
                    ("--position", self.position.is_some()),
                    ("--angle", self.angle.is_some()),
                    ("--spacing", self.spacing.is_some()),
                ],
            ),
            (
                "--text or --notice",
                text || notice,
                vec![
                    ("--font", self.font.is_some()),
                    ("--size", self.size.is_some()),
                    ("--color", self.color.is_some()),
                    ("--outline", self.outline.is_some()),
                    ("--shadow", self.shadow.is_some()),
                ],
            ),
            (
                "--text, --logo or --notice",
                text || logo || notice,
                vec![
                    ("--opacity", self.opacity.is_some()),
                    ("--margin", self.margin.is_some()),
                ],
            ),
            (
                "--logo",
                logo,
                vec![
                    ("--logo-size", self.logo_size.is_some()),
                    ("--logo-position", self.logo_position.is_some()),
                ],
            ),
            (
                "--notice",
                notice,
                vec![("--notice-style", self.notice_style.is_some())],
            ),
        ];
        groups
            .into_iter()
            .filter(|(_, drawn, _)| !drawn)
            .filter_map(|(needs, _, flags)| {
                let given: Vec<&str> = flags.into_iter().filter(|f| f.1).map(|f| f.0).collect();
                match given.as_slice() {
                    [] => None,
                    [one] => Some(format!("{one} has no effect without {needs}")),
                    more => Some(format!("{} have no effect without {needs}", more.join(", "))),
                }
            })
            .collect()
    }

    /// Makes the file paths of a config file relative to the file's folder.
    fn relative_to(mut self, dir: &Path) -> Settings {
        for path in [&mut self.font, &mut self.logo, &mut self.key]
            .into_iter()
            .flatten()
        {
            if path.is_relative() {
                *path = dir.join(&*path);
            }
        }
        self
    }
}

/// `SOURCE_DATE_EPOCH`, when set, stands for "today" in `{year}` and `{date}` (reproducible
/// builds of a photo set).
fn source_date() -> Option<(i32, u32, u32)> {
    let secs: i64 = std::env::var("SOURCE_DATE_EPOCH").ok()?.trim().parse().ok()?;
    Some(photoshield::watermark::civil_from_days(secs.div_euclid(86_400)))
}

/// Where the default config file lives.
fn default_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("photoshield").join("config.toml"))
}

fn load_config(path: &Path) -> anyhow::Result<Settings> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let settings: Settings =
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))?;
    Ok(settings.relative_to(path.parent().unwrap_or(Path::new("."))))
}

/// `mark = 1234` or `mark = "0x4d2"` in the config file.
fn id_from_toml<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(u64),
    }
    Ok(Some(match Id::deserialize(d)? {
        Id::Text(s) => s,
        Id::Number(n) => n.to_string(),
    }))
}

/// `mark-bits = 64` in the config file.
fn bits_from_toml<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match u8::deserialize(d)? {
        b @ (32 | 64) => Ok(Some(b.to_string())),
        b => Err(serde::de::Error::custom(format!(
            "mark-bits is 32 or 64, not {b}"
        ))),
    }
}

/// `perturb = "medium"` or `perturb = 6` in the config file.
/// A size in bytes: a number with an optional unit K, M, G or T (powers of 1024, an optional
/// trailing B or iB); a bare number is megabytes.
fn parse_memory(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_uppercase();
    let t = t.strip_suffix("IB").or_else(|| t.strip_suffix('B')).unwrap_or(&t);
    let (number, shift) = match t.char_indices().last() {
        Some((i, 'K')) => (&t[..i], 10),
        Some((i, 'M')) => (&t[..i], 20),
        Some((i, 'G')) => (&t[..i], 30),
        Some((i, 'T')) => (&t[..i], 40),
        _ => (t, 20),
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n > 0.0 && (n * (1u64 << shift) as f64) < u64::MAX as f64 => {
            Ok((n * (1u64 << shift) as f64) as u64)
        }
        _ => Err(format!("{text:?} is not a memory size (such as 4G or 800M)")),
    }
}

fn memory_from_toml<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Text(String),
        Megabytes(f64),
    }
    let text = match Size::deserialize(d)? {
        Size::Text(s) => s,
        Size::Megabytes(n) => n.to_string(),
    };
    parse_memory(&text).map(Some).map_err(serde::de::Error::custom)
}

fn level_from_toml<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Level {
        Name(String),
        Number(u8),
    }
    let text = match Level::deserialize(d)? {
        Level::Name(s) => s,
        Level::Number(n) => n.to_string(),
    };
    photoshield::perturb::parse_level(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// What `protect` and `strip` read, and where they write.
#[derive(Debug, Args)]
pub struct Paths {
    /// Photos or folders (searched recursively); '-' reads standard input.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// Output folder (mirrors the input tree), or output file for a single input; '-' for
    /// standard output. Without -o: NAME.protected.EXT beside a file, FOLDER-protected/ beside
    /// a folder.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// How a batch talks to the user (`protect` and `strip`).
#[derive(Debug, Clone, Copy, Args)]
pub struct Ui {
    /// Print one JSON record per file and a summary record on standard output.
    #[arg(long)]
    pub json: bool,

    /// List what would be written; write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print only errors.
    #[arg(short, long)]
    pub quiet: bool,

    /// Also print skipped files.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Everything `main` needs to run `protect` or `strip`.
pub struct ProtectPlan {
    pub ui: Ui,
    pub options: Options,
    pub batch: BatchOptions,
    pub inputs: Vec<Input>,
    /// Settings that were accepted but will change nothing, told before the run.
    pub warnings: Vec<String>,
}

impl ProtectArgs {
    /// Merges defaults, config file and flags (each layer's preset, then its explicit values)
    /// and decides where outputs go.
    pub fn resolve(&self) -> anyhow::Result<ProtectPlan> {
        let inputs = inputs_of(&self.paths.inputs);
        check_inputs_exist(&inputs)?;
        let config = match (&self.config, self.no_config) {
            (Some(path), _) => load_config(path)?,
            (None, false) => match default_config_path().filter(|p| p.is_file()) {
                Some(path) => load_config(&path)?,
                None => Settings::default(),
            },
            (None, true) => Settings::default(),
        };
        let mut options = Options {
            today: source_date(),
            ..Options::default()
        };
        config.apply(&mut options)?;
        self.settings.clone().apply(&mut options)?;
        let merged = config.overridden_by(self.settings.clone());
        options.mark = merged.mark()?;

        let destination = destination(&self.paths.output, &inputs)?;
        check_not_the_input(&destination, &inputs)?;
        if let Destination::File(path) = &destination {
            options.format = file_format(path, self.settings.format, options.format)?;
        }
        check_stdout(&destination, self.ui.json, self.ui.dry_run)?;
        let warnings = self.settings.without_effect(&options.watermark);
        let batch = BatchOptions {
            operation: Operation::Protect,
            destination,
            if_exists: merged.if_exists.unwrap_or_default(),
            jobs: merged.jobs.unwrap_or(0),
            dry_run: self.ui.dry_run,
        };
        Ok(ProtectPlan {
            ui: self.ui,
            options,
            batch,
            inputs,
            warnings,
        })
    }
}

/// The format written to an explicit output file `path`. Its extension decides, over a
/// preset's or the config file's format; a `--format` on the command line that contradicts it
/// is refused (JPEG bytes in `x.webp` mislead every program that trusts the name). A name
/// without an image extension takes the format asked for, if any.
fn file_format(
    path: &Path,
    flag: Option<FormatArg>,
    default: Option<OutputFormat>,
) -> anyhow::Result<Option<OutputFormat>> {
    let ext = extension_of(path);
    let named = ext.as_deref().and_then(OutputFormat::from_extension);
    let image_ext = photoshield::batch::has_image_extension(path);
    match (flag.map(FormatArg::format), named) {
        (Some(asked), Some(named)) if asked != named => bail!(
            "{}: the extension says {} but --format says {}; name the file .{} or drop --format",
            path.display(),
            named.as_format(),
            asked.as_format(),
            asked.extension()
        ),
        (_, Some(named)) => Ok(Some(named)),
        (Some(asked), None) if !image_ext => Ok(Some(asked)),
        (None, None) if default.is_some() && !image_ext => Ok(default),
        (_, None) => bail!(
            "{}: cannot tell the output format from the extension; photoshield writes .jpg, .png or .webp{}",
            path.display(),
            if image_ext { "" } else { " (or give --format)" }
        ),
    }
}

/// Where outputs go, from `-o` and the inputs.
fn destination(output: &Option<PathBuf>, inputs: &[Input]) -> anyhow::Result<Destination> {
    let Some(out) = output else {
        return Ok(match inputs {
            [Input::Stdin] => Destination::Stdout,
            _ => Destination::Beside,
        });
    };
    if out.as_os_str() == "-" {
        if inputs.len() != 1 || matches!(&inputs[0], Input::Path(p) if p.is_dir()) {
            bail!("-o - (standard output) takes exactly one input file");
        }
        return Ok(Destination::Stdout);
    }
    let says_dir = out
        .as_os_str()
        .to_string_lossy()
        .ends_with(std::path::MAIN_SEPARATOR);
    let single_file = match inputs {
        [Input::Stdin] => true,
        [Input::Path(p)] => !p.is_dir(),
        _ => false,
    };
    if out.is_dir() || says_dir || !single_file {
        if out.exists() && !out.is_dir() {
            bail!("{}: exists and is not a folder", out.display());
        }
        if matches!(inputs, [Input::Stdin]) {
            bail!("standard input needs -o FILE, not a folder");
        }
        Ok(Destination::Dir(out.clone()))
    } else {
        Ok(Destination::File(out.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml_text: &str) -> Settings {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn memory_sizes_read_with_units_and_bare_numbers_are_megabytes() {
        assert_eq!(parse_memory("4G"), Ok(4 << 30));
        assert_eq!(parse_memory("4GiB"), Ok(4 << 30));
        assert_eq!(parse_memory("800mb"), Ok(800 << 20));
        assert_eq!(parse_memory("512"), Ok(512 << 20));
        assert_eq!(parse_memory("1.5K"), Ok(1536));
        for bad in ["", "0", "-1G", "lots", "4X", "1e30T"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
        assert_eq!(settings("max-memory = '2G'").max_memory, Some(2 << 30));
        assert_eq!(settings("max-memory = 300").max_memory, Some(300 << 20));
    }

    #[test]
    fn flags_override_the_config_file_and_presets_come_first_in_each_layer() {
        let config = settings("preset = 'facebook'\nquality = 80\nstrip-icc = true");
        let flags = Settings {
            max_size: Some(500),
            ..Settings::default()
        };
        let mut o = Options::default();
        config.apply(&mut o).unwrap();
        flags.apply(&mut o).unwrap();
        assert_eq!(o.max_size, Some(500));
        assert_eq!(o.quality, 80);
        assert_eq!(o.format, Some(OutputFormat::Jpeg));
        assert!(!o.keep_icc);
    }

    #[test]
    fn the_config_file_can_hold_the_mark_and_its_key_relative_to_itself() {
        let s =
            settings("mark = 1234\nmark-bits = 64\nkey = 'keys/mark.key'").relative_to(Path::new("/etc/ps"));
        assert_eq!(s.mark.as_deref(), Some("1234"));
        assert_eq!(s.mark_bits.as_deref(), Some("64"));
        assert_eq!(s.key.as_deref(), Some(Path::new("/etc/ps/keys/mark.key")));
        assert!(toml::from_str::<Settings>("mark-bits = 48").is_err());
        assert_eq!(settings("mark = '0xff'").mark.as_deref(), Some("0xff"));
    }

    #[test]
    fn unknown_config_keys_are_refused() {
        assert!(toml::from_str::<Settings>("qualty = 80").is_err());
    }
}
