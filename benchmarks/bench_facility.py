"""Facility data (issue 18): the European XFEL path, the hit gate, the beam centre, and the embedding on a facility detector.

  python benchmarks/bench_facility.py [--work DIR] [--only views,quality,hits,rate,center,euxfel,stream] [--seeds 3] [--n 500] [--n-report 1260] [--quick]

- `views`   (validation): which views survive the detector. The cpu recipe (--seeds training seeds) on the validation
            simulation (seed 1001, --n shots) through the facility detector's validation seed (1001), against the clean twin, for
            each way of making the views: the pedestal left in or removed, untrusted pixels set to 0, filled from the
            pixel opposite the beam, or with the mean at their radius; and the whole calibration found from the data.
- `quality` (report): the chosen default on a seed used for nothing else (simulation 3003, detector 3003, --n-report shots), against its
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
import argparse, json, os, shutil, subprocess, sys, time
from pathlib import Path
import numpy as np, h5py, torch
sys.path.insert(0, str(Path(__file__).parent))
from provenance import stamp

HERE = Path(__file__).parent
RESULTS = HERE/'facility'
VALIDATION, REPORT = 1001, 3003

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

def dark_run(work:Path, det, n:int=100)->Path:
    "A dark run of the detector (the beam off: pedestal, noise, hot and dead pixels, no stray light), written as a CXI stack for `--dark FILE`."
    path = work/f'dark_run_d{det.seed}_{det.size}.cxi'
    if not path.exists():
        with h5py.File(work/'.dark.tmp', 'w') as f: f['entry_1/data_1/data'] = det.dark_run(n); f['entry_1/data_1/mask'] = det.mask
        os.replace(work/'.dark.tmp', path)
    return path

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

VIEW_VARIANTS = {   # name -> prepare() arguments beyond the source (None: the clean twin); true hits and centre unless `auto`
    'clean twin': None,
    'detector, pedestal left in, untrusted 0 (as before this issue)': dict(dark=None, fill='zero'),
    'dark run subtracted, untrusted 0': dict(dark='run', fill='zero'),
    'dark run subtracted, untrusted: mean at the radius': dict(dark='run', fill='radial'),
    'dark run subtracted, untrusted: opposite pixel, else radius mean': dict(dark='run', fill='partner'),
    'all found from the data (dark, hits, centre auto), partner fill': dict(auto=True, fill='partner'),
}

def variant_key(name:str, spec)->str: # the caches' key: the variant's whole definition, not its name alone
    import hashlib
    return hashlib.sha1(json.dumps([name, spec], sort_keys=True).encode()).hexdigest()[:10]

def prepare_variant(work:Path, clean:Path, fac:Path, det, name:str, spec)->Path:
    from cplr_nb.projection import prepare
    out = work/'prepared'/f"{variant_key(name, spec)}_{fac.stem}.h5"
    if out.exists(): return out
    out.parent.mkdir(parents=True, exist_ok=True)
    if spec is None: return prepare(clean, out, progress=False)
    if spec.get('auto'): return prepare(fac, out, dark='auto', hits='auto', center='auto', fill=spec['fill'], progress=False)
    dark = dark_run(work, det) if spec['dark'] == 'run' else None
    return prepare(fac, out, select=true_hits(fac), center=det.beam_center, dark=dark, fill=spec['fill'], progress=False)

def fixed_network_scores(preps:dict, run:Path)->dict:
    "Without training noise: each variant's views against the clean twin's (mean Pearson correlation of the Polar views of the same shots), and embedded by one fixed network (the clean twin's first run)."
    from cplr_nb.projection import load_prepared
    from cplr_nb.train import load_run
    from cplr_nb.ablation import embed_as, _views
    from cplr_nb.evaluate import overlap_score, linear_eval
    from cplr_nb.neighbours import neighbours_k
    model, cfg = load_run(run)
    clean = load_prepared(preps['clean twin'])
    out = {}
    for name, path in preps.items():
        p = load_prepared(path)
        pairs = [(i, j) for i, j in enumerate(_twin_rows(path)) if j >= 0]         # a blank frame the gate passed has no twin
        corr = np.mean([np.corrcoef(p.polar[i].ravel(), clean.polar[j].ravel())[0, 1] for i, j in pairs])
        emb = embed_as(model, _views(p, cfg['size']))
        out[name] = dict(view_corr=float(corr), fixed_overlap=overlap_score(emb, p.labels, neighbours_k(len(p)))[0],
                         fixed_recall=linear_eval(emb, p.labels, seeds=3)['recall'])
    return out

def _twin_rows(path:Path)->list:
    "The clean twin's row of each image of a prepared facility file (the shot its frame holds, by the frame's entry `...data[i]`); -1 for a blank frame."
    with h5py.File(path) as f: entries, src = f['entries'].asstr()[()], str(f.attrs['source'])
    if 'clean' in Path(src).name: return list(range(len(entries)))
    with h5py.File(src) as f: shot = f['detector/shot'][()]
    return [int(shot[int(e.rsplit('[', 1)[1][:-1])]) for e in entries]

def run_views(work:Path, seeds:int, n:int, variants=VIEW_VARIANTS, seed=VALIDATION, det_seed=VALIDATION, key='views')->dict:
    clean, fac, det = facility_pair(work, seed, det_seed, n)
    out, preps = {}, {}
    for name, spec in variants.items():
        preps[name] = prepare_variant(work, clean, fac, det, name, spec)
        out[name] = summary(score_prepared(preps[name], work, f"{key}_{variant_key(name, spec)}_s{seed}", seeds))
    fixed = fixed_network_scores(preps, work/'runs'/f"{key}_{variant_key('clean twin', None)}_s{seed}_s0")
    for name in out: out[name].update(fixed[name])
    return dict(simulation_seed=seed, detector_seed=det_seed, n=n, seeds=seeds, variants=out, detector=repr(det))

def views_table(r:dict)->str:
    lines = [f"| views (simulation seed {r['simulation_seed']}, detector seed {r['detector_seed']}, {r['n']} shots, {r['seeds']} training seeds) | CPLR Overlap | precision | recall | PCA (correlation) Overlap | Polar views' correlation with the clean twin's | the clean twin's network (seed 0): Overlap / recall |",
             '|---|---|---|---|---|---|---|']
    for name, v in r['variants'].items():
        lines.append(f"| {name} | {pm(v['overlap'])} | {pm(v['precision'])} | {pm(v['recall'])} | {v['pca_corr']:.3f} | {v.get('view_corr', float('nan')):.3f} | "
                     f"{v.get('fixed_overlap', float('nan')):.3f} / {v.get('fixed_recall', float('nan')):.3f} |")
    return '\n'.join(lines)

def markdown(res:dict)->str:
    parts = ["# Facility data (issue 18)\n\nProduced by `python benchmarks/bench_facility.py`; each part says when and where it ran.\n"]
    for key, title in [('views', 'Views that survive the detector (validation)'), ('quality', 'The default on a fresh seed (report)')]:
        if key in res:
            r = res[key]
            parts.append(f"## {title}\n\n{r['date']}, {r['machine']}, commit {r['commit']}.\n\n{views_table(r)}\n")
            if 'targets' in r: parts.append('\n'.join(f"- {t}" for t in r['targets']) + '\n')
    for key in ('hits', 'rate', 'center', 'euxfel', 'stream'):
        if key in res: parts.append(f"## {key}\n\n{res[key]['date']}, {res[key]['machine']}, commit {res[key]['commit']}.\n\n" + '\n'.join(f"- {l}" for l in res[key]['lines']) + '\n')
    return '\n'.join(parts)

# ------------------------------------------------------------------ the default on a fresh seed
def run_quality(work:Path, seeds:int, n:int, fill:str)->dict:
    "The chosen views on the report seed: facility shots (true calibration; and all found from the data) against their clean twin."
    variants = {'clean twin': None,
                f'facility detector, its dark run, true hits and centre, {fill} fill': dict(dark='run', fill=fill),
                f'facility detector, dark, hits and centre found (auto), {fill} fill': dict(auto=True, fill=fill)}
    r = run_views(work, seeds, n, variants, REPORT, REPORT, key='quality')
    v = list(r['variants'].values())
    clean, true, auto = v
    d_overlap = np.mean(true['overlap']) - np.mean(clean['overlap'])
    d_recall = np.mean(true['recall']) - np.mean(clean['recall'])
    lead = np.mean(true['overlap']) - true['pca_corr']
    d_auto = np.mean(auto['overlap']) - np.mean(true['overlap'])
    met = lambda ok: 'met' if ok else 'not met'
    r['targets'] = [f"CPLR on the facility detector's shots against the same shots clean: Overlap {d_overlap:+.3f} (target ≥ −0.02: {met(d_overlap >= -0.02)}), "
                    f"macro recall {d_recall:+.3f} (target ≥ −0.03: {met(d_recall >= -0.03)})",
                    f"CPLR Overlap − PCA (correlation) Overlap on the facility detector's shots: {lead:+.3f} (target ≥ +0.07: {met(lead >= 0.07)})",
                    f"dark, hits and centre found from the data against the dark run, true hits and centre: Overlap {d_auto:+.3f} (target within 0.02: {met(abs(d_auto) <= 0.02)})",
                    f"the spread of training seeds: ±{np.std(clean['overlap']):.3f} (clean), ±{np.std(true['overlap']):.3f} (facility)"]
    return r

# ------------------------------------------------------------------ the hit gate, the rate, the centre
def run_hits(work:Path, n:int=1000)->dict:
    "The hit gate, found from a sample of the run (`calibrate_source`), on facility frames with 60 % blanks."
    from cplr_nb.simulate import simulate
    from cplr_nb.facility import FacilityDetector, write_facility, run_layout
    from cplr_nb.sources import open_source, calibrate_source
    from cplr_nb.data import LABEL_NAMES
    lines = []
    for det_seed in (VALIDATION, REPORT):
        sim = simulate(n, 256, seed=det_seed + 7, select='all')
        det = FacilityDetector(256, seed=det_seed, hit_rate=0.4)
        path = work/f'hits_{det_seed}.cxi'
        write_facility(path, sim.images, sim.labels, det, sim.params)
        shot = run_layout(n, det)
        empty = np.r_[sim.labels[:, LABEL_NAMES.index('Empty')].astype(bool), False][shot]
        src = open_source(path)
        t0 = time.time()
        cal = calibrate_source(src, dark='auto', hits='auto', warn=False)
        kept = np.concatenate([cal.hits(b.images) for b in src.batches(256)])
        dt = time.time() - t0
        hit = shot >= 0
        lines.append(f"detector seed {det_seed}, {len(shot)} frames ({(~hit).mean():.0%} blank), `--hits auto --dark auto` from a sample of "
                     f"{min(512, len(shot))} frames: hits kept {kept[hit & ~empty].mean():.4f} "
                     f"(target ≥ 0.98: {'met' if kept[hit & ~empty].mean() >= 0.98 else 'not met'}), blanks passed {kept[~hit].mean():.4f} "
                     f"(target ≤ 0.02: {'met' if kept[~hit].mean() <= 0.02 else 'not met'}); shots labelled Empty (a few hundred photons) kept "
                     f"{kept[hit & empty].mean():.2f} of {int((hit & empty).sum())}; {dt:.1f} s with the calibration")
    return dict(lines=lines)

def run_rate(batch:int=64, repeats:int=5)->dict:
    "The gate's rate on 1 Mpx frames in memory: the compiled CPU loop, and torch's comparison on the CPU for scale."
    from cplr_nb.calibrate import count_lit, ring
    rng = np.random.default_rng(0)
    x = rng.normal(0, 6, (batch, 1024, 1024)).astype(np.float32)
    cut = np.where(ring((1024, 1024), (511.5, 511.5)), 30., np.inf).astype(np.float32)
    count_lit(x[:2], cut)                                              # compiled once
    def rate(f):
        ts = []
        for _ in range(repeats):
            t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
        return batch / np.median(ts)
    cpu = rate(lambda: count_lit(x, cut))
    xt = torch.from_numpy(x)
    tor = rate(lambda: count_lit(xt, cut))
    lines = [f"hit gate on 1024×1024 float32 frames, batches of {batch} in memory, median of {repeats}: {cpu:.0f} frames/s "
             f"(target ≥ 2000 on 2 cores: {'met' if cpu >= 2000 else 'not met'}); torch's comparison on the same CPU {tor:.0f} frames/s"]
    if torch.cuda.is_available():
        xg = xt.cuda(); count_lit(xg, cut); torch.cuda.synchronize()
        lines.append(f"on the GPU: {rate(lambda: (count_lit(xg, cut), torch.cuda.synchronize())):.0f} frames/s")
    return dict(lines=lines)

def run_center(work:Path, n:int=100)->dict:
    "`--center auto` on facility runs with the beam up to 40 px (at 256 px) off the image centre, gap and mask included."
    from cplr_nb.simulate import simulate
    from cplr_nb.facility import FacilityDetector, facility_frames
    from cplr_nb.calibrate import calibrate
    sim = simulate(n, 256, seed=REPORT + 11, select='paper')
    errs, unc, warn = [], [], 0
    for k, (dist, ang) in enumerate([(d, a) for d in (0, 10, 25, 40) for a in (0, 1.3, 2.6, 4.1)]):
        off = (dist * np.sin(ang), dist * np.cos(ang))
        det = FacilityDetector(256, seed=REPORT + k, offset=off, hit_rate=0.5)
        frames = facility_frames(sim.images, det).astype(np.float32)
        cal = calibrate(frames[:512], det.mask == 0, dark='auto', hits='auto', center='auto', warn=False)
        errs.append(float(np.hypot(*np.subtract(cal.center, det.beam_center)))); unc.append(cal.center_estimate.uncertainty)
        warn += bool(cal.center_estimate.warning)
    errs = np.array(errs)
    return dict(lines=[f"{len(errs)} runs of {n} shots (beam 0, 10, 25, 40 px off the centre in 4 directions, 50 % blank), dark and hits found too: "
                       f"distance from the true centre median {np.median(errs):.2f} px, largest {errs.max():.2f} px "
                       f"(target within 1 px: {'met' if errs.max() <= 1 else 'not met'}); reported uncertainty median {np.median(unc):.2f} px; "
                       f"{warn} warnings"])

# ------------------------------------------------------------------ a European XFEL run, and its live stream
QUADS = [(-525, 625), (-550, -10), (520, -160), (542.5, 475)]   # extra-geom's documented AGIPD-1M quadrant positions

class CorrectedFrames:
    "Frames of the facility detector with their pedestal removed, as a facility's correction pipeline writes them; made on slicing."
    def __init__(self, images, det, n): self.images, self.det, self.n = images, det, n
    def __len__(self): return self.n
    def __getitem__(self, s):
        from cplr_nb.facility import facility_frames
        a, b, _ = s.indices(self.n)
        return facility_frames(self.images, self.det, a, b).astype(np.float32) - self.det.dark

def euxfel_setup(work:Path, n_frames:int=4096, hit_rate:float=0.2):
    "The AGIPD-1M geometry, simulated shots on its canvas through the facility detector, and the truth (cached)."
    from cplr_nb.sources import facility_module, load_geometry, Assembler
    from cplr_nb.simulate import simulate
    from cplr_nb.facility import FacilityDetector, run_layout
    geom = work/'agipd.geom'
    facility_module('extra_geom', 'the benchmark').AGIPD_1MGeometry.from_quad_positions(quad_pos=QUADS).write_crystfel_geom(str(geom))
    asm = Assembler(load_geometry(geom, (16, 512, 128)), (16, 512, 128))
    det = FacilityDetector(asm.side, seed=REPORT, effects=('dark', 'stray', 'pixels', 'mask', 'blanks'), hit_rate=hit_rate)
    n_shots = int(n_frames * hit_rate * 1.15)
    while (run_layout(n_shots, det) >= 0)[:n_frames].sum() == n_shots: n_shots += 50     # enough shots to fill the frames
    shots = lambda: simulate(n_shots, asm.side, seed=REPORT + 21, select='paper', progress=True).images   # only when a run is written
    hit = (run_layout(n_shots, det) >= 0)[:n_frames]
    return geom, asm, det, shots, hit

def prepare_timed(cmd:list, out:Path)->tuple:
    "Run a cplr-prepare command once (wall seconds and peak memory kept beside its output), or read what it took last time."
    from bench_projection import run_with_peak_memory
    t = out.with_name(out.name + '.timing.json')
    if not (out.exists() and t.exists()):
        out.unlink(missing_ok=True)
        t.write_text(json.dumps(run_with_peak_memory(cmd)))
    return json.loads(t.read_text())

def run_euxfel(work:Path, n_frames:int=4096)->dict:
    from cplr_nb.sources import mock_euxfel_run, open_source
    from cplr_nb.projection import prepare, load_prepared
    geom, asm, det, shots, hit = euxfel_setup(work, n_frames)
    run_dir = work/'r0238'
    if not (run_dir/'done').exists():
        shutil.rmtree(run_dir, ignore_errors=True)
        t = time.time(); mock_euxfel_run(run_dir, CorrectedFrames(shots(), det, n_frames), asm, 64, mask=det.mask); (run_dir/'done').write_text(f"{time.time() - t:.0f}")
    files = sorted(run_dir.glob('*.h5'))
    size_gb = sum(f.stat().st_size for f in files) / 2**30
    plain = work/'r0238_plain.h5'
    wall_plain, _ = prepare_timed(['cplr-prepare', '--src', str(run_dir), '--geom', str(geom), '--out', str(plain)], plain)
    with h5py.File(plain) as f: kept_plain, rows = f['frames/kept'][()], f['frame'][()]
    out = work/'r0238.h5'
    wall, peak = prepare_timed(['cplr-prepare', '--src', str(run_dir), '--geom', str(geom), '--dark', 'auto', '--out', str(out)], out)
    with h5py.File(out) as f: kept = f['frames/kept'][()]
    src = open_source(run_dir, geom)
    stack = work/f"assembled_{variant_key('rows', rows.tolist())}.cxi"            # the frames the plain prepare kept, assembled by hand
    if not stack.exists():
        with h5py.File(work/'.assembled.tmp', 'w') as f:
            ds = f.create_dataset('entry_1/data_1/data', (len(rows), asm.side, asm.side), np.float32, chunks=(1, asm.side, asm.side))
            ms = f.create_dataset('entry_1/data_1/mask', (len(rows), asm.side, asm.side), np.uint8, chunks=(1, asm.side, asm.side), compression='lzf')
            for a in range(0, len(rows), 32):
                b = src.read(rows[a:a + 32]); ds[a:a + len(b)] = b.images; ms[a:a + len(b)] = ~b.valid
        os.replace(work/'.assembled.tmp', stack)
    by_hand = work/'assembled.h5'; by_hand.unlink(missing_ok=True)
    prepare(stack, by_hand, progress=False)
    p, q = load_prepared(plain, lazy=True), load_prepared(by_hand, lazy=True)
    diff = max(float(np.abs(p.polar[a:a + 64] - q.polar[a:a + 64]).max()) for a in range(0, len(p), 64))
    diff = max(diff, max(float(np.abs(p.cartesian[a:a + 64] - q.cartesian[a:a + 64]).max()) for a in range(0, len(p), 64)))
    return dict(lines=[f"mock SPB run (extra-data's mock writer: corrected AGIPD-1M, {len(files)} files, {size_gb:.1f} GiB), {n_frames} frames "
                       f"of {asm.side}x{asm.side} px on the canvas, {hit.mean():.1%} hits (simulated shots through the facility detector, pedestal removed "
                       f"as a correction pipeline does): `cplr-prepare --src RUN --geom agipd.geom --dark auto --out r0238.h5` {wall / 60:.1f} min, peak {peak:.2f} GB",
                       f"hit gate (on by default for a run), with `--dark auto` (the mean blank frame, stray light and all, and each pixel's noise): kept {kept.sum()} frames, "
                       f"{kept[hit].mean():.4f} of the hits, {kept[~hit].mean():.4f} of the blanks; without it (the gate's noise one number for the detector): "
                       f"{kept_plain[hit].mean():.4f} of the hits, {kept_plain[~hit].mean():.4f} of the blanks",
                       f"`cplr-prepare --src RUN --geom agipd.geom` (no dark: {wall_plain / 60:.1f} min) against the {len(rows)} frames it kept, "
                       f"written as a stack of assembled images with their masks and prepared: largest difference of any view pixel {diff:.2g} "
                       f"(target: equal within float16 rounding: {'met' if diff <= 2**-11 else 'not met'})"])

def run_stream(work:Path, n_frames:int=2000)->dict:
    "`cplr-watch --src tcp://...` on a karabo-bridge replay: every hit once (against the files), hits/s, a server restart."
    import socket
    from cplr_nb.sources import mock_euxfel_run
    from cplr_nb.watch import read_watch
    from cplr_nb.embed import read_embeddings
    geom, asm, det, shots, hit = euxfel_setup(work, 4096)
    hit = hit[:n_frames]
    run_dir = work/'stream_run'
    if not (run_dir/'done').exists():
        shutil.rmtree(run_dir, ignore_errors=True)
        mock_euxfel_run(run_dir, CorrectedFrames(shots(), det, n_frames), asm, 16, mask=det.mask); (run_dir/'done').write_text('')
    net = next((d for d in sorted((work/'runs').glob('quality_*_s3003_s0')) if (d/'model.pth').exists()), None)
    if net is None: raise SystemExit("run --only quality first: the stream is embedded with its network")
    with socket.socket() as sk: sk.bind(('localhost', 0)); port = sk.getsockname()[1]
    serve = lambda: subprocess.Popen(['karabo-bridge-serve-files', str(run_dir), str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines = []
    # the replay alone: how fast the server and the client move frames
    from cplr_nb.sources import BridgeStream
    server = serve(); bs = BridgeStream(f'tcp://localhost:{port}', geom, timeout=20)
    t, got = time.time(), 0
    while got < n_frames:
        b = bs.next_train()
        if b is None: break
        got += len(b)
    replay = got / (time.time() - t); bs.close(); server.kill(); server.wait()
    lines.append(f"karabo-bridge-serve-files and the client alone (receive and assemble): {replay:.0f} frames/s of {asm.side}x{asm.side} px")
    def follow(name:str, extra:list, restart:bool)->tuple:
        "Run cplr-watch on a fresh replay until its log stops growing for a minute (after a server restart half-way, if asked); its log and report."
        log = work/f'{name}.csv'
        for p in (log, log.with_name(log.name + '.f32')): p.unlink(missing_ok=True)
        server = serve()
        watcher = subprocess.Popen(['cplr-watch', '--run', str(net), '--src', f'tcp://localhost:{port}', '--geom', str(geom), '--out', str(log),
                                    '--every', '5', '--timeout', '20', '--embeddings', *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        logged = lambda: len(read_watch(log)['entry']) if log.exists() else 0
        last, grew, restarted, deadline = 0, time.time(), not restart, time.time() + 3600
        while time.time() < deadline and watcher.poll() is None:
            n = logged()
            if n > last: last, grew = n, time.time()
            if not restarted and n >= half:
                server.kill(); server.wait(); server = serve(); restarted = True   # a restart: the replay starts over from the first train
            if restarted and last and time.time() - grew > 60: break       # the log has begun, and stopped growing
            time.sleep(0.5)
        watcher.terminate(); out = watcher.communicate(timeout=60)[0]; server.kill(); server.wait()
        return read_watch(log), out
    entries = [f"{10000 + k // 16}:{k % 16}" for k in range(n_frames)]
    # 1. every frame, through a restart: the same frames and embeddings as from the files
    half = n_frames // 2
    r, _ = follow('stream_all', ['--hits', 'none'], restart=True)
    emb = work/'stream_files.h5'
    subprocess.run(['cplr-embed', '--run', str(net), '--src', str(run_dir), '--geom', str(geom), '--hits', 'none', '--out', str(emb)], check=True, capture_output=True)
    files = read_embeddings(emb)
    same = list(r['entry']) == list(files['entries'])
    diff = float(np.abs(r['embeddings'] - files['embeddings']).max()) if same else float('nan')
    lines.append(f"`cplr-watch --src tcp://… --geom agipd.geom --hits none` on a replay of {n_frames} frames, the server killed after half of them and "
                 f"started again (a replay starts over at the first train): {len(r['entry'])} rows, {len(r['entry']) - len(set(r['entry']))} logged twice, "
                 f"{len(set(entries) - set(r['entry']))} missing; the same frames, in the same order, as `cplr-embed --src RUN --hits none` from the files: "
                 f"{'yes' if same else 'no'}, embeddings within {diff:.1e}")
    # 2. the hit gate on, its threshold from the first 256 frames: the pace
    half = int(hit.sum()) // 2
    r, out = follow('stream_hits', [], restart=False)
    truth = {e for e, h in zip(entries, hit) if h}
    t = r['time']
    rate = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 else 0.
    lines.append(f"`cplr-watch --src tcp://… --geom agipd.geom` (the hit gate on by default, no dark): {len(r['entry'])} of the {len(truth)} hits logged "
                 f"({len(truth - set(r['entry']))} missed by the gate), {len(set(r['entry']) - truth)} blanks, none twice "
                 f"({'yes' if len(set(r['entry'])) == len(r['entry']) else 'no'}); {rate:.1f} hits/s from the first hit logged to the last "
                 f"(target ≥ 120 on 2 cores: {'met' if rate >= 120 else 'not met'}): the replay alone moves {replay:.0f} frames/s, {replay * hit.mean():.0f} hits/s at this hit rate")
    return dict(lines=lines)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--work', default='/tmp/cplr_facility'); ap.add_argument('--only', default='views,quality,hits,rate,center,euxfel,stream')
    ap.add_argument('--seeds', type=int, default=3); ap.add_argument('--quick', action='store_true')
    ap.add_argument('--n', type=int, default=500, help='shots of the validation (views)'); ap.add_argument('--n-report', type=int, default=1260, help='shots of the report seed (quality), as the default run')
    ap.add_argument('--fill', default='partner', help='the views of the report seed (the choice of the validation)')
    a = ap.parse_args()
    work = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    res = load_results()
    only = a.only.split(',')
    if 'views' in only:
        r = run_views(work, a.seeds, a.n)
        res['views'] = {**stamp(RESULTS), **r}; save_results(res); print(views_table(r))
    if 'quality' in only:
        r = run_quality(work, a.seeds, a.n_report, a.fill)
        res['quality'] = {**stamp(RESULTS), **r}; save_results(res); print(views_table(r)); print(*r['targets'], sep='\n')
    for key, fn in [('hits', lambda: run_hits(work, 300 if a.quick else 1000)), ('rate', run_rate), ('center', lambda: run_center(work, 40 if a.quick else 100)),
                    ('euxfel', lambda: run_euxfel(work, 256 if a.quick else 4096)), ('stream', lambda: run_stream(work, 256 if a.quick else 2000))]:
        if key in only:
            res[key] = {**stamp(RESULTS), **fn()}; save_results(res); print(*res[key]['lines'], sep='\n')
