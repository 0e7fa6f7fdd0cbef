#!/usr/bin/env python
"""Real-browser check of the explorer widget (issue 13): one result line, `PASS/FAIL/SKIP browser_check: ...`.

    python benchmarks/browser_check.py                      # writes nbs/images/explorer.png
    python benchmarks/browser_check.py --out /tmp/x.png --keep   # keep the temporary JupyterLab folder

It starts JupyterLab (the `dev` extra) on a free port in a temporary folder, writes there a small notebook that
shows `Explorer.widget(labelling=True)` on 60 synthetic images with `%matplotlib widget` (ipympl), opens it in
headless Chromium driven by Playwright's Python package, runs it, and then, as a user would:

1. waits for the widget and the live map (the ipympl canvas) to render;
2. clicks the map on the point of an image the kernel chose (the most isolated one) and waits until the status
   line names that image as the query;
3. picks a class, presses "label shot", picks "logreg", presses "propagate", "least confident", "confirm, next" and
   "export labels", waiting each time for the status line to answer;
4. reads the exported labels file (60 rows; 8 by hand: 6 given in the notebook, the clicked image with its class,
   the confirmed shot) and saves a screenshot of the widget (`--out`, a 256-colour PNG).

The labels spread with `cplr_nb.curate.propagate_labels` where it exists, else with a stand-in vote of the nearest
labelled shots. It uses Debian's Chromium (`apt-get install chromium`; `--chromium` for another executable), never
`playwright install`. Without Chromium or Playwright it prints a SKIP line and exits 0; a failure prints FAIL with the
step that failed and the end of JupyterLab's log, and exits 1. The Jupyter server and its kernel are stopped at the end.
"""
import argparse, json, os, secrets, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

T0 = time.perf_counter()
def log(msg): print(f"[browser_check {time.perf_counter() - T0:5.1f} s] {msg}", file=sys.stderr, flush=True)

class Failure(Exception): "A step of the check failed; the message says which."

DEMO = r'''
import json, numpy as np
from pathlib import Path
from cplr_nb.explore import Explorer
try: from cplr_nb.curate import propagate_labels as propagate
except ImportError:                          # a stand-in with the same contract
    def propagate(emb, labelled_idx, labelled_y, method='knn', k=None, metric='cosine'):
        z = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        proba = labelled_y[np.argsort(-(z @ z[labelled_idx].T), 1)[:, :k or 3]].mean(1)
        proba[labelled_idx] = labelled_y
        conf = np.abs(2 * proba - 1).min(1); conf[labelled_idx] = 1
        return proba, conf
rng = np.random.default_rng(0)
n = 60
kind = np.arange(n) % 3
labels = np.zeros((n, 11), np.uint8)
labels[np.arange(n), np.array([2, 4, 7])[kind]] = 1
yy, xx = np.mgrid[:48, :48] - 24
r = np.hypot(yy, xx)
images = np.stack([np.cos(r / (1.5 + k + 0.3 * rng.random())) ** 2 * np.exp(-r / 14) for k in kind]).astype(np.float32)
good = np.eye(3)[kind] * 5 + rng.normal(0, 0.8, (n, 3))
noise = rng.random((n, 8))
ex = Explorer(images, {'good': (good, 'cosine'), 'noise': (noise, 'euclidean')}, labels,
              entries=[f'entry_{i + 1}' for i in range(n)], k=5, layout='pca')
for i in range(6): ex.label(['Elliptical', 'Streak', 'NewtonRings'][kind[i]], i)
ui = ex.widget(labelling=True, labels_path='labels.csv', propagate=propagate)
ui
'''
TARGET = r'''
fig = ui.map_figure
fig.axes[0].get_xlim(); fig.axes[0].get_ylim()      # the map's final limits (no canvas.draw: it races ipympl's first render)
xy = ex.map()
d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)); np.fill_diagonal(d, np.inf)
t = int(np.argmax(np.where(np.arange(n) > 5, d.min(1), -1)))          # the most isolated unlabelled image
px, py = fig.axes[0].transData.transform(xy[t])
w, h = fig.bbox.width, fig.bbox.height
Path('target.json').write_text(json.dumps({'index': t, 'entry': ex.entries[t], 'fx': px / w, 'fy': 1 - py / h,
                                           'kind': ['Elliptical', 'Streak', 'NewtonRings'][kind[t]]}))
'''

