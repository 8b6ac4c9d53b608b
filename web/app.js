// The page: collects photos (drop, file and folder pickers), shows what each gives away, runs
// the pipeline in a pool of Web Workers (one photo per worker at a time) and hands back each
// output or one ZIP. The main thread only moves buffers and updates the page: decoding,
// protecting and the ZIP's checksums happen in the workers.

import { zip } from './zip.js';

const $ = (id) => document.getElementById(id);
const form = $('form');
const SETTINGS_KEY = 'photoshield.settings.v1';
const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'jpe', 'jfif', 'png', 'webp', 'tif', 'tiff', 'gif', 'heic', 'heif',
  'avif', 'jxl', 'bmp', 'dng', 'cr2', 'cr3', 'nef', 'arw', 'orf', 'rw2', 'raf', 'mpo'];

// ---------------------------------------------------------------- settings

function loadSettings() {
  let saved = {};
  try { saved = JSON.parse(localStorage.getItem(SETTINGS_KEY) || '{}'); } catch { saved = {}; }
  for (const el of form.elements) {
    if (el.name && typeof saved[el.name] === 'string') el.value = saved[el.name];
  }
}

function saveSettings() {
  const values = {};
  for (const el of form.elements) if (el.name) values[el.name] = el.value;
  try { localStorage.setItem(SETTINGS_KEY, JSON.stringify(values)); } catch { /* private mode */ }
}

// The settings as the wasm module takes them (web/wasm/src/lib.rs, `Settings`).
function settingsJson() {
  const v = (name) => form.elements[name].value;
  const now = new Date();
  return JSON.stringify({
    preset: v('preset') || null,
    format: v('format') || null,
    text: v('text') || null,
    position: v('position'),
    notice: v('notice') || null,
    noticeStyle: v('noticeStyle'),
    rights: v('rights') || null,
    creator: v('creator') || null,
    perturb: v('perturb') || null,
    today: [now.getUTCFullYear(), now.getUTCMonth() + 1, now.getUTCDate()],
  });
}

// ---------------------------------------------------------------- the worker pool

let wasmModule = null;
let workerUrl = null;
const pool = [];
const queue = [];
let nextId = 1;

async function loadEngine() {
  // Both fetched once, at load: nothing is fetched afterwards. The worker is made from a Blob
  // URL (worker-src blob:), so it needs no further request either.
  const [wasm, script] = await Promise.all([
    // A server that does not send application/wasm for .wasm defeats the streaming compile.
    WebAssembly.compileStreaming(fetch('photoshield_web_bg.wasm')).catch(() => fetch('photoshield_web_bg.wasm')
      .then((r) => r.arrayBuffer()).then((b) => WebAssembly.compile(b))),
    fetch('worker.js').then((r) => r.text()),
  ]);
  wasmModule = wasm;
  workerUrl = URL.createObjectURL(new Blob([script], { type: 'text/javascript' }));
  const size = Math.max(1, Math.min(navigator.hardwareConcurrency || 2, 8));
  for (let i = 0; i < size; i++) pool.push(startWorker());
  pump();
}

function startWorker() {
  const slot = { worker: null, job: null };
  spawn(slot);
  return slot;
}

function spawn(slot) {
  slot.worker = new Worker(workerUrl);
  slot.worker.onmessage = (e) => finish(slot, e.data);
  slot.worker.onerror = (e) => {
    // The worker died (out of memory, for one): fail its photo, start a fresh worker.
    e.preventDefault();
    const job = slot.job;
    slot.job = null;
    slot.worker.terminate();
    spawn(slot);
    if (job) job.reject(new Error('the browser stopped the worker (not enough memory?)'));
    pump();
  };
  slot.worker.postMessage({ type: 'init', module: wasmModule });
}

function finish(slot, msg) {
  if (msg.type === 'ready') return;
  const job = slot.job;
  slot.job = null;
  if (job) (msg.ok ? job.resolve(msg) : job.reject(new Error(msg.message)));
  pump();
}

