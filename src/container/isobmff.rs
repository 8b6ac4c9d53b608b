//! ISO base media file format (ISO/IEC 14496-12) boxes as HEIF/HEIC, AVIF and JPEG XL use them:
//! one box walker with strict bounds, and a reader of a HEIF `meta` box (items, their locations,
//! references and properties) that tells what a file holds besides its primary image.
//!
//! It owns the structure only: it never decodes pixels (the codecs do, in [`crate::heif`]) and
//! never writes a file. Every length is checked against its parent before use, and nothing is
//! allocated in proportion to a number read from the file: a count is bounded by the bytes that
//! would have to hold it.

use std::ops::Range;

/// Why a file's box structure cannot be read. The message is shown to the user after the file's
/// name, so it says what is wrong in words.
pub(crate) type Error = String;

/// One box: its four-character type and where its header and body are in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoxRef {
    pub kind: [u8; 4],
    /// The whole box, header included.
    pub range: Range<usize>,
    /// The body, after the size/type header (and the 64-bit size when there is one).
    pub body: Range<usize>,
}

impl BoxRef {
    pub fn kind_str(&self) -> String {
        self.kind
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '?'
                }
            })
            .collect()
    }
}

/// The boxes directly inside `range` of `bytes`, in order. A box that claims more bytes than its
/// parent holds is an error (a truncated or corrupt file), not a shorter box.
pub fn boxes(bytes: &[u8], range: Range<usize>) -> Result<Vec<BoxRef>, Error> {
    let mut out = Vec::new();
    let mut pos = range.start;
    let end = range.end.min(bytes.len());
    while pos < end {
        if end - pos < 8 {
            return Err(format!("truncated box header at byte {pos}"));
        }
        let size32 = be32(bytes, pos) as u64;
        let kind = [bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]];
        let (size, header) = match size32 {
            0 => ((end - pos) as u64, 8),
            1 => {
                if end - pos < 16 {
                    return Err(format!("truncated box header at byte {pos}"));
                }
                (be64(bytes, pos + 8), 16)
            }
            n => (n, 8),
        };
        if size < header as u64 || size > (end - pos) as u64 {
            let name = BoxRef {
                kind,
                range: 0..0,
                body: 0..0,
            }
            .kind_str();
            return Err(format!(
                "box '{name}' at byte {pos} claims {size} bytes, {} remain (truncated or corrupt file)",
                end - pos
            ));
        }
        let box_end = pos + size as usize;
        out.push(BoxRef {
            kind,
            range: pos..box_end,
            body: pos + header..box_end,
        });
        pos = box_end;
    }
    Ok(out)
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// A bounds-checked reader over one box body.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8], what: &'static str) -> Self {
        Reader { b, pos: 0, what }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.b.len() - self.pos < n {
            return Err(format!("truncated '{}' box", self.what));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, Error> {
        Ok(be16(self.take(2)?, 0))
    }
    fn u32(&mut self) -> Result<u32, Error> {
        Ok(be32(self.take(4)?, 0))
    }
    /// An unsigned integer of `n` bytes (0, 4 or 8 in `iloc`; 2 or 4 elsewhere).
    fn uint(&mut self, n: usize) -> Result<u64, Error> {
        match n {
            0 => Ok(0),
            2 => Ok(self.u16()? as u64),
            4 => Ok(self.u32()? as u64),
            8 => Ok(be64(self.take(8)?, 0)),
            _ => Err(format!("'{}' box uses a field size of {n} bytes", self.what)),
        }
    }
    /// A full box's version and flags.
    fn full(&mut self) -> Result<(u8, u32), Error> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0xFF_FFFF))
    }
    /// A NUL-terminated string (or the rest of the box when there is no NUL).
    fn cstr(&mut self) -> String {
        let rest = &self.b[self.pos..];
        let n = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        self.pos += (n + 1).min(rest.len());
        String::from_utf8_lossy(&rest[..n]).into_owned()
    }
    fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }
}

