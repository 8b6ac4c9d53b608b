//! ICC colour profiles: what their text says, and a copy that says nothing about a person.
//!
//! A profile is kept by default because colours shift without it, but its text tags can name a
//! person or a device: a monitor calibrated by "Jane Doe", a device description with a serial.
//! `sanitize` keeps every tag that describes colour and rewrites the text: a description or
//! copyright that is not one of the well-known standard texts becomes a neutral one, device and
//! viewing-condition descriptions and the metadata dictionary go. Profiles larger than
//! `MAX_PROFILE` are not real profiles (real ones are well under 1 MB) and are dropped by the
//! callers. Never touches pixels.

use std::borrow::Cow;

/// The largest profile photoshield carries over. Larger ones are dropped with a note.
pub(crate) const MAX_PROFILE: usize = 4 << 20;

/// Text tags that only describe (no colour data), dropped from a sanitised profile.
const DROPPED: &[&[u8; 4]] = &[b"dmnd", b"dmdd", b"vued", b"meta", b"scrd", b"ciis", b"dscm"];

/// Descriptions of well-known profiles: kept as they are (they identify nobody).
const STANDARD_DESCRIPTIONS: &[&str] = &[
    "sRGB IEC61966-2.1",
    "sRGB IEC61966-2-1 black scaled",
    "sRGB IEC61966-2-1 no black scaling",
    "sRGB",
    "sRGB built-in",
    "sRGB2014",
    "Display P3",
    "Adobe RGB (1998)",
    "ProPhoto RGB",
    "ROMM-RGB",
    "Apple RGB",
    "ColorMatch RGB",
    "Wide Gamut RGB",
    "Generic Gray Gamma 2.2 Profile",
    "Generic Gray Profile",
    "Gray Gamma 2.2",
    "Dot Gain 15%",
    "Dot Gain 20%",
    "sGray",
    "Rec. 2020",
    "ITU-R BT.2020",
    "DCI-P3",
    "c2",
    "c2ci",
    "Camera RGB Profile",
    "Linear sRGB",
    "Color LCD",
];

/// Beginnings of the descriptions of vendors' and standards bodies' published profiles.
const STANDARD_DESCRIPTION_PREFIXES: &[&str] = &[
    "sRGB",
    "Adobe RGB",
    "Display P3",
    "Generic ",
    "ProPhoto",
    "Rec. 709",
    "Rec. 2020",
    "Nikon sRGB",
    "Nikon Adobe RGB",
    "TIFF RGB",
    "eciRGB",
    "ECI-RGB",
    "Coated ",
    "Uncoated ",
    "U.S. Web",
    "Japan Color",
    "ISO Coated",
    "PSO ",
    "Gray Gamma",
    "Dot Gain",
];

/// Copyright texts of organisations that publish standard profiles: kept.
const STANDARD_COPYRIGHT_HOLDERS: &[&str] = &[
    "International Color Consortium",
    "Hewlett-Packard",
    "Apple",
    "Adobe Systems",
    "Microsoft",
    "Eastman Kodak",
    "Google",
    "Facebook",
    "Heidelberger",
    "Kodak",
    "Canon",
    "Nikon",
    "Sony",
    "FUJIFILM",
    "OLYMPUS",
    "Panasonic",
    "Samsung",
    "European Color Initiative",
    "FOGRA",
    "Public Domain",
    "CC0",
];

const NEUTRAL_DESCRIPTION: &str = "Colour profile (description removed by photoshield)";
const NEUTRAL_COPYRIGHT: &str = "No copyright information";

/// One tag of a profile: its signature and where its data is.
#[derive(Clone, Copy, Debug)]
struct Tag {
    sig: [u8; 4],
    offset: usize,
    size: usize,
}

/// The tag table of a profile, every entry within the profile's bytes; `None` when the header or
/// the table is malformed.
fn tags(profile: &[u8]) -> Option<Vec<Tag>> {
    let declared = u32::from_be_bytes(profile.get(0..4)?.try_into().ok()?) as usize;
    if profile.get(36..40)? != b"acsp" || declared > profile.len() || declared < 132 {
        return None;
    }
    let count = u32::from_be_bytes(profile.get(128..132)?.try_into().ok()?) as usize;
    if count > (declared - 132) / 12 {
        return None;
    }
    (0..count)
        .map(|i| {
            let e = &profile[132 + 12 * i..144 + 12 * i];
            let tag = Tag {
                sig: e[0..4].try_into().ok()?,
                offset: u32::from_be_bytes(e[4..8].try_into().ok()?) as usize,
                size: u32::from_be_bytes(e[8..12].try_into().ok()?) as usize,
            };
            (tag.offset.checked_add(tag.size)? <= declared).then_some(tag)
        })
        .collect()
}

