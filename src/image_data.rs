//! Where compressed picture data really ends, in containers whose chunk sizes do not say: the
//! zlib stream that PNG's `IDAT` chunks (and each APNG frame's `fdAT` chunks) carry, and the
//! VP8 bitstream of a lossy WebP. Bytes after the end are read by no decoder: a place to hide
//! anything, which `strip` drops and `inspect` reports. (JPEG's equivalent is [`crate::entropy`].)

use std::io::Cursor;

/// Length of the zlib stream at the start of `data`, or `None` when it does not end there
/// (truncated or corrupt: the decoder will say so). The stream is inflated into a small
/// scratch buffer, so memory does not grow with the picture.
pub(crate) fn zlib_stream_len(data: &[u8]) -> Option<usize> {
    let mut z = flate2::Decompress::new(true);
    let mut scratch = vec![0u8; 1 << 16];
    loop {
        let at = z.total_in() as usize;
        let before_out = z.total_out();
        let status = z
            .decompress(&data[at..], &mut scratch, flate2::FlushDecompress::None)
            .ok()?;
        match status {
            flate2::Status::StreamEnd => return Some(z.total_in() as usize),
            _ if z.total_in() as usize == at && z.total_out() == before_out => return None,
            _ => {}
        }
    }
}

/// For each of `chunks`, how many bytes of its payload a PNG decoder reads: all of them, except
/// for the `IDAT` and `fdAT` chunks that carry the zlib stream of the picture (or of an APNG
/// frame) past its end. Such a stream is split over consecutive chunks (an `fdAT` payload starts
/// with its 4-byte sequence number); one that does not end counts as wholly read.
pub(crate) fn png_used(chunks: &[crate::container::png::Chunk]) -> Vec<usize> {
    let mut used: Vec<usize> = chunks.iter().map(|c| c.data.len()).collect();
    let mut i = 0;
    while i < chunks.len() {
        let kind = chunks[i].kind;
        let skip = match &kind {
            b"IDAT" => 0,
            b"fdAT" => 4,
            _ => {
                i += 1;
                continue;
            }
        };
        let run = chunks[i..].iter().take_while(|c| c.kind == kind).count();
        fn payload<'a>(c: &crate::container::png::Chunk<'a>, skip: usize) -> &'a [u8] {
            c.data.get(skip..).unwrap_or_default()
        }
        let stream: Vec<u8> = chunks[i..i + run]
            .iter()
            .flat_map(|c| payload(c, skip).iter().copied())
            .collect();
        if let Some(mut left) = zlib_stream_len(&stream) {
            for (k, c) in chunks[i..i + run].iter().enumerate() {
                let take = payload(c, skip).len().min(left);
                used[i + k] = c.data.len().min(skip) + take;
                left -= take;
            }
        }
        i += run;
    }
    used
}

/// A compressed bitstream in a WebP file whose chunk size may run past its end.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Bitstream {
    /// `VP8 `: lossy; the last partition's size is implicit (it runs to the end of the chunk).
    Vp8,
    /// `VP8L`: lossless, read bit by bit to the last pixel.
    Vp8l,
    /// `ALPH`: the alpha plane of a picture of this size, raw or as a headerless VP8L stream.
    Alpha { width: u32, height: u32 },
}

/// How many bytes of a WebP bitstream chunk a decoder reads; the rest is a tail no decoder
/// uses. Neither format states its length, so the end is found by decoding: image-webp refuses
/// a bitstream it would have to read past, so the shortest prefix that decodes is what is used.
/// One decode of the chunk without its last `SLACK` (8) bytes settles ordinary files (that fails:
/// at most a few bytes are unused, kept); a longer tail is then found by bisection. The byte
/// after the shortest prefix is kept, since a decoder may read one byte past the data as zero.
/// A raw alpha plane is exactly one byte per pixel after its header byte.
pub(crate) fn bitstream_used_len(kind: Bitstream, data: &[u8]) -> usize {
    const SLACK: usize = 8;
    let decodes = |len: usize| match kind {
        Bitstream::Vp8 => decodes_as(b"VP8 ", &data[..len]),
        Bitstream::Vp8l => decodes_as(b"VP8L", &data[..len]),
        Bitstream::Alpha { width, height } => {
            len > 0
                && decodes_as(
                    b"VP8L",
                    &[&vp8l_header(width, height)[..], &data[1..len]].concat(),
                )
        }
    };
    if let Bitstream::Alpha { width, height } = kind {
        match data.first().map(|h| h & 3) {
            Some(0) => {
                let raw = 1 + u64::from(width) * u64::from(height);
                return data.len().min(usize::try_from(raw).unwrap_or(usize::MAX));
            }
            Some(1) => {}
            _ => return data.len(),
        }
    }
    if data.len() <= SLACK || !decodes(data.len() - SLACK) {
        return data.len();
    }
    // decodes(hi) holds, decodes(lo) does not (a bitstream needs its header).
    let (mut lo, mut hi) = (0, data.len() - SLACK);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if decodes(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    (hi + 1).min(data.len())
}

/// [`bitstream_used_len`] for a WebP chunk by its id: `VP8 `, `VP8L`, or `ALPH` of a picture of
/// `size`; any other chunk (or an `ALPH` of unknown size) is wholly used.
pub(crate) fn webp_chunk_used_len(id: &[u8; 4], data: &[u8], size: Option<(u32, u32)>) -> usize {
    let kind = match (id, size) {
        (b"VP8 ", _) => Bitstream::Vp8,
        (b"VP8L", _) => Bitstream::Vp8l,
        (b"ALPH", Some((width, height))) => Bitstream::Alpha { width, height },
        _ => return data.len(),
    };
    bitstream_used_len(kind, data)
}

/// The 5-byte header that turns an `ALPH` chunk's headerless lossless stream into a `VP8L`
/// bitstream: signature, 14-bit width and height less one, no alpha, version 0. The header is
/// 40 bits, so the stream that follows starts on a byte, as in the `ALPH` chunk.
fn vp8l_header(width: u32, height: u32) -> [u8; 5] {
    let bits = (width.saturating_sub(1) & 0x3FFF) | ((height.saturating_sub(1) & 0x3FFF) << 14);
    let [a, b, c, d] = bits.to_le_bytes();
    [0x2F, a, b, c, d]
}

/// Whether `bitstream`, as the only chunk of a still WebP, decodes without reading past its end.
fn decodes_as(id: &[u8; 4], bitstream: &[u8]) -> bool {
    let riff = crate::container::riff::webp_file([(id, bitstream)]);
    let Ok(mut decoder) = image_webp::WebPDecoder::new(Cursor::new(&riff[..])) else {
        return false;
    };
    let Some(size) = decoder.output_buffer_size() else {
        return false;
    };
    let mut pixels = vec![0u8; size];
    decoder.read_image(&mut pixels).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_zlib_stream_ends_where_its_checksum_ends() {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&vec![7u8; 100_000]).unwrap();
        let stream = z.finish().unwrap();
        assert_eq!(zlib_stream_len(&stream), Some(stream.len()));
        let tailed = [&stream[..], b"SECRETSERIAL42"].concat();
        assert_eq!(zlib_stream_len(&tailed), Some(stream.len()));
        assert_eq!(zlib_stream_len(&stream[..stream.len() - 5]), None);
        assert_eq!(zlib_stream_len(b"not zlib"), None);
        assert_eq!(zlib_stream_len(&[]), None);
    }
}