/// One item of a HEIF `meta` box (`infe`): an image, a tile, a thumbnail, an EXIF block, ...
#[derive(Clone, Debug, Default)]
pub struct Item {
    pub id: u32,
    /// `hvc1`, `av01`, `grid`, `iden`, `Exif`, `mime`, ...
    pub kind: [u8; 4],
    /// The MIME type of a `mime` item (`application/rdf+xml` for XMP).
    pub content_type: String,
    /// The item's pieces: file ranges (construction method 0) or `idat` ranges (method 1).
    pub extents: Vec<Range<u64>>,
    /// True when the extents are offsets in the `idat` box rather than the file.
    pub in_idat: bool,
    /// Width and height from the item's `ispe` property.
    pub size: Option<(u32, u32)>,
    /// The auxiliary type URN from `auxC` (alpha, depth, HDR gain map, ...).
    pub aux_type: Option<String>,
    /// Whether the item is hidden (flags bit 0 of `infe`).
    pub hidden: bool,
    /// The file range of the ICC profile of a `colr` property (`prof` or `rICC`).
    pub icc: Option<Range<usize>>,
    /// The colour signalling of a `colr` property of type `nclx`.
    pub nclx: Option<Nclx>,
}

/// A `colr` property of type `nclx`: the code points of ITU-T H.273 (as in AV1 and HEVC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nclx {
    /// Colour primaries (1 BT.709/sRGB, 9 BT.2020, 12 Display P3, ...).
    pub primaries: u16,
    /// Transfer characteristics (13 sRGB, 1 BT.709, 16 PQ, 18 HLG, ...).
    pub transfer: u16,
    /// Matrix coefficients (0 identity, 1 BT.709, 5/6 BT.601, 9 BT.2020, ...).
    pub matrix: u16,
    /// Whether the samples use the full range rather than the studio range.
    pub full_range: bool,
}

impl Item {
    pub fn kind_str(&self) -> String {
        String::from_utf8_lossy(&self.kind).trim_end().to_string()
    }
    pub fn len(&self) -> u64 {
        self.extents.iter().map(|e| e.end - e.start).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn is_xmp(&self) -> bool {
        &self.kind == b"mime" && self.content_type.contains("rdf+xml")
    }
    pub fn is_image(&self) -> bool {
        matches!(
            &self.kind,
            b"hvc1" | b"av01" | b"grid" | b"iden" | b"iovl" | b"jpeg" | b"avc1" | b"unci"
        )
    }
}

/// A reference between items (`iref`): `from` is a thumbnail of, an auxiliary image of,
/// a description of (`cdsc`), or made of (`dimg`) the items `to`.
#[derive(Clone, Debug)]
pub struct Reference {
    pub kind: [u8; 4],
    pub from: u32,
    pub to: Vec<u32>,
}

/// The structure of a HEIF-family file (HEIC, HEIF, AVIF): its brand, its items and the
/// top-level boxes.
#[derive(Clone, Debug, Default)]
pub struct Heif {
    pub major_brand: [u8; 4],
    pub compatible: Vec<[u8; 4]>,
    pub primary: u32,
    pub items: Vec<Item>,
    pub references: Vec<Reference>,
    pub top: Vec<BoxRef>,
    /// The body of the `idat` box, when there is one.
    pub idat: Option<Range<usize>>,
    /// The primary image's rotation in quarter turns anticlockwise (`irot`) and mirror (`imir`:
    /// 0 swaps top and bottom, 1 swaps left and right, as libheif and libavif read it).
    pub rotation: u8,
    pub mirror: Option<u8>,
}

/// What a part of a HEIF file is, as `inspect` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Primary,
    Tile,
    Thumbnail,
    Alpha,
    Depth,
    GainMap,
    OtherAuxiliary,
    Exif,
    Xmp,
    OtherImage,
    OtherData,
}

