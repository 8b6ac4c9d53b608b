//! PNG: the one walker of its chunks, and the colour profile its `iCCP` chunk holds.

/// One PNG chunk.
#[derive(Clone, Copy, Debug)]
pub struct Chunk<'a> {
    pub kind: [u8; 4],
    pub offset: usize,
    pub data: &'a [u8],
    /// Offset just past the chunk's CRC.
    pub end: usize,
}

/// Iterates the chunks of a PNG, stopping at IEND or at the first chunk that runs past the end.
pub fn chunks(b: &[u8]) -> impl Iterator<Item = Chunk<'_>> {
    let mut i = if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        8
    } else {
        usize::MAX
    };
    std::iter::from_fn(move || {
        let head = b.get(i..i.checked_add(8)?)?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = [head[4], head[5], head[6], head[7]];
        let end = i.checked_add(12)?.checked_add(len)?;
        let data = b.get(i + 8..i + 8 + len)?;
        b.get(end - 4..end)?; // the CRC must be there too
        let chunk = Chunk {
            kind,
            offset: i,
            data,
            end,
        };
        i = if &kind == b"IEND" { usize::MAX } else { end };
        Some(chunk)
    })
}

/// The ICC profile of a PNG `iCCP` chunk, inflated under [`crate::icc::MAX_PROFILE`]: a few
/// kilobytes of compressed data can claim gigabytes.
pub(crate) fn iccp_profile(data: &[u8]) -> Result<Vec<u8>, &'static str> {
    use std::io::Read;
    let name_end = data
        .iter()
        .take(80)
        .position(|&b| b == 0)
        .ok_or("malformed iCCP chunk")?;
    let stream = data.get(name_end + 2..).ok_or("malformed iCCP chunk")?;
    let mut profile = Vec::new();
    flate2::read::ZlibDecoder::new(stream)
        .take(crate::icc::MAX_PROFILE as u64 + 1)
        .read_to_end(&mut profile)
        .map_err(|_| "iCCP chunk with corrupt compressed data")?;
    if profile.len() > crate::icc::MAX_PROFILE {
        return Err("iCCP colour profile larger than any real profile");
    }
    Ok(profile)
}