// Runs `kind` on `entry` in the next free worker; the file is read only then, so a batch holds
// at most one input per worker in memory.
function run(kind, entry, extra = {}) {
  return new Promise((resolve, reject) => {
    queue.push({ kind, entry, extra, resolve, reject });
    pump();
  });
}

async function pump() {
  for (const slot of pool) {
    if (slot.job || queue.length === 0) continue;
    const job = queue.shift();
    slot.job = job;
    try {
      const buffer = await job.entry.file.arrayBuffer();
      slot.worker.postMessage({
        type: job.kind, buffer, name: job.entry.name, inFolder: job.entry.root !== null, ...job.extra,
      }, [buffer]);
    } catch (err) {
      slot.job = null;
      job.reject(new Error(`cannot read the file: ${err.message}`));
      pump();
    }
  }
}

// ---------------------------------------------------------------- collecting photos

// One photo: `root` is the folder it came in (null when picked alone), `name` its path inside
// that folder ("day2/a.jpg") or its file name, as `photoshield protect FOLDER` sees it.
let entries = [];

function add(file, root, name) {
  const ext = (name.split('.').pop() || '').toLowerCase();
  const inFolder = root !== null;
  if (inFolder && name.split('/').pop().startsWith('.')) return;
  const entry = {
    id: nextId++, file, root, name, walked: inFolder, imageExt: IMAGE_EXTENSIONS.includes(ext),
    state: 'new', output: null, li: null,
  };
  entries.push(entry);
  render(entry);
  inspectEntry(entry);
}

function addFiles(fileList) {
  for (const file of fileList) {
    const rel = file.webkitRelativePath || '';
    if (rel.includes('/')) {
      const i = rel.indexOf('/');
      add(file, rel.slice(0, i), rel.slice(i + 1));
    } else {
      add(file, null, file.name);
    }
  }
  show();
}

async function walkEntry(entry, root, prefix, out) {
  if (entry.isFile) {
    const file = await new Promise((res, rej) => entry.file(res, rej));
    out.push([file, root, prefix + file.name]);
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    const children = [];
    for (;;) {
      const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
      if (batch.length === 0) break;
      children.push(...batch);
    }
    children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const sub = root === null ? '' : `${prefix}${entry.name}/`;
    const nextRoot = root === null ? entry.name : root;
    for (const child of children) await walkEntry(child, nextRoot, sub, out);
  }
}

async function onDrop(e) {
  e.preventDefault();
  $('drop').classList.remove('over');
  const items = [...(e.dataTransfer.items || [])].map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
  if (items.length && items.every(Boolean)) {
    const found = [];
    for (const item of items) {
      if (item.isDirectory) await walkEntry(item, null, '', found);
      else await walkEntry(item, undefined, '', found);
    }
    for (const [file, root, name] of found) add(file, root === undefined ? null : root, root === undefined ? file.name : name);
    show();
  } else {
    addFiles(e.dataTransfer.files);
  }
}

// ---------------------------------------------------------------- what a photo gives away

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// The `inspect` report in words. Each finding's detail is the library's own text.
function describe(ins) {
  const lines = [];
  const fmt = (n) => n.toFixed(4);
  for (const f of ins.findings) {
    if (!f.leak) continue;
    switch (f.category) {
      case 'gps': {
        if (ins.gps) {
          const [lat, lon] = ins.gps;
          // Shown, never fetched: a link only leaves the page if the person follows it.
          const link = el('a', {
            href: `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=15/${lat}/${lon}`,
            rel: 'noopener noreferrer', target: '_blank',
          }, 'map link');
          lines.push(['gps', `location ${fmt(lat)}, ${fmt(lon)} (a `, link, ' is NOT fetched)']);
        } else {
          lines.push(['gps', `location data: ${f.detail}`]);
        }
        break;
      }
      case 'serial': lines.push(['serial', `camera serial ${f.detail.replace(/^[^:]*:\s*/, '')}`]); break;
      case 'owner': lines.push(['owner', `owner: ${f.detail.replace(/^[^:]*:\s*/, '')}`]); break;
      case 'thumbnail': lines.push(['thumbnail', `thumbnail: ${f.detail}`]); break;
      case 'camera': lines.push(['camera', `camera: ${f.detail}`]); break;
      case 'time': lines.push(['time', `time taken: ${f.detail}`]); break;
      default: lines.push([f.category, `${f.category.replace(/-/g, ' ')}: ${f.detail}`]);
    }
  }
  return lines;
}

