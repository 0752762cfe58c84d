"""The page serve-cnn answers at GET /: choose or drop a photo, see its top classes as bars of calibrated
probability and, for a flat run, the Grad-CAM heatmap beside it. Self-contained (no CDN, no external file),
keyboard-usable (a labelled file input and a button), readable at a phone's width."""
import html
import json

STYLE = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:56rem;padding:1rem;color:#222}
h1{font-size:1.4rem;margin:.2rem 0}.facts{color:#555;font-size:.9rem}
#drop{border:2px dashed #888;border-radius:.5rem;padding:1.2rem;text-align:center;margin:1rem 0}
#drop.over{background:#eef}label{font-weight:600}
.pictures{display:flex;flex-wrap:wrap;gap:1rem}.pictures figure{margin:0;flex:1 1 14rem}
.pictures img{width:100%;max-width:22rem;border-radius:.3rem}
.bar{display:flex;align-items:center;gap:.5rem;margin:.25rem 0}.bar span{flex:0 0 7rem;overflow-wrap:anywhere}
.bar meter{flex:1;height:1.1rem}.bar b{flex:0 0 4rem;text-align:right}
#status{min-height:1.2rem;color:#a00}
button:focus,input:focus{outline:3px solid #36c;outline-offset:2px}
"""

SCRIPT = """
const topK = %(top)d, needsToken = %(needs_token)s;
const $ = id => document.getElementById(id);
async function send(file) {
  $('status').textContent = 'classifying ' + file.name + ' ...';
  $('photo').src = URL.createObjectURL(file); $('photo').alt = file.name;
  const form = new FormData(); form.append('file', file, file.name);
  const headers = needsToken && $('token').value ? {Authorization: 'Bearer ' + $('token').value} : {};
  let answer;
  try {
    const response = await fetch('predict?cam=1&top=' + topK, {method: 'POST', body: form, headers});
    answer = await response.json();
    if (!response.ok) { $('status').textContent = answer.error || ('error ' + response.status); return; }
  } catch (error) { $('status').textContent = 'the server did not answer: ' + error; return; }
  const result = answer[0], list = $('results'); list.replaceChildren();
  result.predictions.forEach((p, i) => {
    const row = document.createElement('div'); row.className = 'bar';
    const name = document.createElement('span'); name.textContent = p['class'];
    if (i === 0) name.id = 'top-class';
    const meter = document.createElement('meter'); meter.value = p.probability; meter.max = 1;
    meter.setAttribute('aria-label', p['class']);
    const value = document.createElement('b'); value.textContent = (100 * p.probability).toFixed(1) + '%%';
    row.append(name, meter, value); list.append(row);
  });
  if (result.cam) { $('cam').src = result.cam; $('cam').hidden = false; $('cam-note').textContent = 'Grad-CAM of ' + result.predictions[0]['class']; }
  else { $('cam').hidden = true; $('cam-note').textContent = result.cam_note || ''; }
  $('status').textContent = '';
}
$('file').addEventListener('change', e => e.target.files[0] && send(e.target.files[0]));
$('again').addEventListener('click', () => $('file').files[0] && send($('file').files[0]));
const drop = $('drop');
drop.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', e => { e.preventDefault(); drop.classList.remove('over');
  if (e.dataTransfer.files[0]) send(e.dataTransfer.files[0]); });
"""


def page_html(name, kind, classes, test_top1, cam_note, needs_token, top=5):
    """The whole page as one HTML string; every value from the run is escaped."""
    e = html.escape
    accuracy = f"test top-1 {test_top1:.3f}" if test_top1 is not None else "no test figure recorded"
    token = ('<p><label for="token">Bearer token</label> <input id="token" type="password" '
             'autocomplete="off"></p>') if needs_token else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(name)}: serve-cnn</title><style>{STYLE}</style></head>
<body><main>
<h1>{e(name)}</h1>
<p class="facts">a {e(kind)} run; {len(classes)} classes: {e(", ".join(classes))}; {e(accuracy)}</p>
{token}
<div id="drop"><p><label for="file">Choose a photo</label> or drop one here</p>
<input id="file" type="file" accept="image/*"> <button id="again" type="button">Classify again</button></div>
<p id="status" role="status" aria-live="polite"></p>
<div class="pictures"><figure><img id="photo" alt=""><figcaption>the photo</figcaption></figure>
<figure><img id="cam" alt="Grad-CAM heatmap of the top class" hidden><figcaption id="cam-note">{e(cam_note or "")}
</figcaption></figure></div>
<section aria-label="top classes" id="results"></section>
</main><script>{SCRIPT % {"top": top, "needs_token": json.dumps(bool(needs_token))}}</script></body></html>"""
