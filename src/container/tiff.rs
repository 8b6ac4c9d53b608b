//! TIFF structure, as far as telling a camera RAW from a TIFF photo needs it.
//!
//! Most camera raws (DNG, NEF, ARW, SR2, PEF, CR2, ORF, RW2, SRW, IIQ, 3FR, ...) are TIFF files.
//! Their first image is usually a small preview and the sensor data sits in another IFD, so a
//! TIFF decoder "reads" them as a thumbnail. They are told apart by content, never by the file
//! name: a `DNGVersion` tag, a colour-filter-array or linear-raw image, a raw-only compression,
//! or a camera's reduced-resolution preview as the first image. Bounded walk: at most a few IFDs,
//! every entry count checked against the bytes that would hold it.

const DNG_VERSION: u16 = 0xC612;
const NEW_SUBFILE_TYPE: u16 = 0x00FE;
const COMPRESSION: u16 = 0x0103;
const PHOTOMETRIC: u16 = 0x0106;
const MAKE: u16 = 0x010F;
const SUB_IFDS: u16 = 0x014A;

/// PhotometricInterpretation values only raw sensor data uses: CFA and LinearRaw.
const RAW_PHOTOMETRIC: [u32; 2] = [32803, 34892];
/// Compression schemes only camera raws use (Nikon NEF, Sony ARW, Pentax PEF, Kodak, packed raw).
const RAW_COMPRESSION: [u32; 6] = [32767, 32769, 32770, 34713, 65000, 65535];

/// A TIFF structure's numbers, read in its byte order, within its bounds.
pub(crate) struct Tiff<'a> {
    b: &'a [u8],
    little_endian: bool,
}

impl Tiff<'_> {
    pub(crate) fn new(b: &[u8]) -> Option<Tiff<'_>> {
        let little_endian = match b.get(0..2)? {
            b"II" => true,
            b"MM" => false,
            _ => return None,
        };
        Some(Tiff { b, little_endian })
    }

    /// The `N` bytes at `at`, in big-endian order whatever the file's byte order.
    fn big_endian<const N: usize>(&self, at: usize) -> Option<[u8; N]> {
        let mut v: [u8; N] = self.b.get(at..at.checked_add(N)?)?.try_into().ok()?;
        if self.little_endian {
            v.reverse();
        }
        Some(v)
    }

    pub(crate) fn u16(&self, at: usize) -> Option<u16> {
        self.big_endian(at).map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&self, at: usize) -> Option<u32> {
        self.big_endian(at).map(u32::from_be_bytes)
    }
}

/// The entries of one IFD that the test needs.
#[derive(Default)]
struct Ifd {
    dng: bool,
    subfile: Option<u32>,
    compression: Option<u32>,
    photometric: Option<u32>,
    make: Option<String>,
    sub_ifds: Vec<u32>,
    next: u32,
}

impl<'a> Tiff<'a> {
    fn ifd(&self, offset: u32) -> Option<Ifd> {
        let at = offset as usize;
        let count = self.u16(at)? as usize;
        // A count the file cannot hold means this is not a TIFF structure worth trusting.
        if at + 2 + count * 12 + 4 > self.b.len() {
            return None;
        }
        let mut ifd = Ifd::default();
        for i in 0..count {
            let e = at + 2 + i * 12;
            let (tag, kind, n) = (self.u16(e)?, self.u16(e + 2)?, self.u32(e + 4)?);
            // SHORT values sit in the first two bytes of the value field, LONG in all four.
            let value = match kind {
                3 => self.u16(e + 8)? as u32,
                _ => self.u32(e + 8)?,
            };
            match tag {
                DNG_VERSION => ifd.dng = true,
                NEW_SUBFILE_TYPE => ifd.subfile = Some(value),
                COMPRESSION => ifd.compression = Some(value),
                PHOTOMETRIC => ifd.photometric = Some(value),
                MAKE if kind == 2 => {
                    let n = n as usize;
                    let text = if n <= 4 {
                        self.b.get(e + 8..e + 8 + n)
                    } else {
                        self.b.get(value as usize..(value as usize).saturating_add(n))
                    };
                    ifd.make = text.map(|t| {
                        String::from_utf8_lossy(t)
                            .trim_end_matches('\0')
                            .trim()
                            .to_string()
                    });
                }
                SUB_IFDS if n == 1 => ifd.sub_ifds.push(value),
                SUB_IFDS if (kind == 4 || kind == 13) && n <= 8 => {
                    for k in 0..n as usize {
                        ifd.sub_ifds.push(self.u32(value as usize + 4 * k)?);
                    }
                }
                _ => {}
            }
        }
        ifd.next = self.u32(at + 2 + count * 12)?;
        Some(ifd)
    }
}

