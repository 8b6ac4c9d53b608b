//! Decoding AV1 still pictures (the images inside an AVIF file) with rav1d, the memorysafety.org
//! Rust port of dav1d.
//!
//! rav1d's only interface is dav1d's C API, so this module is the one place in photoshield that
//! calls it: a [`Decoder`] owns a context and a [`Picture`] owns a decoded picture, each released
//! on drop, and every row a caller reads is a bounds-derived slice of the picture. The decoder
//! runs on the calling thread (one worker, one frame in flight), because photoshield already
//! runs one file per core, and it is told the pixel limit so that an oversized frame is refused
//! before it is allocated.

use std::ffi::{c_int, c_uint};
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use rav1d::include::dav1d::data::Dav1dData;
use rav1d::include::dav1d::dav1d::{Dav1dContext, Dav1dSettings};
use rav1d::include::dav1d::headers::{
    DAV1D_PIXEL_LAYOUT_I400, DAV1D_PIXEL_LAYOUT_I420, DAV1D_PIXEL_LAYOUT_I422,
};
use rav1d::include::dav1d::picture::Dav1dPicture;
use rav1d::src::lib::{
    dav1d_close, dav1d_data_create, dav1d_data_unref, dav1d_default_settings, dav1d_get_picture, dav1d_open,
    dav1d_picture_unref, dav1d_send_data,
};

/// dav1d's "try again" result: -EAGAIN, 11 on every platform rav1d builds for.
const EAGAIN: c_int = -11;

/// How the chroma planes are sampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Chroma {
    /// Luma only (a monochrome picture, or an alpha plane).
    None,
    /// Half width, half height.
    Half,
    /// Half width, full height.
    HalfWidth,
    /// Full resolution.
    Full,
}

/// An AV1 decoder context.
pub(crate) struct Decoder {
    context: Option<Dav1dContext>,
}

impl Decoder {
    /// Opens a decoder that refuses frames of more than `max_pixels` pixels.
    pub(crate) fn new(max_pixels: u64) -> Result<Decoder, String> {
        let mut settings = MaybeUninit::<Dav1dSettings>::uninit();
        // SAFETY: `settings` is valid to write to; dav1d_default_settings initialises all of it.
        let mut settings = unsafe {
            dav1d_default_settings(NonNull::from(&mut settings).cast());
            settings.assume_init()
        };
        settings.n_threads = 1;
        settings.max_frame_delay = 1;
        // Only the highest-quality layer of the operating point is wanted, as libavif asks.
        settings.all_layers = 0;
        settings.frame_size_limit = c_uint::try_from(max_pixels).unwrap_or(c_uint::MAX).max(1);
        let mut context: Option<Dav1dContext> = None;
        // SAFETY: both pointers come from live references of the right types; dav1d_open reads
        // `settings` and writes `context`.
        let result = unsafe {
            dav1d_open(
                Some(NonNull::from(&mut context)),
                Some(NonNull::from(&mut settings)),
            )
        };
        if result.0 != 0 || context.is_none() {
            return Err(format!("the AV1 decoder could not start (error {})", result.0));
        }
        Ok(Decoder { context })
    }

