// The worker's side (web/build.sh puts wasm-bindgen's no-modules glue, which defines
// `wasm_bindgen`, in front of it). One photo at a time: the page posts its bytes (transferred,
// not copied), the output goes back the same way, and the pipeline's buffers are freed.

let module = null;
let ready = null;

function init(m) {
  module = m;
  ready = wasm_bindgen({ module_or_path: m });
  return ready;
}

function report(p) {
  try { return JSON.parse(p.report); } catch { return null; }
}

self.onmessage = async (e) => {
  const m = e.data;
  if (m.type === 'init') {
    init(m.module);
    return;
  }
  const reply = { type: 'result' };
  const transfer = [];
  try {
    await ready;
    const bytes = new Uint8Array(m.buffer);
    if (m.type === 'inspect') {
      reply.inspection = JSON.parse(wasm_bindgen.inspect(bytes));
    } else {
      const t0 = performance.now();
      const p = wasm_bindgen.protect(bytes, m.name, m.inFolder, m.settings);
      reply.ms = performance.now() - t0;
      const out = p.take_bytes();
      reply.outputName = p.name;
      reply.crc32 = p.crc32;
      const r = report(p);
      p.free();
      reply.report = r;
      if (r) [reply.width, reply.height] = r.output_size;
      reply.bytes = out.buffer;
      transfer.push(out.buffer);
      if (m.type === 'preview') {
        const before = wasm_bindgen.original_preview(bytes, 1600);
        reply.before = before.buffer;
        transfer.push(before.buffer);
      }
    }
    reply.ok = true;
  } catch (err) {
    reply.ok = false;
    reply.message = err && err.message ? err.message : String(err);
    if (err instanceof WebAssembly.RuntimeError) {
      // A panic aborts the instance (panic=abort): say so, and start a fresh one.
      reply.message = `internal error (${reply.message}); please report this photo`;
      init(module);
    }
  }
  try { wasm_bindgen.release_buffers(); } catch { /* instance being replaced */ }
  self.postMessage(reply, transfer);
};