/// The kind of camera RAW `bytes` is, by content, or None for a TIFF photo (or not a TIFF).
pub fn camera_raw(bytes: &[u8]) -> Option<&'static str> {
    match bytes.get(0..4)? {
        b"IIRO" | b"IIRS" => return Some("Olympus ORF"),
        b"IIU\0" => return Some("Panasonic RW2"),
        _ => {}
    }
    if !matches!(bytes.get(0..4)?, b"II*\0" | b"MM\0*") {
        return None;
    }
    if bytes.get(8..10) == Some(b"CR") {
        return Some("Canon CR2");
    }
    let tiff = Tiff::new(bytes)?;
    let ifd0 = tiff.ifd(tiff.u32(4)?)?;
    let make = ifd0.make.clone().unwrap_or_default();
    let name = || maker_raw_name(&make);
    if ifd0.dng {
        return Some("DNG");
    }
    // The first image being a camera's reduced-resolution preview is what made a RAW "decode"
    // as a thumbnail; a TIFF photo's first image is the photo.
    if !make.is_empty() && ifd0.subfile == Some(1) {
        return Some(name());
    }
    // Look at IFD0, the chain after it and the sub-IFDs for sensor data (bounded).
    let mut queue: Vec<u32> = ifd0.sub_ifds.clone();
    queue.push(ifd0.next);
    let mut seen = 0;
    let mut current = Some(ifd0);
    while let Some(ifd) = current.take() {
        let raw_photometric = ifd.photometric.is_some_and(|p| RAW_PHOTOMETRIC.contains(&p));
        let raw_compression = ifd.compression.is_some_and(|c| RAW_COMPRESSION.contains(&c));
        if raw_photometric || raw_compression {
            return Some(name());
        }
        seen += 1;
        while current.is_none() && seen < 8 {
            match queue.pop() {
                Some(0) => continue,
                Some(off) => {
                    current = tiff.ifd(off);
                    if let Some(ifd) = &current {
                        queue.extend(ifd.sub_ifds.iter().copied().take(4));
                    }
                    if current.is_none() {
                        seen += 1;
                    }
                }
                None => break,
            }
        }
    }
    None
}

fn maker_raw_name(make: &str) -> &'static str {
    let m = make.to_ascii_uppercase();
    let known: [(&str, &'static str); 14] = [
        ("NIKON", "Nikon NEF"),
        ("SONY", "Sony ARW"),
        ("CANON", "Canon CR2"),
        ("PENTAX", "Pentax PEF"),
        ("RICOH", "Pentax PEF"),
        ("OLYMPUS", "Olympus ORF"),
        ("OM DIGITAL", "Olympus ORF"),
        ("PANASONIC", "Panasonic RW2"),
        ("FUJIFILM", "Fujifilm RAF"),
        ("SAMSUNG", "Samsung SRW"),
        ("HASSELBLAD", "Hasselblad 3FR"),
        ("PHASE ONE", "Phase One IIQ"),
        ("LEICA", "Leica RAW"),
        ("KODAK", "Kodak DCR"),
    ];
    known
        .iter()
        .find(|(k, _)| m.starts_with(k))
        .map_or("TIFF-based", |(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian TIFF with IFD0 holding `entries` (tag, type, count, value).
    fn tiff(entries: &[(u16, u16, u32, u32)], extra: &[u8]) -> Vec<u8> {
        let mut b = b"II*\0\x08\0\0\0".to_vec();
        b.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for &(tag, kind, n, v) in entries {
            b.extend_from_slice(&tag.to_le_bytes());
            b.extend_from_slice(&kind.to_le_bytes());
            b.extend_from_slice(&n.to_le_bytes());
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(extra);
        b
    }

    #[test]
    fn a_dng_version_tag_makes_a_dng() {
        assert_eq!(
            camera_raw(&tiff(&[(DNG_VERSION, 1, 4, 0x0104)], &[])),
            Some("DNG")
        );
    }

    #[test]
    fn a_camera_preview_first_image_is_a_raw_named_by_its_maker() {
        // Make "NIKON\0" stored after the IFD (8 + 2 + 2*12 + 4 = 38).
        let b = tiff(&[(NEW_SUBFILE_TYPE, 4, 1, 1), (MAKE, 2, 6, 38)], b"NIKON\0");
        assert_eq!(camera_raw(&b), Some("Nikon NEF"));
    }

    #[test]
    fn cfa_sensor_data_is_a_raw() {
        assert_eq!(
            camera_raw(&tiff(&[(PHOTOMETRIC, 3, 1, 32803)], &[])),
            Some("TIFF-based")
        );
    }

    #[test]
    fn a_plain_tiff_photo_and_a_scanner_tiff_are_not_raws() {
        assert_eq!(
            camera_raw(&tiff(&[(PHOTOMETRIC, 3, 1, 2), (COMPRESSION, 3, 1, 5)], &[])),
            None
        );
        let b = tiff(&[(NEW_SUBFILE_TYPE, 4, 1, 0), (MAKE, 2, 6, 38)], b"NIKON\0");
        assert_eq!(camera_raw(&b), None);
    }

    #[test]
    fn broken_ifds_are_not_followed() {
        let mut b = tiff(&[(SUB_IFDS, 4, 1, 0xFFFF_FF00)], &[]);
        assert_eq!(camera_raw(&b), None);
        b[8] = 0xFF; // entry count far past the end
        assert_eq!(camera_raw(&b), None);
    }
}
