// A ZIP archive of already-compressed photos, "stored" (photos do not compress further), with
// UTF-8 names and the folder tree in the paths. The CRC-32 of each file comes from the worker
// that made it, so building the archive is only a matter of headers: no pass over the bytes on
// the main thread. Sizes past 4 GB (ZIP64) are refused with a clear error.

const enc = new TextEncoder();

function header(size) {
  const buf = new ArrayBuffer(size);
  return [new Uint8Array(buf), new DataView(buf)];
}

// DOS date and time of now (the ZIP's entries carry the moment they were packed).
function dosTime(d) {
  const time = (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1);
  const date = ((d.getFullYear() - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate();
  return [time, date];
}

// files: [{ path, blob, crc32, size }] -> Blob
export function zip(files) {
  const [time, date] = dosTime(new Date());
  const parts = [];
  const central = [];
  let offset = 0;
  for (const f of files) {
    const name = enc.encode(f.path);
    if (offset + 30 + name.length + f.size > 0xffffffff) {
      throw new Error('the ZIP would pass 4 GB: download the photos one by one or in smaller batches');
    }
    const [local, l] = header(30);
    l.setUint32(0, 0x04034b50, true);
    l.setUint16(4, 20, true); // version needed
    l.setUint16(6, 0x0800, true); // UTF-8 names
    l.setUint16(8, 0, true); // stored
    l.setUint16(10, time, true);
    l.setUint16(12, date, true);
    l.setUint32(14, f.crc32 >>> 0, true);
    l.setUint32(18, f.size, true);
    l.setUint32(22, f.size, true);
    l.setUint16(26, name.length, true);
    l.setUint16(28, 0, true);
    parts.push(local, name, f.blob);
    const [cen, c] = header(46);
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(4, 20, true);
    c.setUint16(6, 20, true);
    c.setUint16(8, 0x0800, true);
    c.setUint16(10, 0, true);
    c.setUint16(12, time, true);
    c.setUint16(14, date, true);
    c.setUint32(16, f.crc32 >>> 0, true);
    c.setUint32(20, f.size, true);
    c.setUint32(24, f.size, true);
    c.setUint16(28, name.length, true);
    c.setUint32(42, offset, true);
    central.push(cen, name);
    offset += 30 + name.length + f.size;
  }
  const centralSize = central.reduce((n, p) => n + p.byteLength, 0);
  const [end, d] = header(22);
  d.setUint32(0, 0x06054b50, true);
  d.setUint16(8, files.length, true);
  d.setUint16(10, files.length, true);
  d.setUint32(12, centralSize, true);
  d.setUint32(16, offset, true);
  return new Blob([...parts, ...central, end], { type: 'application/zip' });
}