impl Heif {
    /// Reads the structure of `bytes`, checking every item's extents against the file.
    pub fn parse(bytes: &[u8]) -> Result<Heif, Error> {
        let top = boxes(bytes, 0..bytes.len())?;
        let mut heif = Heif::default();
        let ftyp = top.iter().find(|b| &b.kind == b"ftyp").ok_or("no 'ftyp' box")?;
        let f = &bytes[ftyp.body.clone()];
        if f.len() < 8 {
            return Err("truncated 'ftyp' box".into());
        }
        heif.major_brand = f[0..4].try_into().expect("4 bytes");
        heif.compatible = f[8..]
            .chunks_exact(4)
            .map(|c| c.try_into().expect("4 bytes"))
            .collect();
        let meta = top
            .iter()
            .find(|b| &b.kind == b"meta")
            .ok_or("no 'meta' box (truncated file?)")?;
        if meta.body.len() < 4 {
            return Err("truncated 'meta' box".into());
        }
        let children = boxes(bytes, meta.body.start + 4..meta.body.end)?;
        let mut properties: Vec<BoxRef> = Vec::new();
        let mut associations: Vec<(u32, Vec<u16>)> = Vec::new();
        let mut locations = Vec::new();
        for child in &children {
            let body = &bytes[child.body.clone()];
            match &child.kind {
                b"pitm" => {
                    let mut r = Reader::new(body, "pitm");
                    let (v, _) = r.full()?;
                    heif.primary = if v == 0 { r.u16()? as u32 } else { r.u32()? };
                }
                b"iinf" => heif.items = parse_iinf(bytes, child)?,
                b"iloc" => locations = parse_iloc(body)?,
                b"iref" => heif.references = parse_iref(body)?,
                b"idat" => heif.idat = Some(child.body.clone()),
                b"iprp" => {
                    for p in boxes(bytes, child.body.clone())? {
                        match &p.kind {
                            b"ipco" => properties = boxes(bytes, p.body.clone())?,
                            b"ipma" => associations.extend(parse_ipma(&bytes[p.body.clone()])?),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        heif.top = top;
        for (id, in_idat, mut extents) in locations {
            let Some(item) = heif.items.iter_mut().find(|i| i.id == id) else {
                continue;
            };
            let end = if in_idat {
                heif.idat.as_ref().map_or(0, |r| r.len())
            } else {
                bytes.len()
            } as u64;
            for e in &mut extents {
                if e.end == u64::MAX {
                    e.end = end.max(e.start);
                }
            }
            item.extents = extents;
            item.in_idat = in_idat;
        }
        if !heif.items.iter().any(|i| i.id == heif.primary) {
            return Err(format!(
                "the primary item {} is not in the item list",
                heif.primary
            ));
        }
        for (id, props) in associations {
            let Some(index) = heif.items.iter().position(|i| i.id == id) else {
                continue;
            };
            for p in props {
                // Property indices are 1-based; 0 means "none".
                let Some(prop) = (p as usize).checked_sub(1).and_then(|i| properties.get(i)) else {
                    continue;
                };
                let body = &bytes[prop.body.clone()];
                let item = &mut heif.items[index];
                match &prop.kind {
                    b"ispe" if body.len() >= 12 => item.size = Some((be32(body, 4), be32(body, 8))),
                    b"auxC" if body.len() > 4 => item.aux_type = Some(Reader::new(&body[4..], "auxC").cstr()),
                    b"irot" if id == heif.primary && !body.is_empty() => heif.rotation = body[0] & 3,
                    b"imir" if id == heif.primary && !body.is_empty() => heif.mirror = Some(body[0] & 1),
                    b"colr" if body.len() >= 4 => match &body[0..4] {
                        b"prof" | b"rICC" => item.icc = Some(prop.body.start + 4..prop.body.end),
                        b"nclx" if body.len() >= 11 => {
                            item.nclx = Some(Nclx {
                                primaries: be16(body, 4),
                                transfer: be16(body, 6),
                                matrix: be16(body, 8),
                                full_range: body[10] & 0x80 != 0,
                            })
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        heif.check_extents(bytes)?;
        Ok(heif)
    }

    fn check_extents(&self, bytes: &[u8]) -> Result<(), Error> {
        for item in &self.items {
            let limit = if item.in_idat {
                self.idat.as_ref().map_or(0, |r| r.len()) as u64
            } else {
                bytes.len() as u64
            };
            if let Some(e) = item.extents.iter().find(|e| e.end > limit || e.start > e.end) {
                return Err(format!(
                    "item {} ({}) points at bytes {}..{}, past the end of the {} ({limit} bytes): truncated or corrupt file",
                    item.id,
                    item.kind_str(),
                    e.start,
                    e.end,
                    if item.in_idat { "'idat' box" } else { "file" }
                ));
            }
        }
        Ok(())
    }

    pub fn item(&self, id: u32) -> Option<&Item> {
        self.items.iter().find(|i| i.id == id)
    }

    /// The bytes of an item, its extents joined (None when it has none or they are not in the file).
    pub fn item_data(&self, bytes: &[u8], item: &Item) -> Option<Vec<u8>> {
        let base = if item.in_idat {
            self.idat.as_ref()?.start
        } else {
            0
        } as u64;
        let mut out = Vec::with_capacity(item.len().min(bytes.len() as u64) as usize);
        for e in &item.extents {
            let (s, t) = (
                usize::try_from(base + e.start).ok()?,
                usize::try_from(base + e.end).ok()?,
            );
            out.extend_from_slice(bytes.get(s..t)?);
        }
        Some(out)
    }

    /// The items that `kind` references point from `id` to.
    pub fn references_from(&self, kind: &[u8; 4], id: u32) -> impl Iterator<Item = u32> + '_ {
        let kind = *kind;
        self.references
            .iter()
            .filter(move |r| r.kind == kind && r.from == id)
            .flat_map(|r| r.to.iter().copied())
    }

    /// What item `id` is to the file.
    pub fn role(&self, item: &Item) -> Role {
        let to_primary = |kind: &[u8; 4]| self.references_from(kind, item.id).any(|t| t == self.primary);
        if item.id == self.primary {
            return Role::Primary;
        }
        if self.references_from(b"dimg", self.primary).any(|t| t == item.id) {
            return Role::Tile;
        }
        if &item.kind == b"Exif" {
            return Role::Exif;
        }
        if item.is_xmp() {
            return Role::Xmp;
        }
        if let Some(aux) = &item.aux_type {
            return if aux.contains(":alpha") {
                Role::Alpha
            } else if aux.contains(":depth") || aux.contains("disparity") {
                Role::Depth
            } else if aux.contains("gainmap") || aux.contains("hdrgainmap") {
                Role::GainMap
            } else {
                Role::OtherAuxiliary
            };
        }
        if to_primary(b"thmb") {
            return Role::Thumbnail;
        }
        if item.is_image() {
            Role::OtherImage
        } else {
            Role::OtherData
        }
    }

    /// The EXIF block of the primary image (the TIFF structure, without the 4-byte offset that
    /// HEIF puts before it), if the file has one.
    pub fn exif(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let item = self
            .items
            .iter()
            .find(|i| &i.kind == b"Exif" && self.references_from(b"cdsc", i.id).any(|t| t == self.primary))
            .or_else(|| self.items.iter().find(|i| &i.kind == b"Exif"))?;
        let data = self.item_data(bytes, item)?;
        let skip = be32(data.get(0..4)?, 0) as usize;
        let tiff = data.get(4 + skip..)?;
        (tiff.starts_with(b"II*\0") || tiff.starts_with(b"MM\0*")).then(|| tiff.to_vec())
    }

    /// Width and height of the primary image as stored (before rotation), from its `ispe`.
    pub fn primary_size(&self) -> Option<(u32, u32)> {
        self.item(self.primary)?.size
    }

    /// Total pixels that the primary image's tiles claim (the primary itself when not a grid).
    pub fn coded_pixels(&self) -> u64 {
        let tiles: Vec<u32> = self.references_from(b"dimg", self.primary).collect();
        let area = |id: u32| {
            self.item(id)
                .and_then(|i| i.size)
                .map_or(0, |(w, h)| w as u64 * h as u64)
        };
        if tiles.is_empty() {
            area(self.primary)
        } else {
            tiles.iter().map(|&t| area(t)).sum()
        }
    }

    /// Checks the sizes the file declares against `max_pixels` before anything is decoded: the
    /// primary image, each tile, and all tiles together (a grid whose tiles claim more pixels
    /// than the limit is refused even when its declared output is small).
    pub fn check_size(&self, max_pixels: u64) -> Result<(u32, u32), Error> {
        let (w, h) = self
            .primary_size()
            .ok_or("the primary image has no size ('ispe')")?;
        if w == 0 || h == 0 {
            return Err("the primary image has zero width or height".into());
        }
        let coded = self.coded_pixels();
        // Tiles overhang the output by less than one tile per row and column: twice the limit
        // leaves room for that and still stops a grid of thousands of full-size tiles.
        if coded > max_pixels.saturating_mul(2) {
            return Err(format!(
                "the image's tiles claim {:.1} megapixels, over the limit of {:.1} megapixels",
                coded as f64 / 1e6,
                max_pixels as f64 / 1e6
            ));
        }
        Ok((w, h))
    }

    /// Top-level boxes that are neither the structure nor the primary image's data: a Samsung
    /// motion photo's video (`mpvd`), a sequence track (`moov`), anything unknown.
    pub fn extra_boxes(&self) -> impl Iterator<Item = &BoxRef> {
        self.top
            .iter()
            .filter(|b| !matches!(&b.kind, b"ftyp" | b"meta" | b"mdat" | b"free" | b"skip" | b"idat"))
    }
}

fn parse_iinf(bytes: &[u8], iinf: &BoxRef) -> Result<Vec<Item>, Error> {
    let body = &bytes[iinf.body.clone()];
    let mut r = Reader::new(body, "iinf");
    let (v, _) = r.full()?;
    let _count = if v == 0 { r.u16()? as u32 } else { r.u32()? };
    let start = iinf.body.start + r.pos;
    let mut items = Vec::new();
    for infe in boxes(bytes, start..iinf.body.end)? {
        if &infe.kind != b"infe" {
            continue;
        }
        let mut r = Reader::new(&bytes[infe.body.clone()], "infe");
        let (v, flags) = r.full()?;
        if v < 2 {
            // Version 0/1 entries (old HEIF drafts) carry no item type; skip them.
            continue;
        }
        let id = if v == 2 { r.u16()? as u32 } else { r.u32()? };
        let _protection = r.u16()?;
        let kind: [u8; 4] = r.take(4)?.try_into().expect("4 bytes");
        let _name = r.cstr();
        let content_type = if &kind == b"mime" { r.cstr() } else { String::new() };
        items.push(Item {
            id,
            kind,
            content_type,
            hidden: flags & 1 == 1,
            ..Item::default()
        });
    }
    Ok(items)
}

/// Where one item's data is, as `iloc` says: (item id, whether in `idat`, extents).
type Location = (u32, bool, Vec<Range<u64>>);

/// Where each item's data is. An extent of length 0 runs to the end of the file or of `idat`;
/// the entries are matched to the items once the whole `meta` box is read (`iloc` may come
/// before `iinf`).
fn parse_iloc(body: &[u8]) -> Result<Vec<Location>, Error> {
    let mut r = Reader::new(body, "iloc");
    let (v, _) = r.full()?;
    let sizes = r.u16()?;
    let (offset_size, length_size, base_size) = (
        (sizes >> 12) as usize,
        (sizes >> 8 & 15) as usize,
        (sizes >> 4 & 15) as usize,
    );
    let index_size = if v == 1 || v == 2 {
        (sizes & 15) as usize
    } else {
        0
    };
    let count = if v < 2 { r.u16()? as u32 } else { r.u32()? };
    let mut locations = Vec::new();
    for _ in 0..count {
        let id = if v < 2 { r.u16()? as u32 } else { r.u32()? };
        let method = if v == 1 || v == 2 { r.u16()? & 15 } else { 0 };
        let _data_ref = r.u16()?;
        let base = r.uint(base_size)?;
        let extents = r.u16()?;
        // Each extent takes at least offset_size + length_size bytes: a count the box cannot
        // hold is refused before anything is reserved for it.
        if (extents as usize) * (offset_size + length_size + index_size).max(1) > r.remaining() {
            return Err("truncated 'iloc' box".into());
        }
        let mut ranges = Vec::with_capacity(extents as usize);
        for _ in 0..extents {
            let _index = r.uint(index_size)?;
            let offset = r.uint(offset_size)?;
            let length = r.uint(length_size)?;
            let start = base.checked_add(offset).ok_or("'iloc' offset overflows")?;
            let end = match length {
                0 => u64::MAX, // to the end: resolved by the caller
                _ => start.checked_add(length).ok_or("'iloc' length overflows")?,
            };
            ranges.push(start..end);
        }
        if method > 1 {
            return Err(format!(
                "item {id} uses iloc construction method {method}, which is not supported"
            ));
        }
        locations.push((id, method == 1, ranges));
    }
    Ok(locations)
}

fn parse_iref(body: &[u8]) -> Result<Vec<Reference>, Error> {
    let mut r = Reader::new(body, "iref");
    let (v, _) = r.full()?;
    let id_size = if v == 0 { 2 } else { 4 };
    let mut refs = Vec::new();
    let children = boxes(body, 4..body.len())?;
    for c in children {
        let mut r = Reader::new(&body[c.body.clone()], "iref");
        let from = r.uint(id_size)? as u32;
        let n = r.u16()? as usize;
        if n * id_size > r.remaining() {
            return Err("truncated 'iref' box".into());
        }
        let to = (0..n)
            .map(|_| r.uint(id_size).map(|x| x as u32))
            .collect::<Result<_, _>>()?;
        refs.push(Reference {
            kind: c.kind,
            from,
            to,
        });
    }
    Ok(refs)
}

fn parse_ipma(body: &[u8]) -> Result<Vec<(u32, Vec<u16>)>, Error> {
    let mut r = Reader::new(body, "ipma");
    let (v, flags) = r.full()?;
    let count = r.u32()? as usize;
    if count > r.remaining() {
        return Err("truncated 'ipma' box".into());
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let id = if v < 1 { r.u16()? as u32 } else { r.u32()? };
        let n = r.u8()? as usize;
        let props = (0..n)
            .map(|_| {
                if flags & 1 == 1 {
                    r.u16().map(|x| x & 0x7FFF)
                } else {
                    r.u8().map(|x| (x & 0x7F) as u16)
                }
            })
            .collect::<Result<_, _>>()?;
        out.push((id, props));
    }
    Ok(out)
}

/// Whether the file's `ftyp` box (which must come first) names `brand` as its major brand or
/// among its compatible brands.
pub(crate) fn has_brand(bytes: &[u8], brand: &[u8]) -> bool {
    let Some(size) = bytes.get(0..4).map(|s| be32(s, 0) as usize) else {
        return false;
    };
    if bytes.get(4..8) != Some(b"ftyp") || size < 16 {
        return false;
    }
    let Some(body) = bytes.get(8..size) else {
        return false;
    };
    body[0..4] == *brand || body[8..].chunks_exact(4).any(|c| c == brand)
}

/// JPEG XL's container: `JXL ` signature box, then `ftyp`, codestream (`jxlc` or `jxlp`
/// pieces) and metadata boxes (`Exif`, `xml `, `jumb`, and `brob` holding any of them
/// Brotli-compressed). A bare codestream (FF 0A) has no boxes.
pub(crate) fn is_jxl_container(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\0\0\0\x0CJXL \r\n\x87\n")
}

/// The EXIF block of a JPEG XL container (TIFF structure), from its `Exif` box.
pub(crate) fn jxl_exif(bytes: &[u8]) -> Option<Vec<u8>> {
    jxl_exif_slice(bytes).map(<[u8]>::to_vec)
}

/// [`jxl_exif`], borrowed from the file.
pub(crate) fn jxl_exif_slice(bytes: &[u8]) -> Option<&[u8]> {
    if !is_jxl_container(bytes) {
        return None;
    }
    let top = boxes(bytes, 0..bytes.len()).ok()?;
    let b = top.iter().find(|b| &b.kind == b"Exif")?;
    let data = &bytes[b.body.clone()];
    let skip = be32(data.get(0..4)?, 0) as usize;
    let tiff = data.get(4usize.checked_add(skip)?..)?;
    (tiff.starts_with(b"II*\0") || tiff.starts_with(b"MM\0*")).then_some(tiff)
}

/// Whether a JPEG XL box is metadata that `strip` removes (everything but the signature, the
/// file type, the codestream, the level and the JPEG-reconstruction data).
pub(crate) fn jxl_box_is_metadata(kind: &[u8; 4]) -> bool {
    !matches!(kind, b"JXL " | b"ftyp" | b"jxlc" | b"jxlp" | b"jxll" | b"jxli")
}

/// One part of a HEIF or JPEG XL file besides the primary image's pixels, as `scan` and
/// `inspect` report it.
#[derive(Clone, Debug)]
pub struct Part {
    pub kind: crate::metadata::Kind,
    /// What it is, for people ("depth map 576x768 (hvc1, 48213 bytes)").
    pub detail: String,
    pub bytes: u64,
    /// The part's content, when it is metadata to read (EXIF, XMP).
    pub data: Option<Vec<u8>>,
}

/// Everything in a HEIF file that is not the primary image or its tiles: metadata items,
/// thumbnails, auxiliary images (alpha, depth, gain maps), other images, and top-level boxes
/// such as a Samsung motion photo's video. An unreadable structure is one part saying so.
pub fn heif_parts(bytes: &[u8]) -> Vec<Part> {
    use crate::metadata::Kind;
    let heif = match Heif::parse(bytes) {
        Ok(h) => h,
        Err(e) => {
            return vec![Part {
                kind: Kind::Other,
                detail: format!("damaged structure: {e}"),
                bytes: 0,
                data: None,
            }]
        }
    };
    let mut parts = Vec::new();
    for item in &heif.items {
        let size = item.size.map(|(w, h)| format!(" {w}x{h}")).unwrap_or_default();
        let what = format!("({}, {} bytes)", item.kind_str(), item.len());
        let (kind, name) = match heif.role(item) {
            Role::Primary | Role::Tile => continue,
            Role::Exif => (Kind::Exif, "EXIF item".to_string()),
            Role::Xmp => (Kind::Xmp, "XMP item".to_string()),
            Role::Thumbnail => (Kind::Thumbnail, format!("thumbnail image{size}")),
            Role::Alpha => continue, // part of the picture: kept for PNG output
            Role::Depth => (Kind::Auxiliary, format!("depth map{size}")),
            Role::GainMap => (Kind::Auxiliary, format!("HDR gain map{size}")),
            Role::OtherAuxiliary => (
                Kind::Auxiliary,
                format!(
                    "auxiliary image{size} \"{}\"",
                    item.aux_type.as_deref().unwrap_or_default()
                ),
            ),
            Role::OtherImage
                if heif
                    .references
                    .iter()
                    .any(|r| &r.kind == b"dimg" && r.to.contains(&item.id)) =>
            {
                continue
            }
            Role::OtherImage => (Kind::Auxiliary, format!("secondary image{size}")),
            Role::OtherData if &item.kind == b"mime" => {
                (Kind::Other, format!("data item \"{}\"", item.content_type))
            }
            Role::OtherData => (Kind::Other, "data item".to_string()),
        };
        let data = matches!(kind, Kind::Exif | Kind::Xmp)
            .then(|| heif.item_data(bytes, item))
            .flatten();
        parts.push(Part {
            kind,
            detail: format!("{name} {what}"),
            bytes: item.len(),
            data,
        });
    }
    for b in heif.extra_boxes() {
        let detail = match &b.kind {
            b"mpvd" => format!(
                "embedded motion-photo video ('mpvd' box, {} bytes)",
                b.range.len()
            ),
            b"moov" => format!(
                "image sequence or video track ('moov' box, {} bytes)",
                b.range.len()
            ),
            _ => format!("top-level '{}' box ({} bytes)", b.kind_str(), b.range.len()),
        };
        parts.push(Part {
            kind: Kind::Trailer,
            detail,
            bytes: b.range.len() as u64,
            data: None,
        });
    }
    parts
}

/// The boxes of a JPEG XL container that are metadata (`Exif`, `xml `, `jumb`, `brob`, ...).
pub fn jxl_parts(bytes: &[u8]) -> Vec<Part> {
    use crate::metadata::Kind;
    if !is_jxl_container(bytes) {
        return Vec::new();
    }
    let top = match boxes(bytes, 0..bytes.len()) {
        Ok(t) => t,
        Err(e) => {
            return vec![Part {
                kind: Kind::Other,
                detail: format!("damaged structure: {e}"),
                bytes: 0,
                data: None,
            }]
        }
    };
    top.iter()
        .filter(|b| jxl_box_is_metadata(&b.kind))
        .map(|b| {
            let body = &bytes[b.body.clone()];
            // A 'brob' box holds another box, Brotli-compressed; its first four bytes say which.
            let inner: [u8; 4] = if &b.kind == b"brob" {
                body.get(0..4).and_then(|k| k.try_into().ok()).unwrap_or(*b"????")
            } else {
                b.kind
            };
            let kind = match &inner {
                b"Exif" => Kind::Exif,
                b"xml " => Kind::Xmp,
                b"jumb" => Kind::C2pa,
                _ => Kind::Other,
            };
            let compressed = if &b.kind == b"brob" {
                ", Brotli-compressed"
            } else {
                ""
            };
            let data = (&b.kind != b"brob").then(|| body.to_vec());
            let name = BoxRef {
                kind: inner,
                range: 0..0,
                body: 0..0,
            }
            .kind_str();
            Part {
                kind,
                detail: format!("'{name}' box ({} bytes{compressed})", b.range.len()),
                bytes: b.range.len() as u64,
                data,
            }
        })
        .collect()
}

/// A piece of a rewritten file: a range of the input, copied as it is, or new bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    Input(Range<usize>),
    New(Vec<u8>),
}

/// A JPEG XL file without its metadata boxes, box by box (the codestream is copied untouched),
/// with `exif` (TIFF structure) and `xmp` added as new boxes when given. A bare codestream is
/// returned whole, wrapped in a container only when there is something to add.
pub(crate) fn jxl_strip(bytes: &[u8], exif: Option<&[u8]>, xmp: Option<&[u8]>) -> Result<Vec<Piece>, Error> {
    let mut out = Vec::new();
    if is_jxl_container(bytes) {
        let top = boxes(bytes, 0..bytes.len())?;
        if !top.iter().any(|b| matches!(&b.kind, b"jxlc" | b"jxlp")) {
            return Err("no codestream box (truncated file?)".into());
        }
        out.extend(
            top.iter()
                .filter(|b| !jxl_box_is_metadata(&b.kind))
                .map(|b| Piece::Input(b.range.clone())),
        );
    } else if exif.is_some() || xmp.is_some() {
        out.push(Piece::New(
            b"\0\0\0\x0CJXL \r\n\x87\n\0\0\0\x14ftypjxl \0\0\0\0jxl ".to_vec(),
        ));
        let mut header = ((bytes.len() + 8) as u32).to_be_bytes().to_vec();
        header.extend_from_slice(b"jxlc");
        out.push(Piece::New(header));
        out.push(Piece::Input(0..bytes.len()));
    } else {
        out.push(Piece::Input(0..bytes.len()));
    }
    let mut new_box = |kind: &[u8; 4], prefix: &[u8], body: &[u8]| {
        let mut b = ((8 + prefix.len() + body.len()) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(prefix);
        b.extend_from_slice(body);
        out.push(Piece::New(b));
    };
    if let Some(exif) = exif {
        // The 4-byte offset from the box body to the TIFF header: 0.
        new_box(b"Exif", &[0, 0, 0, 0], exif);
    }
    if let Some(xmp) = xmp {
        new_box(b"xml ", &[], xmp);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn a_box_longer_than_its_parent_is_an_error() {
        let mut b = bx(b"ftyp", b"heic\0\0\0\0");
        b.extend_from_slice(&[0, 0, 0x10, 0, b'm', b'd', b'a', b't']);
        let err = boxes(&b, 0..b.len()).unwrap_err();
        assert!(
            err.contains("'mdat'") && err.contains("claims 4096 bytes"),
            "{err}"
        );
    }

    #[test]
    fn sixty_four_bit_sizes_and_to_the_end_boxes_are_read() {
        let mut b = vec![
            0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0, 0, 0, 0, 0, 0, 20, 1, 2, 3, 4,
        ];
        b.extend_from_slice(&[0, 0, 0, 0, b'f', b'r', b'e', b'e', 9, 9]);
        let found = boxes(&b, 0..b.len()).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].body, 16..20);
        assert_eq!(found[1].range, 20..30);
    }

    #[test]
    fn an_iloc_count_the_box_cannot_hold_is_refused_without_allocating() {
        // Version 0, offset/length 4 bytes, one item with 65535 extents and no room for them.
        let body = [0, 0, 0, 0, 0x44, 0x00, 0, 1, 0, 1, 0, 0, 0xFF, 0xFF];
        assert_eq!(parse_iloc(&body).unwrap_err(), "truncated 'iloc' box");
    }
}
