//! The in-memory image every stage works on: 8-bit RGB or RGBA, rows packed without padding.
//! Stages take `&mut Pixels` or produce a new one; they never see containers or metadata.

/// Channel layout of a [`Pixels`] buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Three bytes per pixel: red, green, blue.
    Rgb8,
    /// Four bytes per pixel: red, green, blue, alpha (straight, not premultiplied).
    Rgba8,
}

impl Layout {
    /// Bytes per pixel: 3 or 4.
    pub const fn channels(self) -> usize {
        match self {
            Layout::Rgb8 => 3,
            Layout::Rgba8 => 4,
        }
    }
}

/// Whole-image buffers each thread keeps for the next image (decode and orient need two).
const SPARE_BUFFERS: usize = 2;

/// Buffers below this size are not worth keeping.
const SPARE_MIN_BYTES: usize = 1 << 20;

thread_local! {
    /// Image buffers this thread has finished with. A batch worker decodes, orients and encodes
    /// one photo after another: reusing the same two buffers saves zeroing fresh pages (the
    /// kernel's page clearing was 6% of a batch run) and keeps every page already mapped.
    static SPARE: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Gives a whole-image buffer back for the next [`image_buffer`] or [`scratch_buffer`] call on
/// this thread. At most two are kept per thread; the rest are freed.
pub(crate) fn recycle(buffer: Vec<u8>) {
    if buffer.capacity() < SPARE_MIN_BYTES {
        return;
    }
    SPARE.with_borrow_mut(|spare| {
        if spare.len() < SPARE_BUFFERS {
            spare.push(buffer);
        }
    });
}

/// Frees this thread's spare buffers (the web page's worker, which does one photo at a time
/// and may sit idle for long, lets them go after each).
pub fn release_spares() {
    SPARE.with_borrow_mut(Vec::clear);
}

/// The smallest spare buffer of this thread that holds `len` bytes, if any.
fn take_spare(len: usize) -> Option<Vec<u8>> {
    SPARE.with_borrow_mut(|spare| {
        let best = (0..spare.len())
            .filter(|&i| spare[i].capacity() >= len)
            .min_by_key(|&i| spare[i].capacity())?;
        Some(spare.swap_remove(best))
    })
}

/// A buffer of `len` bytes for a whole image, every byte zero.
pub(crate) fn image_buffer(len: usize) -> Vec<u8> {
    match take_spare(len) {
        Some(mut v) => {
            v.clear();
            v.resize(len, 0);
            v
        }
        None => fresh_buffer(len),
    }
}

/// A buffer of `len` bytes for a whole image whose caller writes every byte before reading
/// any: a spare buffer keeps whatever the last image left in it (no time spent zeroing).
pub(crate) fn scratch_buffer(len: usize) -> Vec<u8> {
    match take_spare(len) {
        Some(mut v) => {
            v.truncate(len);
            v.resize(len, 0);
            v
        }
        None => fresh_buffer(len),
    }
}

/// A new zeroed buffer of `len` bytes. On Linux the kernel is asked to back it with 2 MiB
/// pages before it is first touched: a 12-megapixel image then costs 18 page faults instead of
/// 9000 (about 20 ms of a one-photo run). Elsewhere, or if the kernel declines, it is an
/// ordinary zeroed vector.
fn fresh_buffer(len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = Vec::with_capacity(len);
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = (v.as_ptr() as usize).next_multiple_of(HUGE);
        let end = (v.as_ptr() as usize + len) & !(HUGE - 1);
        if end > start {
            // SAFETY: the range lies inside the allocation just made; the advice only changes
            // how the kernel backs those pages, never their contents or validity.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    v.resize(len, 0);
    v
}

/// A decoded image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pixels {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Channels per pixel.
    pub layout: Layout,
    /// The samples, row after row from the top, `width * channels` bytes per row.
    pub data: Vec<u8>,
}

impl Pixels {
    /// Wraps `data`; panics if its length does not match the dimensions (a programming error).
    pub fn new(width: u32, height: u32, layout: Layout, data: Vec<u8>) -> Pixels {
        assert_eq!(data.len(), width as usize * height as usize * layout.channels());
        Pixels {
            width,
            height,
            layout,
            data,
        }
    }

    /// Bytes per pixel: 3 or 4.
    pub fn channels(&self) -> usize {
        self.layout.channels()
    }

    /// Bytes per row.
    pub fn stride(&self) -> usize {
        self.width as usize * self.channels()
    }

    /// Width times height.
    pub fn pixel_count(&self) -> u64 {
        self.width as u64 * self.height as u64
    }

    /// The RGB values of pixel (x, y); alpha, if any, is left out.
    pub fn rgb(&self, x: u32, y: u32) -> [u8; 3] {
        let i = y as usize * self.stride() + x as usize * self.channels();
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// True when the image has an alpha channel with at least one pixel not fully opaque.
    pub fn has_transparency(&self) -> bool {
        self.layout == Layout::Rgba8 && self.data.chunks_exact(4).any(|p| p[3] != 255)
    }

    /// Drops the alpha channel, compositing over `background` (JPEG has no alpha).
    pub fn flatten(self, background: [u8; 3]) -> Pixels {
        if self.layout == Layout::Rgb8 {
            return self;
        }
        let mut out = Vec::with_capacity(self.pixel_count() as usize * 3);
        for p in self.data.chunks_exact(4) {
            let a = p[3] as u32;
            for c in 0..3 {
                // Rounded (fg*a + bg*(255-a)) / 255 in integers.
                let v = p[c] as u32 * a + background[c] as u32 * (255 - a);
                out.push(((v + 127) / 255) as u8);
            }
        }
        Pixels::new(self.width, self.height, Layout::Rgb8, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spare_buffers_are_reused_zeroed_on_request_and_bounded() {
        // Each test runs on its own thread, so this thread's spares start empty.
        let len = 3 << 20;
        let first = vec![7u8; len];
        let at = first.as_ptr();
        recycle(first);
        // A scratch buffer is the spare, old bytes and all (its caller overwrites them).
        let scratch = scratch_buffer(len - 5);
        assert_eq!((scratch.as_ptr(), scratch.len()), (at, len - 5));
        assert!(scratch.iter().all(|&v| v == 7));
        recycle(scratch);
        // An image buffer is the spare too, but every byte zero, at the length asked for.
        let zeroed = image_buffer(len);
        assert_eq!((zeroed.as_ptr(), zeroed.len()), (at, len));
        assert!(zeroed.iter().all(|&v| v == 0));
        // A request larger than every spare gets a fresh buffer; small buffers are not kept.
        recycle(zeroed);
        let larger = image_buffer(2 * len);
        assert_ne!(larger.as_ptr(), at);
        recycle(vec![1u8; 1000]);
        assert_eq!(SPARE.with_borrow(|s| s.len()), 1);
        // At most two per thread.
        for _ in 0..3 {
            recycle(vec![0u8; len]);
        }
        assert_eq!(SPARE.with_borrow(|s| s.len()), SPARE_BUFFERS);
    }

    #[test]
    fn flatten_composites_over_background() {
        let px = Pixels::new(2, 1, Layout::Rgba8, vec![200, 100, 0, 255, 200, 100, 0, 0]);
        let flat = px.flatten([255, 255, 255]);
        assert_eq!(flat.data, vec![200, 100, 0, 255, 255, 255]);
    }

    #[test]
    fn transparency_is_detected_only_when_present() {
        let opaque = Pixels::new(1, 1, Layout::Rgba8, vec![1, 2, 3, 255]);
        let clear = Pixels::new(1, 1, Layout::Rgba8, vec![1, 2, 3, 254]);
        assert!(!opaque.has_transparency());
        assert!(clear.has_transparency());
    }
}