async function inspectEntry(entry) {
  try {
    const msg = await run('inspect', entry);
    entry.inspection = msg.inspection;
    const list = entry.li.querySelector('.leaks');
    list.replaceChildren();
    const lines = describe(msg.inspection.inspection);
    if (lines.length === 0) list.append(el('li', { class: 'clean' }, 'nothing identifying found'));
    else entry.li.querySelector('.gives').hidden = false;
    for (const [cat, ...parts] of lines) list.append(el('li', { 'data-category': cat }, ...parts));
    if (entry.state === 'new') setState(entry, 'ready', '');
  } catch (err) {
    if (entry.walked && !entry.imageExt) {
      setState(entry, 'skipped', 'not an image, skipped');
    } else if (entry.state === 'new') {
      setState(entry, 'error', err.message);
    }
  }
}

// ---------------------------------------------------------------- the list

function render(entry) {
  const shown = entry.root === null ? entry.name : `${entry.root}/${entry.name}`;
  entry.li = el('li', { 'data-name': shown, class: 'file' },
    el('div', { class: 'head' },
      el('button', { type: 'button', class: 'name quiet', title: 'preview' }, shown),
      el('span', { class: 'state' }, 'reading…'),
      el('span', { class: 'download' })),
    el('p', { class: 'gives', hidden: '' }, 'What the original gives away:'),
    el('ul', { class: 'leaks' }));
  entry.li.querySelector('.name').onclick = () => preview(entry);
  $('files').append(entry.li);
}

function setState(entry, state, text) {
  entry.state = state;
  entry.li.dataset.state = state;
  entry.li.querySelector('.state').textContent = text;
}

function show() {
  $('batch').hidden = entries.length === 0;
  updateStatus();
  const first = entries.find((e) => !(e.walked && !e.imageExt));
  if (first && $('preview').hidden) preview(first);
}

function updateStatus() {
  const done = entries.filter((e) => e.state === 'done').length;
  const failed = entries.filter((e) => e.state === 'error').length;
  const skipped = entries.filter((e) => e.state === 'skipped').length;
  const total = entries.length;
  $('progress').max = Math.max(1, total);
  $('progress').value = done + failed + skipped;
  const parts = [`${total} photo${total === 1 ? '' : 's'}`];
  if (done) parts.push(`${done} protected`);
  if (failed) parts.push(`${failed} failed`);
  if (skipped) parts.push(`${skipped} skipped`);
  $('status').textContent = parts.join(', ');
  $('zip').disabled = done === 0 || running;
}

// ---------------------------------------------------------------- protecting

let running = false;

function zipPath(entry) {
  return entry.root === null ? entry.output.name : `${entry.root}-protected/${entry.output.name}`;
}

async function protectAll() {
  if (running) return;
  running = true;
  $('protect').disabled = true;
  const settings = settingsJson();
  const todo = entries.filter((e) => e.state !== 'skipped');
  const started = performance.now();
  await Promise.all(todo.map(async (entry) => {
    setState(entry, 'working', 'protecting…');
    entry.li.querySelector('.download').replaceChildren();
    try {
      const msg = await run('protect', entry, { settings });
      const blob = new Blob([msg.bytes]);
      entry.output = { name: msg.outputName, blob, crc32: msg.crc32, size: msg.bytes.byteLength, ms: msg.ms };
      setState(entry, 'done', `protected in ${Math.round(msg.ms)} ms${entry.li.querySelector('.gives').hidden ? '' : ': none of this is in the copy'}`);
      const a = el('a', { href: URL.createObjectURL(blob), download: msg.outputName.split('/').pop() }, `download ${msg.outputName.split('/').pop()}`);
      entry.li.querySelector('.download').append(a);
    } catch (err) {
      if (entry.walked && !entry.imageExt) setState(entry, 'skipped', 'not an image, skipped');
      else setState(entry, 'error', `error: ${err.message}`);
    }
    updateStatus();
  }));
  running = false;
  $('protect').disabled = false;
  document.body.dataset.batchMs = String(Math.round(performance.now() - started));
  document.body.dataset.batch = 'done';
  updateStatus();
}

