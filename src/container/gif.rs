//! GIF: the one walker of its blocks.

/// A GIF extension block: its label (0xFE comment, 0xFF application, 0x01 plain text, 0xF9
/// graphic control), the application identifier for 0xFF, and the total length of its
/// sub-blocks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Extension<'a> {
    pub label: u8,
    pub app: &'a [u8],
    pub len: usize,
}

/// A GIF's blocks, from one walk: its extension blocks, its frames (image descriptors), and
/// where its trailer ends (`None` when the walk met malformed data or the end of the file first).
#[derive(Debug, Default)]
pub(crate) struct Layout<'a> {
    pub extensions: Vec<Extension<'a>>,
    pub frames: u32,
    pub end: Option<usize>,
}

/// Walks a GIF's blocks up to its trailer. Never reads past the buffer.
pub(crate) fn layout(b: &[u8]) -> Layout<'_> {
    let mut layout = Layout::default();
    let colour_table = |flags: u8| {
        if flags & 0x80 != 0 {
            3 << ((flags & 7) + 1)
        } else {
            0
        }
    };
    let Some(&flags) = b.get(10) else {
        return layout;
    };
    // Returns (index after the chain's terminator, total payload length).
    let sub_blocks = |mut i: usize| -> Option<(usize, usize)> {
        let mut total = 0;
        loop {
            let n = *b.get(i)? as usize;
            i += 1 + n;
            total += n;
            if n == 0 {
                return Some((i, total));
            }
        }
    };
    let mut i = 13 + colour_table(flags);
    loop {
        let next = match b.get(i) {
            Some(0x2C) => {
                layout.frames += 1;
                let Some(&flags) = b.get(i + 9) else {
                    return layout;
                };
                // Descriptor, local colour table, LZW minimum code size, then the data.
                sub_blocks(i + 10 + colour_table(flags) + 1).map(|(next, _)| next)
            }
            Some(0x21) => {
                let label = b.get(i + 1).copied().unwrap_or(0);
                let app = match label {
                    0xFF => b.get(i + 3..i + 14).unwrap_or_default(),
                    _ => &[],
                };
                sub_blocks(i + 2).map(|(next, len)| {
                    layout.extensions.push(Extension { label, app, len });
                    next
                })
            }
            Some(0x3B) => {
                layout.end = Some(i + 1);
                return layout;
            }
            _ => None,
        };
        match next {
            Some(n) => i = n,
            None => return layout,
        }
    }
}
