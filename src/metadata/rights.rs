//! The rights notice, the only metadata photoshield writes on purpose besides the colour
//! profile: an XMP packet (dc:rights, dc:creator, xmpRights, and the PLUS "data mining
//! prohibited" value) beside the EXIF Copyright that `strip` writes with the orientation.

use crate::error::Result;

use super::strip::{strip, StripOptions};

/// What `--rights` writes: only what the user typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rights {
    /// Copyright notice (dc:rights and EXIF Copyright), e.g. "© 2024 Jane Doe".
    pub notice: String,
    /// dc:creator, when given.
    pub creator: Option<String>,
    /// xmpRights:WebStatement: a URL with the licence terms, when given.
    pub web_statement: Option<String>,
}

/// The IPTC Photo Metadata "Data Mining" value that prohibits AI/ML training (PLUS vocabulary).
pub const DMI_PROHIBITED_AIML: &str = "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING";

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The XMP packet of a rights notice.
pub(crate) fn rights_xmp(rights: &Rights) -> String {
    let mut props = String::new();
    props.push_str("   <xmpRights:Marked>True</xmpRights:Marked>\n");
    if let Some(url) = &rights.web_statement {
        props.push_str(&format!(
            "   <xmpRights:WebStatement>{}</xmpRights:WebStatement>\n",
            xml_escape(url)
        ));
    }
    props.push_str(&format!(
        "   <plus:DataMining>{DMI_PROHIBITED_AIML}</plus:DataMining>\n"
    ));
    props.push_str(&format!(
        "   <dc:rights><rdf:Alt><rdf:li xml:lang=\"x-default\">{}</rdf:li></rdf:Alt></dc:rights>\n",
        xml_escape(&rights.notice)
    ));
    if let Some(creator) = &rights.creator {
        props.push_str(&format!(
            "   <dc:creator><rdf:Seq><rdf:li>{}</rdf:li></rdf:Seq></dc:creator>\n",
            xml_escape(creator)
        ));
    }
    format!(
        "<?xpacket begin=\"\u{FEFF}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n\
<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n\
 <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n\
  <rdf:Description rdf:about=\"\"\n\
    xmlns:dc=\"http://purl.org/dc/elements/1.1/\"\n\
    xmlns:xmpRights=\"http://ns.adobe.com/xap/1.0/rights/\"\n\
    xmlns:plus=\"http://ns.useplus.org/ldf/xmp/1.0/\">\n\
{props}  </rdf:Description>\n\
 </rdf:RDF>\n\
</x:xmpmeta>\n\
<?xpacket end=\"w\"?>"
    )
}

/// Adds the rights packets to a freshly encoded file (which holds no metadata but ICC).
pub(crate) fn add_rights(bytes: Vec<u8>, rights: &Rights) -> Result<Vec<u8>> {
    let options = StripOptions {
        keep_icc: true,
        keep_orientation: false,
        rights: Some(rights.clone()),
    };
    strip(&bytes, &options)
}
