use photoshield::mark::{self, Key, MarkId};
use photoshield::{Layout, Pixels};
fn main() {
    let (w, h) = (6000u32, 4000u32);
    let mut data = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h {
        for x in 0..w {
            let t = ((x.wrapping_mul(2654435761) ^ y.wrapping_mul(40503)) >> 13) as u8 & 31;
            data.extend([(x / 24) as u8 / 2 + t, (y / 16) as u8 / 2 + t, 128 + t]);
        }
    }
    let mut p = Pixels::new(w, h, Layout::Rgb8, data);
    let key = Key::from_bytes([42; 32]);
    let id = MarkId::parse("5", 32).unwrap();
    for _ in 0..5 {
        let t = std::time::Instant::now();
        mark::embed(&mut p, &key, id).unwrap();
        eprintln!("total {:?}", t.elapsed());
    }
}