    /// Decodes one still picture from `data`, the AV1 bitstream of one image item (a sequence
    /// header and one frame, as AVIF stores them).
    pub(crate) fn decode(&mut self, data: &[u8]) -> Result<Picture, String> {
        if data.is_empty() {
            return Err("the AV1 data is empty".into());
        }
        let mut input = Dav1dData::default();
        // SAFETY: `input` is a live Dav1dData; on success dav1d_data_create points `input.data`
        // at a fresh buffer of `data.len()` bytes that `input` owns, and returns that pointer.
        let buffer = unsafe { dav1d_data_create(Some(NonNull::from(&mut input)), data.len()) };
        if buffer.is_null() {
            return Err("out of memory for the AV1 data".into());
        }
        // SAFETY: `buffer` is the start of a fresh allocation of `data.len()` bytes, which
        // cannot overlap `data`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buffer, data.len()) };
        let mut input = Input(input);
        let mut picture = Picture::empty();
        // A still picture comes out after its data is sent; a few rounds of "try again" are the
        // decoder's normal rhythm, an endless one is a corrupt stream.
        for _ in 0..64 {
            if input.0.sz > 0 {
                // SAFETY: the context is open (it closes only in Drop); `input` is a live
                // Dav1dData made by dav1d_data_create, which dav1d_send_data reads and updates.
                let sent = unsafe { dav1d_send_data(self.context, Some(NonNull::from(&mut input.0))) };
                if sent.0 != 0 && sent.0 != EAGAIN {
                    return Err(corrupt(sent.0));
                }
            }
            // SAFETY: the context is open; `picture.0` is a live Dav1dPicture that
            // dav1d_get_picture overwrites (it holds no reference yet: it is empty).
            let got = unsafe { dav1d_get_picture(self.context, Some(NonNull::from(&mut picture.0))) };
            match got.0 {
                0 => return picture.checked(),
                EAGAIN if input.0.sz > 0 => continue,
                EAGAIN => return Err("the AV1 data holds no complete picture (truncated?)".into()),
                e => return Err(corrupt(e)),
            }
        }
        Err("the AV1 decoder produced no picture".into())
    }
}

fn corrupt(code: c_int) -> String {
    format!("the AV1 data is corrupt (decoder error {code})")
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: the context came from dav1d_open and is closed once, here; dav1d_close sets
        // it to None.
        unsafe { dav1d_close(Some(NonNull::from(&mut self.context))) };
    }
}

/// Input data not yet consumed by the decoder: released on drop.
struct Input(Dav1dData);

impl Drop for Input {
    fn drop(&mut self) {
        // SAFETY: `self.0` is a Dav1dData made by dav1d_data_create (or emptied by the
        // decoder); dav1d_data_unref releases what it still owns and resets it.
        unsafe { dav1d_data_unref(Some(NonNull::from(&mut self.0))) };
    }
}

/// A decoded AV1 picture: its planes, sampling, bit depth and colour signalling.
pub(crate) struct Picture(Dav1dPicture);

impl Picture {
    fn empty() -> Picture {
        Picture(Dav1dPicture::default())
    }

    /// Checks what the rows read below rely on: planes present, sizes positive, strides wide
    /// enough for a row of samples.
    fn checked(self) -> Result<Picture, String> {
        let p = &self.0;
        let (w, h) = (p.p.w, p.p.h);
        if w <= 0 || h <= 0 || !matches!(p.p.bpc, 8 | 10 | 12) || p.seq_hdr.is_none() {
            return Err("the AV1 decoder returned an unusable picture".into());
        }
        let planes = if self.chroma() == Chroma::None { 1 } else { 3 };
        for plane in 0..planes {
            let (pw, _) = self.plane_size(plane);
            let row_bytes = pw as isize * self.bytes_per_sample() as isize;
            if self.0.data[plane].is_none() || self.0.stride[plane.min(1)] < row_bytes {
                return Err("the AV1 decoder returned an unusable picture".into());
            }
        }
        Ok(self)
    }

    pub(crate) fn width(&self) -> u32 {
        self.0.p.w as u32
    }

    pub(crate) fn height(&self) -> u32 {
        self.0.p.h as u32
    }

    /// Bits per sample: 8, 10 or 12.
    pub(crate) fn bit_depth(&self) -> u32 {
        self.0.p.bpc as u32
    }

    fn bytes_per_sample(&self) -> usize {
        if self.0.p.bpc > 8 {
            2
        } else {
            1
        }
    }

    pub(crate) fn chroma(&self) -> Chroma {
        match self.0.p.layout {
            DAV1D_PIXEL_LAYOUT_I400 => Chroma::None,
            DAV1D_PIXEL_LAYOUT_I420 => Chroma::Half,
            DAV1D_PIXEL_LAYOUT_I422 => Chroma::HalfWidth,
            _ => Chroma::Full,
        }
    }