def notebook(cells):
    return {'cells': [{'cell_type': 'code', 'execution_count': None, 'id': f'c{i}', 'metadata': {}, 'outputs': [],
                       'source': c.strip()} for i, c in enumerate(cells)],
            'metadata': {'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'}},
            'nbformat': 4, 'nbformat_minor': 5}

def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def start_lab(root, port, token):
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(root / '.settings'), JUPYTERLAB_WORKSPACES_DIR=str(root / '.ws'),
               JUPYTER_RUNTIME_DIR=str(root / '.runtime'), OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'),
               PYTHONWARNINGS='ignore')
    (root / '.settings/@jupyterlab/apputils-extension').mkdir(parents=True)   # no "news" question
    (root / '.settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings').write_text(
        json.dumps({'fetchNews': 'false', 'checkForUpdates': False}))
    cmd = [sys.executable, '-m', 'jupyter', 'lab', '--no-browser', '--ip=127.0.0.1', f'--port={port}', '--port-retries=0',
           f'--ServerApp.root_dir={root}', f'--IdentityProvider.token={token}', '--LabApp.expose_app_in_browser=True'] + (['--allow-root'] if os.geteuid() == 0 else [])
    logf = open(root / '.lab.log', 'w')
    return subprocess.Popen(cmd, cwd=root, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)

def stop_lab(proc):
    if proc.poll() is not None: return
    try: os.killpg(proc.pid, signal.SIGTERM)       # the server's own process group: the server and its kernel
    except ProcessLookupError: return
    try: proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL); proc.wait(5)

