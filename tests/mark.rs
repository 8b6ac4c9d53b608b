//! The invisible mark, in process: embed, attack, detect.

mod common;

use photoshield::codec::{self, EncodeSettings};
use photoshield::mark::{self, Detector, Key, MarkId};
use photoshield::{Layout, OutputFormat, Pixels};

fn textured(w: u32, h: u32, seed: u32) -> Pixels {
    Pixels::new(w, h, Layout::Rgb8, common::landscape(w, h, seed))
}

fn key() -> Key {
    Key::from_bytes(*b"photoshield test key, not secret")
}

fn jpeg(p: &Pixels, quality: u8) -> Pixels {
    let bytes = codec::encode(p, EncodeSettings { format: OutputFormat::Jpeg, quality }, None).unwrap();
    photoshield::compare::load(&bytes).unwrap()
}

fn resize_to_width(p: &Pixels, w: u32) -> Pixels {
    let h = (p.height as f64 * w as f64 / p.width as f64).round() as u32;
    photoshield::resize::resize_exact(p, w, h).unwrap()
}

fn crop(p: &Pixels, x0: u32, y0: u32, w: u32, h: u32) -> Pixels {
    let ch = p.channels();
    let mut data = Vec::with_capacity((w * h) as usize * ch);
    for y in y0..y0 + h {
        let start = (y as usize * p.width as usize + x0 as usize) * ch;
        data.extend_from_slice(&p.data[start..start + w as usize * ch]);
    }
    Pixels::new(w, h, p.layout, data)
}

#[test]
fn probe() {
    let id = MarkId::parse("0xC0FFEE42", 32).unwrap();
    let original = textured(3000, 2000, 3);
    let mut marked = original.clone();
    let e = mark::embed(&mut marked, &key(), id).unwrap();
    eprintln!("embed {e:?} psnr {:.2}", photoshield::compare::psnr(&original, &marked));
    let d = Detector::new(&key());
    let t = std::time::Instant::now();
    eprintln!("none {:?} {:?}", d.detect(&marked), t.elapsed());
    eprintln!("unmarked {:?}", d.detect(&original));
    let small = jpeg(&resize_to_width(&marked, 1080), 75);
    let t = std::time::Instant::now();
    eprintln!("1080+q75 {:?} {:?}", d.detect(&small), t.elapsed());
    let c = crop(&marked, 150, 100, 2700, 1800);
    let t = std::time::Instant::now();
    eprintln!("crop90 {:?} {:?}", d.detect(&c), t.elapsed());
    eprintln!("q50 {:?}", d.detect(&jpeg(&marked, 50)));
}