    /// The colour signalling of the sequence header: (matrix coefficients, full range).
    pub(crate) fn matrix_and_range(&self) -> (u32, bool) {
        // SAFETY: `checked` made sure the header is present; the picture holds a reference to
        // it for as long as it lives.
        let header = unsafe { self.0.seq_hdr.expect("checked").as_ref() };
        (header.mtrx, header.color_range != 0)
    }

    /// Width and height of plane 0 (luma), 1 or 2 (chroma).
    pub(crate) fn plane_size(&self, plane: usize) -> (u32, u32) {
        let (w, h) = (self.width(), self.height());
        match (plane, self.chroma()) {
            (0, _) | (_, Chroma::Full) => (w, h),
            (_, Chroma::Half) => (w.div_ceil(2), h.div_ceil(2)),
            (_, Chroma::HalfWidth) => (w.div_ceil(2), h),
            (_, Chroma::None) => (0, 0),
        }
    }

    /// Row `y` of `plane` as samples widened to 16 bits (8-bit pictures are read as they are).
    pub(crate) fn row(&self, plane: usize, y: u32, out: &mut Vec<u16>) {
        let (w, h) = self.plane_size(plane);
        assert!(y < h, "row {y} of a plane {h} rows high");
        out.clear();
        let stride = self.0.stride[plane.min(1)];
        let base = self.0.data[plane].expect("checked").cast::<u8>();
        // SAFETY: dav1d allocates each plane as `stride` bytes per row for every row of the
        // plane, `checked` made sure `stride` covers `w` samples, and `y` is a row of the plane;
        // the picture's reference keeps the buffer alive while `self` is borrowed.
        unsafe {
            let start = base.as_ptr().offset(stride * y as isize);
            if self.bytes_per_sample() == 1 {
                let row = std::slice::from_raw_parts(start, w as usize);
                out.extend(row.iter().map(|&v| v as u16));
            } else {
                let row = std::slice::from_raw_parts(start.cast::<u16>(), w as usize);
                out.extend_from_slice(row);
            }
        }
    }
}

impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: `self.0` is either empty or a picture returned by dav1d_get_picture, released
        // once here (dav1d_picture_unref empties it).
        unsafe { dav1d_picture_unref(Some(NonNull::from(&mut self.0))) };
    }
}

/// Runs `work` on a zeroed buffer of `len` bytes, returning the buffer and `work`'s flag.
///
/// rav1d 1.1 panics on some corrupt streams inside functions of its C-style API, which cannot
/// unwind: the panic aborts the whole process, and with it a batch of thousands of photos. So on
/// Unix the work runs in a child process (`fork`) that paints into memory shared with this one;
/// a child that crashes or aborts is one file's one-line error, and the batch goes on; one that
/// runs for more than 300 s is killed. The child writes nothing to the terminal (its stderr is
/// /dev/null, its panic hook silent) and ends with `_exit`.
/// Elsewhere the work runs in place.
pub(crate) fn isolated(
    len: usize,
    work: impl FnOnce(&mut [u8]) -> Result<bool, String>,
) -> Result<(Vec<u8>, bool), String> {
    #[cfg(unix)]
    {
        isolated_unix(len, work)
    }
    #[cfg(not(unix))]
    {
        let mut data = crate::pixels::image_buffer(len);
        let flag = work(&mut data)?;
        Ok((data, flag))
    }
}