def wait_server(proc, url, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None: raise Failure(f"JupyterLab exited with status {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200: return
        except OSError: pass
        time.sleep(0.5)
    raise Failure(f"JupyterLab did not answer at {url} within {timeout} s")

def step(name, f, *a, **kw):
    "Run one browser step; a Playwright timeout becomes a Failure naming the step."
    log(name)
    try: return f(*a, **kw)
    except Exception as e:
        if isinstance(e, Failure): raise
        raise Failure(f"{name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e

def shrink_png(src, dst, width=1100):
    "A 256-colour PNG no wider than `width`, small enough for the docs."
    from PIL import Image
    im = Image.open(src).convert('RGB')
    if im.width > width: im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
    dst.parent.mkdir(parents=True, exist_ok=True)
    im.quantize(256, method=Image.Quantize.MEDIANCUT).save(dst, optimize=True)

def check(root, base, token, a):
    from playwright.sync_api import sync_playwright
    t = a.timeout * 1000
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=a.chromium, headless=True, args=['--no-sandbox', '--disable-gpu'])
        try:
            page = browser.new_page(viewport={'width': 1280, 'height': 1400}, device_scale_factor=1)
            page.set_default_timeout(t)
            step('open the notebook', page.goto, f"{base}/lab/tree/explorer_demo.ipynb?token={token}")
            step('wait for JupyterLab', page.wait_for_function, "window.jupyterapp && document.querySelector('.jp-NotebookPanel .jp-Cell')")
            step('wait for the kernel', page.wait_for_function,
                 "(() => { const w = window.jupyterapp.shell.currentWidget; const k = w && w.sessionContext && w.sessionContext.session"
                 " && w.sessionContext.session.kernel; return k && k.status === 'idle'; })()", timeout=t * 2)
            step('run all cells', page.evaluate, "window.jupyterapp.commands.execute('notebook:run-all-cells')")
            status = page.locator('.widget-html-content').filter(has_text='query')
            step('wait for the widget', status.first.wait_for)
            canvas = page.locator('.jupyter-matplotlib-canvas-div')
            step('wait for the live map (ipympl canvas)', canvas.first.wait_for)
            tf = root / 'target.json'
            end = time.time() + a.timeout
            while not tf.exists():
                if time.time() > end: raise Failure("the kernel did not write target.json (did the notebook's last cell fail?)")
                time.sleep(0.3)
            target = json.loads(tf.read_text())
            def status_has(pattern, name):
                step(name, page.wait_for_function,
                     "re => [...document.querySelectorAll('.widget-html-content')].some(e => new RegExp(re).test(e.textContent))",
                     arg=pattern)
            step('scroll to the map', canvas.first.scroll_into_view_if_needed)
            box = canvas.first.locator('canvas').last.bounding_box()
            x, y = box['x'] + target['fx'] * box['width'], box['y'] + target['fy'] * box['height']
            log(f"click the map at ({x:.0f}, {y:.0f}) px, on image {target['entry']}")
            page.mouse.move(x, y); page.mouse.click(x, y)
            status_has(f"query {target['entry']}:", f"the click makes {target['entry']} the query")
            step('pick a class', page.locator('select[multiple]').first.select_option, [target['kind']])
            page.get_by_role('button', name='label shot').click()
            status_has(f"labelled {target['entry']}: {target['kind']}", 'the label is applied')
            step('pick logreg', page.locator('select:not([multiple])').filter(has=page.locator('option[value=logreg]')).first.select_option, 'logreg')
            page.get_by_role('button', name='propagate').click()
            status_has(r'spread 7 hand labels by logreg', 'propagation answers')
            page.get_by_role('button', name='least confident').click()
            status_has(r'predicted: .*\(confidence', 'the least confident shot becomes the query')
            page.get_by_role('button', name='confirm, next').click()
            status_has(r'confirmed .*shots left to review', 'confirm answers')
            page.get_by_role('button', name='export labels').click()
            status_has(r'wrote labels\.csv', 'the labels are exported')
            import csv
            rows = list(csv.DictReader((root / 'labels.csv').open()))
            hand = {r['entry']: r['labels'] for r in rows if r['by_hand'] == 'True'}
            if len(rows) != 60 or len(hand) != 8 or hand.get(target['entry']) != target['kind']:
                raise Failure(f"labels.csv: {len(rows)} rows, hand labels {hand}; expected 60 rows, 8 by hand, "
                              f"{target['entry']}: {target['kind']}")
            page.mouse.move(5, 5)
            page.wait_for_timeout(500)                 # the canvas redraws after the last click
            shot = root / 'shot.png'
            widget = page.locator('.jp-OutputArea-output').filter(has=page.locator('.jupyter-matplotlib-canvas-div')).first
            step('screenshot', widget.screenshot, path=str(shot))
            shrink_png(shot, a.out)
            if a.keep: shutil.copy(shot, root / 'shot_full.png')
            return (f"clicked {target['entry']} on the map -> query and labelled {target['kind']}; propagate, review, confirm, "
                    f"export: labels.csv with {len(rows)} rows, 8 by hand; screenshot {a.out} ({a.out.stat().st_size // 1024} kB)")
        except Failure:
            try: page.screenshot(path=str(root / 'failure.png')); (root / 'failure.html').write_text(page.content())
            except Exception: pass
            raise
        finally: browser.close()

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--chromium', default='/usr/bin/chromium', help='Chromium executable')
    ap.add_argument('--out', type=Path, default=Path(__file__).resolve().parents[1] / 'nbs/images/explorer.png', help='screenshot')
    ap.add_argument('--timeout', type=float, default=90, help='seconds per step (the kernel start gets twice that)')
    ap.add_argument('--keep', action='store_true', help='keep the temporary JupyterLab folder')
    a = ap.parse_args()
    if not Path(a.chromium).exists(): print(f"SKIP browser_check: no Chromium at {a.chromium}"); return 0
    try: import playwright.sync_api  # noqa: F401
    except ImportError: print("SKIP browser_check: Playwright is not installed (pip install playwright)"); return 0
    root = Path(tempfile.mkdtemp(prefix='cplr_browser_'))
    (root / 'explorer_demo.ipynb').write_text(json.dumps(notebook(['%matplotlib widget', DEMO, TARGET])))
    port, token = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    log(f"JupyterLab in {root} on port {port}")
    proc = start_lab(root, port, token)
    try:
        wait_server(proc, f"{base}/api/status?token={token}", a.timeout)
        print(f"PASS browser_check: {check(root, base, token, a)}")
        return 0
    except Failure as e:
        a.keep = True                                  # for failure.png, failure.html and .lab.log
        tail = (root / '.lab.log').read_text(errors='replace').splitlines()[-15:]
        print(f"FAIL browser_check: {e}")
        print('JupyterLab log (end):\n  ' + '\n  '.join(tail), file=sys.stderr)
        return 1
    finally:
        stop_lab(proc)
        if a.keep: log(f"kept {root}")
        else: shutil.rmtree(root, ignore_errors=True)

if __name__ == '__main__': sys.exit(main())
