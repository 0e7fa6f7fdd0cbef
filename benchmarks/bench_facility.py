"""Facility data (issue 18): the European XFEL path, the hit gate, the beam centre, and the embedding on a facility detector.

  python benchmarks/bench_facility.py [--work DIR] [--only views,quality,hits,rate,center,euxfel,stream] [--seeds 3] [--quick]

- `views`   (validation): which views survive the detector. The cpu recipe (--seeds training seeds) on the validation
            simulation (seed 1001) through the facility detector's validation seed (1001), against the clean twin, for
            each way of making the views: the pedestal left in or removed, untrusted pixels set to 0, filled from the
            pixel opposite the beam, or with the mean at their radius; and the whole calibration found from the data.
- `quality` (report): the chosen default on a seed used for nothing else (simulation 3003, detector 3003), against its
            clean twin and PCA (correlation), and `--center auto --hits auto --dark auto` against the truth.
- `hits`    the hit gate on facility frames with 60 % blanks: hits kept, blanks passed.
- `rate`    the hit gate's rate on 1 Mpx frames (2 CPU cores here).
- `center`  `--center auto` with the gap, the mask and the beam up to 40 px off the image centre.
- `euxfel`  `cplr-prepare --src RUN --geom agipd.geom` on a mock SPB run of 4096 frames (corrected AGIPD-1M, filled
            with simulated shots through the facility detector at a 20 % hit rate) against the same frames as an
            assembled stack.
- `stream`  `cplr-watch --src tcp://...` on a karabo-bridge replay: every hit once, hits/s end to end, a server restart.

Writes benchmarks/facility/results.json and results.md (a section per part; parts not run keep their last result).
"""
import argparse, json, math, os, platform, shutil, subprocess, sys, time
from pathlib import Path
import numpy as np, h5py, torch

HERE = Path(__file__).parent
RESULTS = HERE/'facility'
VALIDATION, REPORT = 1001, 3003