function downloadZip() {
  const done = entries.filter((e) => e.state === 'done');
  const blob = zip(done.map((e) => ({ path: zipPath(e), blob: e.output.blob, crc32: e.output.crc32, size: e.output.size })));
  const roots = [...new Set(done.map((e) => e.root).filter((r) => r !== null))];
  const a = el('a', { href: URL.createObjectURL(blob), download: roots.length === 1 ? `${roots[0]}-protected.zip` : 'photoshield-protected.zip' });
  document.body.append(a);
  a.click();
  a.remove();
}

// ---------------------------------------------------------------- preview

let previewUrls = [];
let previewed = null;

async function preview(entry) {
  previewed = entry;
  $('preview').hidden = false;
  $('preview-name').textContent = entry.root === null ? entry.name : `${entry.root}/${entry.name}`;
  $('preview-note').textContent = 'making the preview…';
  try {
    const msg = await run('preview', entry, { settings: settingsJson() });
    previewUrls.forEach((u) => URL.revokeObjectURL(u));
    const before = URL.createObjectURL(new Blob([msg.before], { type: 'image/png' }));
    const after = URL.createObjectURL(new Blob([msg.bytes]));
    previewUrls = [before, after];
    $('before').src = before;
    $('after').src = after;
    // The crop at 100% shows the watermark's corner (the centre for a centred or tiled one).
    const position = form.elements.position.value;
    $('crop').onload = () => {
      const img = $('crop');
      const box = img.parentElement;
      const free = [box.clientWidth - img.naturalWidth, box.clientHeight - img.naturalHeight];
      const x = position.endsWith('left') ? 0 : position.endsWith('right') ? free[0] : free[0] / 2;
      const y = position.startsWith('top') ? 0 : position.startsWith('bottom') ? free[1] : free[1] / 2;
      img.style.left = `${Math.round(x)}px`;
      img.style.top = `${Math.round(y)}px`;
    };
    $('crop').src = after;
    document.querySelector('#preview .compare').hidden = false;
    $('preview-note').textContent = `Output ${msg.outputName.split('/').pop()}, ${msg.width} x ${msg.height} px, ${(msg.bytes.byteLength / 1024).toFixed(0)} KB.`;
  } catch (err) {
    $('before').removeAttribute('src');
    $('after').removeAttribute('src');
    $('crop').removeAttribute('src');
    document.querySelector('#preview .compare').hidden = true;
    $('preview-note').textContent = `No preview: ${err.message}`;
  }
}

// ---------------------------------------------------------------- wiring

loadSettings();
form.addEventListener('change', () => {
  saveSettings();
  if (previewed && entries.includes(previewed)) preview(previewed);
});
form.addEventListener('submit', (e) => e.preventDefault());
$('pick-files').onchange = (e) => { addFiles(e.target.files); e.target.value = ''; };
$('pick-folder').onchange = (e) => { addFiles(e.target.files); e.target.value = ''; };
if (!('webkitdirectory' in document.createElement('input'))) $('pick-folder-label').hidden = true;
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', onDrop);
$('protect').onclick = protectAll;
$('zip').onclick = downloadZip;
$('clear').onclick = () => {
  entries = [];
  $('files').replaceChildren();
  $('preview').hidden = true;
  previewed = null;
  show();
};

loadEngine().then(() => { document.body.dataset.engine = 'ready'; }, (err) => {
  document.body.dataset.engine = 'failed';
  $('drop').append(el('p', { class: 'error' }, `The engine could not start: ${err.message}`));
});