#[cfg(unix)]
fn isolated_unix(
    len: usize,
    work: impl FnOnce(&mut [u8]) -> Result<bool, String>,
) -> Result<(Vec<u8>, bool), String> {
    /// The first page of the shared memory: the child's outcome (status byte, message length,
    /// message); the pixels follow.
    const HEADER: usize = 4096;
    /// An anonymous shared mapping, unmapped on drop.
    struct Shared(*mut u8, usize);
    impl Drop for Shared {
        fn drop(&mut self) {
            // SAFETY: the mapping was made by mmap with this address and length, and no slice
            // of it outlives `self`.
            unsafe { libc::munmap(self.0.cast(), self.1) };
        }
    }
    let total = len.checked_add(HEADER).ok_or("the image is too large")?;
    // SAFETY: a fresh anonymous mapping; the result is checked before use.
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            total,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if address == libc::MAP_FAILED {
        return Err("out of memory for the picture".into());
    }
    let shared = Shared(address.cast(), total);
    // SAFETY: fork has no preconditions; the child below only runs the decode on its own copy
    // of this thread (glibc's malloc is made usable in the child by its fork handlers) and ends
    // with _exit, never returning into the caller's stack.
    let pid = unsafe { libc::fork() };
    if pid == -1 {
        return Err("could not start the AV1 decoder (fork failed)".into());
    }
    if pid == 0 {
        // SAFETY: the mapping is `total` bytes, readable and writable, and only this process
        // touches it until the parent has waited for it.
        let memory = unsafe { std::slice::from_raw_parts_mut(shared.0, total) };
        let (header, canvas) = memory.split_at_mut(HEADER);
        // SAFETY: plain system calls on valid arguments (a C string literal, descriptor 2).
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
            if null >= 0 {
                libc::dup2(null, 2);
            }
        }
        // A panic in the child is reported through the header, never printed.
        std::panic::set_hook(Box::new(|_| {}));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(canvas)));
        let (status, message) = match outcome {
            Ok(Ok(flag)) => (1 + flag as u8, String::new()),
            Ok(Err(message)) => (3, message),
            Err(_) => (3, "the AV1 decoder failed on this file".to_string()),
        };
        let message = message.as_bytes();
        let n = message.len().min(HEADER - 3);
        header[1..3].copy_from_slice(&(n as u16).to_le_bytes());
        header[3..3 + n].copy_from_slice(&message[..n]);
        header[0] = status;
        // SAFETY: ends the child at once, without running the parent's destructors or atexit
        // handlers a second time.
        unsafe { libc::_exit(0) };
    }
    // A stream that sends the decoder into an endless loop (or a child stuck on a lock another
    // thread held at the fork) must not hold up the batch: after DEADLINE the child is killed.
    const DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_micros(200);
    let mut wait_status = 0;
    let mut timed_out = false;
    loop {
        // SAFETY: polls our own child; `wait_status` is a valid place to write.
        let waited = unsafe { libc::waitpid(pid, &mut wait_status, libc::WNOHANG) };
        if waited == pid {
            break;
        }
        if waited == -1 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Err("lost the AV1 decoder's process".into());
        }
        if !timed_out && started.elapsed() > DEADLINE {
            // SAFETY: signals our own child, which has not been waited for yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            timed_out = true;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(10));
    }
    if timed_out {
        return Err(format!(
            "the AV1 decoder did not finish within {} s (corrupt AV1 data?)",
            DEADLINE.as_secs()
        ));
    }
    // SAFETY: the child has ended, so nothing else writes the mapping any more.
    let memory = unsafe { std::slice::from_raw_parts(shared.0, total) };
    let (header, canvas) = memory.split_at(HEADER);
    let exited = libc::WIFEXITED(wait_status) && libc::WEXITSTATUS(wait_status) == 0;
    match header[0] {
        1 | 2 if exited => {
            let mut data = crate::pixels::scratch_buffer(len);
            data.copy_from_slice(canvas);
            Ok((data, header[0] == 2))
        }
        3 if exited => {
            let n = u16::from_le_bytes([header[1], header[2]]) as usize;
            Err(String::from_utf8_lossy(&header[3..3 + n.min(HEADER - 3)]).into_owned())
        }
        _ => Err("the AV1 decoder crashed on this file (corrupt AV1 data)".into()),
    }
}
