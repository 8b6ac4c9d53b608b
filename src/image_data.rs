//! Where compressed picture data really ends, in containers whose chunk sizes do not say: the
//! zlib stream that PNG's `IDAT` chunks (and each APNG frame's `fdAT` chunks) carry, and the
//! VP8 bitstream of a lossy WebP. Bytes after the end are read by no decoder: a place to hide
//! anything, which `strip` drops and `inspect` reports. (JPEG's equivalent is [`crate::entropy`].)

use std::io::Cursor;

/// Length of the zlib stream at the start of `data`, or `None` when it does not end there
/// (truncated or corrupt: the decoder will say so). The stream is inflated into a small
/// scratch buffer, so memory does not grow with the picture.
pub fn zlib_stream_len(data: &[u8]) -> Option<usize> {
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
pub fn png_used(chunks: &[crate::metadata::Chunk]) -> Vec<usize> {
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
        fn payload<'a>(c: &crate::metadata::Chunk<'a>, skip: usize) -> &'a [u8] {
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

/// How many bytes of a `VP8 ` chunk's bitstream a decoder reads; the rest is a tail no decoder
/// uses. The last partition's size is implicit (it runs to the end of the chunk), so the end is
/// found by decoding: image-webp refuses a bitstream it would have to read past, so the
/// shortest prefix that decodes is what is used. One decode of the chunk without its last
/// [`SLACK`] bytes settles ordinary files (that fails: at most a few bytes are unused, kept);
/// a longer tail is then found by bisection. The byte after the shortest prefix is kept, since
/// the decoder may read one byte past the data as zero.
pub fn vp8_used_len(vp8: &[u8]) -> usize {
    const SLACK: usize = 8;
    let decodes = |len: usize| decodes_as_vp8(&vp8[..len]);
    if vp8.len() <= SLACK || !decodes(vp8.len() - SLACK) {
        return vp8.len();
    }
    // decodes(hi) holds, decodes(lo) does not (a bitstream needs its 10-byte frame header).
    let (mut lo, mut hi) = (0, vp8.len() - SLACK);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if decodes(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    (hi + 1).min(vp8.len())
}

/// Whether `bitstream`, as a still lossy WebP, decodes without reading past its end.
fn decodes_as_vp8(bitstream: &[u8]) -> bool {
    let riff = crate::metadata::webp_file([(b"VP8 ", bitstream)]);
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