/// The text of a `desc`, `mluc` or `text` tag (the first record of an `mluc`).
fn tag_text(data: &[u8]) -> Option<String> {
    let u32_at = |at: usize| {
        data.get(at..at + 4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()) as usize)
    };
    match data.get(0..4)? {
        b"text" => {
            let text = data.get(8..)?;
            let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
            Some(String::from_utf8_lossy(&text[..end]).into_owned())
        }
        b"desc" => {
            let n = u32_at(8)?;
            let text = data.get(12..12usize.checked_add(n)?)?;
            let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
            Some(String::from_utf8_lossy(&text[..end]).into_owned())
        }
        b"mluc" => {
            if u32_at(8)? == 0 {
                return Some(String::new());
            }
            let (len, at) = (u32_at(20)?, u32_at(24)?);
            let units: Vec<u16> = data
                .get(at..at.checked_add(len)?)?
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            Some(
                String::from_utf16_lossy(&units)
                    .trim_end_matches('\0')
                    .to_string(),
            )
        }
        _ => None,
    }
}

/// The text fields of a profile, as (tag, text): description, copyright, device maker and model
/// descriptions and the like. Empty for a malformed profile.
pub fn text_fields(profile: &[u8]) -> Vec<(String, String)> {
    tags(profile)
        .unwrap_or_default()
        .iter()
        .filter_map(|t| {
            let text = tag_text(&profile[t.offset..t.offset + t.size])?;
            Some((String::from_utf8_lossy(&t.sig).into_owned(), text))
        })
        .collect()
}

fn is_standard(sig: &[u8; 4], text: &str) -> bool {
    let text = text.trim();
    match sig {
        b"desc" => {
            STANDARD_DESCRIPTIONS.contains(&text)
                || STANDARD_DESCRIPTION_PREFIXES.iter().any(|p| text.starts_with(p))
                || text == NEUTRAL_DESCRIPTION
        }
        b"cprt" => STANDARD_COPYRIGHT_HOLDERS.iter().any(|h| text.contains(h)) || text == NEUTRAL_COPYRIGHT,
        _ => false,
    }
}

/// Whether the profile says anything that may identify a person or a device. A published
/// profile (a standard description and a vendor's or standards body's copyright) identifies
/// nobody, whatever its other text says. Any other profile (a calibration, a profile someone
/// named) does when it has a description or copyright that is not a standard one, or any of
/// the descriptive tags [`sanitize`] drops (device descriptions can hold a model and serial).
pub(crate) fn has_identifying_text(profile: &[u8]) -> bool {
    let Some(tags) = tags(profile) else { return false };
    let text = |t: &Tag| tag_text(&profile[t.offset..t.offset + t.size]);
    let published = tags
        .iter()
        .filter(|t| matches!(&t.sig, b"desc" | b"cprt"))
        .all(|t| text(t).is_some_and(|s| is_standard(&t.sig, &s)));
    !published
        && tags
            .iter()
            .any(|t| DROPPED.contains(&&t.sig) || matches!(&t.sig, b"desc" | b"cprt"))
}

/// A text tag in the type the profile's version uses.
fn text_tag(sig: &[u8; 4], text: &str, version4: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if version4 {
        let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        out.extend_from_slice(b"mluc\0\0\0\0");
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(&12u32.to_be_bytes());
        out.extend_from_slice(b"enUS");
        out.extend_from_slice(&(utf16.len() as u32).to_be_bytes());
        out.extend_from_slice(&28u32.to_be_bytes());
        out.extend_from_slice(&utf16);
    } else if sig == b"desc" {
        out.extend_from_slice(b"desc\0\0\0\0");
        out.extend_from_slice(&(text.len() as u32 + 1).to_be_bytes());
        out.extend_from_slice(text.as_bytes());
        out.push(0);
        out.extend_from_slice(&[0; 4 + 4 + 2 + 1 + 67]); // no Unicode, no ScriptCode text
    } else {
        out.extend_from_slice(b"text\0\0\0\0");
        out.extend_from_slice(text.as_bytes());
        out.push(0);
    }
    out
}