def machine()->str:
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, {'GPU ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}"

def load_results()->dict:
    p = RESULTS/'results.json'
    return json.loads(p.read_text()) if p.exists() else {}

def save_results(res:dict):
    RESULTS.mkdir(exist_ok=True)
    (RESULTS/'results.json').write_text(json.dumps(res, indent=1))
    (RESULTS/'results.md').write_text(markdown(res))

def pm(vals, nd=3)->str:
    vals = [v for v in vals if v is not None]
    if not vals: return '–'
    return f"{np.mean(vals):.{nd}f}" + (f" ± {np.std(vals):.{nd}f}" if len(vals) > 1 else '')

# ------------------------------------------------------------------ data
def facility_pair(work:Path, seed:int, det_seed:int, n:int, size:int=256, **det):
    "The clean simulation and its run through the facility detector (cached), and the detector."
    from cplr_nb.simulate import simulate, write_simulation
    from cplr_nb.facility import FacilityDetector, write_facility
    d = FacilityDetector(size, seed=det_seed, **det)
    clean, fac = work/f'clean_s{seed}_n{n}.cxi', work/f'facility_s{seed}_d{det_seed}_n{n}.cxi'
    if not (clean.exists() and fac.exists()):
        sim = simulate(n, size, seed=seed, select='paper', progress=True)
        write_simulation(clean, sim)
        write_facility(fac, sim.images, sim.labels, d, sim.params)
    return clean, fac, d

def true_dark(fac:Path):
    from cplr_nb.calibrate import Dark
    with h5py.File(fac) as f: ped = f['detector/dark'][()]
    return Dark(ped, None, np.zeros(ped.shape, bool), 0, 'the detector layer\'s true pedestal')

def true_hits(fac:Path)->np.ndarray:
    with h5py.File(fac) as f: return np.flatnonzero(f['detector/hit'][()])

# ------------------------------------------------------------------ training and scoring
def score_prepared(prep_path:Path, work:Path, name:str, seeds:int)->dict:
    "Train the cpu recipe for `seeds` seeds on a prepared file and score every run; PCA (correlation) beside it. Cached."
    from cplr_nb.projection import load_prepared
    from cplr_nb.train import train, load_run
    from cplr_nb.ablation import embed_as, _views
    from cplr_nb.evaluate import overlap_score, linear_eval
    from cplr_nb.neighbours import neighbours_k
    from cplr_nb.baselines import load_polar, latent_embedding
    cache = work/'scores'/f'{name}.json'
    done = json.loads(cache.read_text()) if cache.exists() else {'runs': {}}
    prep = load_prepared(prep_path)
    k = neighbours_k(len(prep))
    if 'pca_corr' not in done:
        x, labels, _ = load_polar(prep_path, 64)
        done['pca_corr'] = overlap_score(latent_embedding(x, 'pca'), labels, k, 'correlation')[0]
    for s in range(seeds):
        if str(s) in done['runs']: continue
        run = work/'runs'/f'{name}_s{s}'
        if run.exists() and not (run/'model.pth').exists(): shutil.rmtree(run)
        t0 = time.time()
        if not (run/'model.pth').exists(): train(prep, 'polcart', run, 'cpu', seed=s, progress=False)
        model, cfg = load_run(run)
        emb = embed_as(model, _views(prep, cfg['size']))
        lin = linear_eval(emb, prep.labels, seeds=3)
        done['runs'][str(s)] = dict(overlap=overlap_score(emb, prep.labels, k)[0], precision=lin['precision'], recall=lin['recall'],
                                    f1=lin['f1'], minutes=(time.time() - t0) / 60)
        cache.parent.mkdir(parents=True, exist_ok=True); cache.write_text(json.dumps(done))
        print(f"  {name} seed {s}: overlap {done['runs'][str(s)]['overlap']:.3f}, recall {lin['recall']:.3f}", flush=True)
    done['n'] = len(prep)
    return done

def summary(d:dict)->dict:
    runs = list(d['runs'].values())
    return {m: [r[m] for r in runs] for m in ('overlap', 'precision', 'recall', 'f1')} | dict(pca_corr=d['pca_corr'], n=d['n'])

VIEW_VARIANTS = {   # name -> prepare() arguments beyond the source (None: the clean twin)
    'clean twin': None,
    'detector, pedestal left in, untrusted 0 (as before this issue)': dict(dark=None, fill='zero'),
    'pedestal removed, untrusted 0': dict(dark='true', fill='zero'),
    'pedestal removed, untrusted: mean at the radius': dict(dark='true', fill='radial'),
    'pedestal removed, untrusted: opposite pixel, else radius mean': dict(dark='true', fill='partner'),
    'all found from the data (dark, hits, centre auto), partner fill': dict(auto=True, fill='partner'),
}

def prepare_variant(work:Path, clean:Path, fac:Path, det, name:str, spec)->Path:
    from cplr_nb.projection import prepare
    out = work/'prepared'/f"{name.split(',')[0].replace(' ', '_')}_{abs(hash(name)) % 10**6}_{fac.stem}.h5"
    if out.exists(): return out
    out.parent.mkdir(parents=True, exist_ok=True)
    if spec is None: return prepare(clean, out, progress=False)
    if spec.get('auto'): return prepare(fac, out, dark='auto', hits='auto', center='auto', fill=spec['fill'], progress=False)
    dark = true_dark(fac) if spec['dark'] == 'true' else None
    return prepare(fac, out, select=true_hits(fac), center=det.beam_center, dark=dark, fill=spec['fill'], progress=False)

def run_views(work:Path, seeds:int, n:int, variants=VIEW_VARIANTS, seed=VALIDATION, det_seed=VALIDATION, key='views')->dict:
    clean, fac, det = facility_pair(work, seed, det_seed, n)
    out = {}
    for name, spec in variants.items():
        prep = prepare_variant(work, clean, fac, det, name, spec)
        out[name] = summary(score_prepared(prep, work, f"{key}_{list(variants).index(name)}_s{seed}", seeds))
    return dict(simulation_seed=seed, detector_seed=det_seed, n=n, seeds=seeds, variants=out, detector=repr(det))

def views_table(r:dict)->str:
    lines = [f"| views (simulation seed {r['simulation_seed']}, detector seed {r['detector_seed']}, {r['n']} shots, {r['seeds']} training seeds) | CPLR Overlap | precision | recall | PCA (correlation) Overlap |",
             '|---|---|---|---|---|']
    for name, v in r['variants'].items():
        lines.append(f"| {name} | {pm(v['overlap'])} | {pm(v['precision'])} | {pm(v['recall'])} | {v['pca_corr']:.3f} |")
    return '\n'.join(lines)

def markdown(res:dict)->str:
    parts = [f"# Facility data (issue 18)\n\nProduced by `python benchmarks/bench_facility.py`; each part says when and where it ran.\n"]
    for key, title in [('views', 'Views that survive the detector (validation)'), ('quality', 'The default on a fresh seed (report)')]:
        if key in res:
            r = res[key]
            parts.append(f"## {title}\n\n{r['date']}, {r['machine']}, commit {r['commit']}.\n\n{views_table(r)}\n")
            if 'targets' in r: parts.append('\n'.join(f"- {t}" for t in r['targets']) + '\n')
    for key in ('hits', 'rate', 'center', 'euxfel', 'stream'):
        if key in res: parts.append(f"## {key}\n\n{res[key]['date']}, {res[key]['machine']}, commit {res[key]['commit']}.\n\n" + '\n'.join(f"- {l}" for l in res[key]['lines']) + '\n')
    return '\n'.join(parts)

def stamp()->dict:
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, cwd=HERE).stdout.strip()
    return dict(date=time.strftime('%Y-%m-%d'), machine=machine(), commit=commit)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--work', default='/tmp/cplr_facility'); ap.add_argument('--only', default='views,quality,hits,rate,center,euxfel,stream')
    ap.add_argument('--seeds', type=int, default=3); ap.add_argument('--n', type=int, default=500); ap.add_argument('--quick', action='store_true')
    a = ap.parse_args()
    work = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    res = load_results()
    only = a.only.split(',')
    if 'views' in only:
        r = run_views(work, a.seeds, a.n)
        res['views'] = {**stamp(), **r}; save_results(res); print(views_table(r))