/// What becomes of a profile that is to be carried into an output: the profile to write (none
/// when it is dropped) and a note for the user when it was changed or dropped.
pub(crate) fn carry(profile: &[u8]) -> (Option<Cow<'_, [u8]>>, Option<String>) {
    if profile.len() > MAX_PROFILE {
        let note = format!(
            "colour profile dropped: {} KB is not a real profile (the limit is {} KB)",
            profile.len() >> 10,
            MAX_PROFILE >> 10
        );
        return (None, Some(note));
    }
    match sanitize(profile) {
        Some(Cow::Borrowed(p)) => (Some(Cow::Borrowed(p)), None),
        Some(Cow::Owned(p)) => (
            Some(Cow::Owned(p)),
            Some(
                "colour profile kept, its identifying text (description, copyright, device) replaced".into(),
            ),
        ),
        None => (None, Some("colour profile dropped: it is malformed".into())),
    }
}

/// The profile with nothing in it that identifies a person or device, colour unchanged: standard
/// texts are kept, other descriptions and copyrights become neutral ones, descriptive tags go,
/// and the profile ID (an MD5 of the old bytes) is cleared, as the specification allows. A
/// profile without identifying text comes back as it is; `None` for a malformed profile, which
/// callers drop.
pub(crate) fn sanitize(profile: &[u8]) -> Option<Cow<'_, [u8]>> {
    let tags = tags(profile)?;
    let declared = u32::from_be_bytes(profile[0..4].try_into().ok()?) as usize;
    if !has_identifying_text(profile) {
        // Bytes past the declared size are no part of the profile.
        return Some(match declared == profile.len() {
            true => Cow::Borrowed(profile),
            false => Cow::Owned(profile[..declared].to_vec()),
        });
    }
    let version4 = profile[8] >= 4;
    let kept: Vec<(Tag, Cow<[u8]>)> = tags
        .iter()
        .filter(|t| !DROPPED.contains(&&t.sig))
        .map(|t| {
            let data = &profile[t.offset..t.offset + t.size];
            let replaced = match (&t.sig, tag_text(data)) {
                (b"desc", Some(s)) if !is_standard(&t.sig, &s) => {
                    Some(text_tag(&t.sig, NEUTRAL_DESCRIPTION, version4))
                }
                (b"cprt", Some(s)) if !is_standard(&t.sig, &s) => {
                    Some(text_tag(&t.sig, NEUTRAL_COPYRIGHT, version4))
                }
                _ => None,
            };
            (*t, replaced.map_or(Cow::Borrowed(data), Cow::Owned))
        })
        .collect();
    let mut out = profile[..128].to_vec();
    out.extend_from_slice(&(kept.len() as u32).to_be_bytes());
    let table_at = out.len();
    out.resize(table_at + 12 * kept.len(), 0);
    // Tags that shared their data in the old profile share it in the new one.
    let mut placed: Vec<(usize, usize, usize)> = Vec::new();
    for (i, (tag, data)) in kept.iter().enumerate() {
        let shared = matches!(data, Cow::Borrowed(_))
            .then(|| placed.iter().find(|p| p.0 == tag.offset && p.1 == tag.size))
            .flatten()
            .map(|p| p.2);
        let at = match shared {
            Some(at) => at,
            None => {
                while !out.len().is_multiple_of(4) {
                    out.push(0);
                }
                let at = out.len();
                out.extend_from_slice(data);
                if matches!(data, Cow::Borrowed(_)) {
                    placed.push((tag.offset, tag.size, at));
                }
                at
            }
        };
        let entry = &mut out[table_at + 12 * i..table_at + 12 * (i + 1)];
        entry[0..4].copy_from_slice(&tag.sig);
        entry[4..8].copy_from_slice(&(at as u32).to_be_bytes());
        entry[8..12].copy_from_slice(&(data.len() as u32).to_be_bytes());
    }
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    let size = out.len() as u32;
    out[0..4].copy_from_slice(&size.to_be_bytes());
    out[84..100].fill(0);
    Some(Cow::Owned(out))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small v2 or v4 profile with a description, a copyright, a device model description and
    /// one colour tag (`wtpt`) shared by a second signature.
    pub fn profile(desc: &str, cprt: &str, version4: bool) -> Vec<u8> {
        let wtpt = b"XYZ \0\0\0\0\0\0\xf6\xd6\0\x01\0\0\0\0\xd3\x2d".to_vec();
        let tags: Vec<(&[u8; 4], Vec<u8>)> = vec![
            (b"desc", text_tag(b"desc", desc, version4)),
            (b"cprt", text_tag(b"cprt", cprt, version4)),
            (b"dmdd", text_tag(b"desc", "Monitor SN 0042-7777", version4)),
            (b"wtpt", wtpt),
        ];
        let mut out = vec![0u8; 128];
        out[8] = if version4 { 4 } else { 2 };
        out[12..16].copy_from_slice(b"mntr");
        out[16..20].copy_from_slice(b"RGB ");
        out[20..24].copy_from_slice(b"XYZ ");
        out[36..40].copy_from_slice(b"acsp");
        out[84..100].fill(0xAB);
        out.extend_from_slice(&(tags.len() as u32 + 1).to_be_bytes());
        let table = out.len();
        out.resize(table + 12 * (tags.len() + 1), 0);
        let mut entries = Vec::new();
        for (sig, data) in &tags {
            while !out.len().is_multiple_of(4) {
                out.push(0);
            }
            entries.push((**sig, out.len(), data.len()));
            out.extend_from_slice(data);
        }
        let (_, at, len) = entries[3];
        entries.push((*b"bkpt", at, len));
        for (i, (sig, at, len)) in entries.iter().enumerate() {
            let e = &mut out[table + 12 * i..table + 12 * (i + 1)];
            e[0..4].copy_from_slice(sig);
            e[4..8].copy_from_slice(&(*at as u32).to_be_bytes());
            e[8..12].copy_from_slice(&(*len as u32).to_be_bytes());
        }
        let size = out.len() as u32;
        out[0..4].copy_from_slice(&size.to_be_bytes());
        out
    }

    #[test]
    fn identifying_text_is_replaced_and_colour_tags_kept() {
        for v4 in [false, true] {
            let p = profile("Jane Doe's monitor", "Copyright 2024 Jane Doe", v4);
            let fields = text_fields(&p);
            assert!(
                fields
                    .iter()
                    .any(|(t, s)| t == "desc" && s == "Jane Doe's monitor"),
                "{fields:?}"
            );
            assert!(has_identifying_text(&p));
            let clean = sanitize(&p).unwrap().into_owned();
            let text = String::from_utf8_lossy(&clean);
            assert!(!text.contains("Jane") && !text.contains("0042"), "v4={v4}");
            let fields = text_fields(&clean);
            assert!(
                fields.contains(&("desc".into(), NEUTRAL_DESCRIPTION.into())),
                "{fields:?}"
            );
            assert!(
                fields.contains(&("cprt".into(), NEUTRAL_COPYRIGHT.into())),
                "{fields:?}"
            );
            assert!(!has_identifying_text(&clean));
            let t = tags(&clean).unwrap();
            let sigs: Vec<&[u8; 4]> = t.iter().map(|t| &t.sig).collect();
            assert_eq!(sigs, [b"desc", b"cprt", b"wtpt", b"bkpt"]);
            assert_eq!(t[2].offset, t[3].offset, "shared tag data stays shared");
            let wtpt = |p: &[u8], t: &Tag| p[t.offset..t.offset + t.size].to_vec();
            let old = tags(&p).unwrap();
            assert_eq!(wtpt(&clean, &t[2]), wtpt(&p, &old[3]));
            assert!(clean[84..100].iter().all(|&b| b == 0), "profile ID cleared");
            assert_eq!(
                u32::from_be_bytes(clean[0..4].try_into().unwrap()) as usize,
                clean.len()
            );
        }
    }

    #[test]
    fn standard_profiles_are_left_alone() {
        let mut p = profile(
            "sRGB IEC61966-2.1",
            "Copyright International Color Consortium, 2009",
            false,
        );
        // Without the device description, nothing identifies anyone.
        let t = tags(&p).unwrap();
        p[132 + 12 * 2..132 + 12 * 2 + 4].copy_from_slice(b"zzzz");
        let _ = t;
        assert!(!has_identifying_text(&p));
        assert!(matches!(sanitize(&p), Some(Cow::Borrowed(_))));
    }

    #[test]
    fn malformed_profiles_are_refused_not_trusted() {
        let p = profile("x", "y", true);
        for cut in [0, 10, 100, 131, p.len() - 3] {
            assert!(sanitize(&p[..cut]).is_none(), "cut {cut}");
        }
    }
}
