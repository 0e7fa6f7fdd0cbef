#!/usr/bin/env python
"""Scale benchmarks (issue 12): the full-size data set, memory that does not grow with N, preparation speed, the size
of the prepared file and what its float16 storage costs in scores, and the faiss index at a million embeddings.

  python benchmarks/bench_scale.py [--quick] [--only entries,train_rss,prepare,quantisation,faiss] [--workdir DIR]

Cases (the targets of issue 12, on 2 CPU cores):
- entries: `cplr-prepare --select all` of a CXIDB-94-layout file with 8000 entries (tiny 32-pixel images, so that
  the case is about the entries and not the pixels) works, and the result loads.
- train_rss: peak RSS of `cplr-train --epochs 1` (the `cpu` configuration, 64 px) on prepared files of 2000 and
  20 000 images; target: less than 0.3 GB more at 20 000. Each command runs in a wrapper process that reports the
  peak resident memory of its child (`getrusage(RUSAGE_CHILDREN)`). The 20 000-image file repeats the 2000 simulated
  images ten times (the memory and the time per image do not depend on the pixels). Measured with the default (views
  held in memory up to 256 MB at the training size, so 2000 images are, 20 000 are not) and with `--stream`.
- prepare: `cplr-prepare` of 20 000 detector images of 256² (an HDF5 stack, the 2000 simulated images ten times)
  to 256-pixel views, images per second and peak RSS beside the same for 2000 images; target: >= 300 images/s, peak
  memory independent of N.
- size: the prepared file of the 2000 simulated images, float16 + Blosc (the default) against float32 without
  compression (the format before); target: at least 2x smaller.
- quantisation: the default run's data (1260 simulated images, seed 0, 256 px) prepared both ways, and every score
  (Overlap, precision, recall, F1, accuracy) of (a) PCA, the best pixel baseline, and (b) one trained network
  (`cpu` configuration, trained on the float32 file, 10 epochs) on the Polar views of either file; target: no score
  moves by more than 0.005. As a yardstick, the same scores of the float32 views plus Gaussian noise of 10^-6 (far
  below float16's rounding): how much the scores move under any change at all. For information, also the same
  network trained on the float16 file with the same seed (the difference of two trainings mixes the rounding with
  the chaos of training; compare it with the spread of training seeds).
- training: the `cpu` recipe (the ablation study's 'CPLR, cpu recipe') trained on float16 and on float32 views of the
  validation simulation (seed 1001, used by no report), 3 training seeds each, scored as `13_ablation` scores: does
  storing the views as float16 change what the training learns, beyond the spread of training seeds?
- faiss: `benchmarks/bench_index.py` at 10^6 x 128 with 10^4 queries; target: recall@13 >= 0.95 against exact
  search, built and searched within 15 min.

Results are printed as Markdown and written to benchmarks/scale/results.json and .md (a case run alone updates its part).
"""
import json, os, shutil, subprocess, sys
from pathlib import Path
import numpy as np, h5py

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from cases import run_cases
_MEASURE = ("import json, resource, subprocess, sys, time; t = time.perf_counter(); r = subprocess.run(sys.argv[1:]); "
            "print('MEASURED', json.dumps(dict(rc=r.returncode, wall=time.perf_counter() - t, "
            "rss_gib=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20)))")

def measured(cmd:list, env=None)->dict:
    "Run `cmd` in a wrapper process: its exit code, wall seconds and peak RSS in GiB (ru_maxrss is in KiB)."
    r = subprocess.run([sys.executable, '-c', _MEASURE, *map(str, cmd)], capture_output=True, text=True, env=env)
    line = [l for l in r.stdout.splitlines() if l.startswith('MEASURED ')]
    if not line: raise RuntimeError(f"{cmd[0]} gave no measurement:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    m = json.loads(line[-1][len('MEASURED '):])
    if m['rc'] != 0: raise RuntimeError(f"{' '.join(map(str, cmd))} exited {m['rc']}:\n{r.stderr[-3000:]}")
    return m

def simulated(work:Path, n:int, size:int, seed:int=0):
    "A cached simulation of `n` images of `size`² (the paper's selection rules), as a CXI file."
    from cplr_nb.simulate import simulate, write_simulation
    path = work/f'sim_{n}_{size}_{seed}.cxi'
    if not path.exists(): write_simulation(path, simulate(n, size, seed, select='paper'))
    return path

def tiled_stack(src_cxi:Path, out:Path, times:int):
    "An HDF5 stack (`images`, `labels`) of the images of `src_cxi` repeated `times` times, written in blocks."
    from cplr_nb.data import read_data
    d = read_data(src_cxi)
    n, shape = len(d), d.images.shape
    with h5py.File(out, 'w') as f:
        ds = f.create_dataset('images', (n * times, *shape), np.float32, chunks=(1, *shape))
        f['labels'] = np.tile(d.labels, (times, 1))
        for s in range(0, n, 250):
            block = d.images[np.arange(s, min(s + 250, n))]
            for t in range(times): ds[t * n + s:t * n + s + len(block)] = block
    return out

def case_entries(work:Path, quick:bool)->dict:
    from cplr_nb.data import write_cxi
    from cplr_nb.projection import load_prepared
    n = 2000 if quick else 8000
    rng = np.random.default_rng(0)
    src = work/f'entries_{n}.cxi'
    write_cxi(src, rng.poisson(3., (n, 32, 32)).astype(np.float32), compression=None)
    m = measured(['cplr-prepare', '--cxi', src, '--out', work/'entries_prep.h5', '--size', '32', '--select', 'all'])
    prep = load_prepared(work/'entries_prep.h5', lazy=True)
    ok = len(prep) == n and prep.entries[-1] == f'entry_{n}'
    return dict(n=n, loads=ok, wall_s=m['wall'], rss_gib=m['rss_gib'], last_entry=prep.entries[-1])

def case_train_rss(work:Path, quick:bool)->dict:
    from cplr_nb.projection import prepare, load_prepared, write_prepared
    small = 500 if quick else 2000
    sim = simulated(work, small, 128)
    p_small = prepare(sim, work/f'train_{small}.h5', size=64, progress=False)
    prep = load_prepared(p_small)
    big = 10 * small
    p_big = write_prepared(work/f'train_{big}.h5', np.tile(prep.polar, (10, 1, 1)), np.tile(prep.cartesian, (10, 1, 1)),
                           np.tile(prep.labels, (10, 1)), source=str(sim))
    del prep
    out = {}
    for how, extra in [('default', []), ('stream', ['--stream'])]:
        for n, path in [(small, p_small), (big, p_big)]:
            run = work/f'run_{how}_{n}'
            shutil.rmtree(run, ignore_errors=True)
            m = measured(['cplr-train', '--data', path, '--out', run, '--epochs', '1', '--no-progress', *extra])
            out[f'{how}_{n}'] = dict(n=n, rss_gib=m['rss_gib'], wall_s=m['wall'])
        out[f'{how}_growth_gib'] = out[f'{how}_{big}']['rss_gib'] - out[f'{how}_{small}']['rss_gib']
    out.update(small=small, big=big)
    return out

def case_prepare(work:Path, quick:bool)->dict:
    small = 500 if quick else 2000
    sim = simulated(work, small, 256)
    out = {}
    for times in (1, 10):
        n = small * times
        stack = tiled_stack(sim, work/f'stack_{n}.h5', times)
        m = measured(['cplr-prepare', '--cxi', stack, '--out', work/f'prep_{n}.h5', '--size', '256'])
        out[str(n)] = dict(n=n, wall_s=m['wall'], images_per_s=n / m['wall'], rss_gib=m['rss_gib'])
        if times == 1:      # the size case, on the unrepeated images
            m32 = measured(['cplr-prepare', '--cxi', stack, '--out', work/f'prep_{n}_f32.h5', '--size', '256',
                            '--dtype', 'float32', '--compression', 'none'])
            out['size'] = dict(n=n, default_mb=os.path.getsize(work/f'prep_{n}.h5') / 1e6,
                               float32_mb=os.path.getsize(work/f'prep_{n}_f32.h5') / 1e6, float32_images_per_s=n / m32['wall'])
            out['size']['ratio'] = out['size']['float32_mb'] / out['size']['default_mb']
        stack.unlink()
    return out

def _scores(entry:dict)->dict: return {k: float(entry[k]) for k in ('overlap', 'precision', 'recall', 'f1', 'accuracy')}

VARIANTS = ('float32', 'float16', 'float32 + N(0, 1e-6)')

def case_quantisation(work:Path, quick:bool)->dict:
    import torch
    from cplr_nb.projection import prepare, load_prepared
    from cplr_nb.baselines import latent_embedding, readout_dim
    from cplr_nb.augment import resize_images
    from cplr_nb.train import train, load_run
    from cplr_nb.embed import embed_model
    from cplr_nb.evaluate import evaluate_embedding
    n = 400 if quick else 1260
    sim = simulated(work, n, 256)
    files = {'float16': prepare(sim, work/'q16.h5', size=256, progress=False),
             'float32': prepare(sim, work/'q32.h5', size=256, dtype='float32', compression='none', progress=False)}
    p32, p16 = load_prepared(files['float32']), load_prepared(files['float16'])
    labels = p32.labels
    noisy = p32.polar + np.random.default_rng(0).normal(0, 1e-6, p32.polar.shape).astype(np.float32)
    views = dict(zip(VARIANTS, (p32.polar, p16.polar, noisy)))
    def pca_scores(polar):
        x = resize_images(torch.from_numpy(polar)[:, None], 64).clamp_(0, 1)     # as `run_baselines` (64 px, euclidean)
        return _scores(evaluate_embedding(latent_embedding(x, 'pca', readout_dim(512, len(x), 'pca'), 0), labels, 'euclidean'))
    res = {'n': n, 'pca': {k: pca_scores(v) for k, v in views.items()}, 'network': {}, 'trained_on': {}}
    epochs = 3 if quick else 10
    runs = {}
    for name, path in files.items():
        runs[name] = work/f'qrun_{name}'
        shutil.rmtree(runs[name], ignore_errors=True)
        train(path, 'polcart', runs[name], epochs=epochs, progress=False, probe_every=0)
    model, cfg = load_run(runs['float32'])
    res['network'] = {k: _scores(evaluate_embedding(embed_model(model, v, size=cfg['size']), labels)) for k, v in views.items()}
    model16, _ = load_run(runs['float16'])
    res['trained_on'] = {'float32': res['network']['float32'],
                         'float16': _scores(evaluate_embedding(embed_model(model16, p16.polar, size=cfg['size']), labels))}
    res['epochs'] = epochs
    for k in ('pca', 'network', 'trained_on'):
        for v in VARIANTS[1:]:
            if v in res[k]: res[k][f'max_abs_diff {v}'] = max(abs(res[k][v][s] - res[k]['float32'][s]) for s in res[k]['float32'])
    return res

def case_training(work:Path, quick:bool)->dict:
    "The `cpu` recipe trained on float16 and on float32 views of the validation simulation, 3 training seeds each, scored as the ablation study scores."
    from cplr_nb.simulate import simulate, write_simulation
    from cplr_nb.projection import prepare, load_prepared
    from cplr_nb.ablation import VALIDATION_SEED, run_variant, summarise
    n, seeds = (300, 1) if quick else (1260, 3)
    sim = simulate(n, 256, VALIDATION_SEED, select='paper')
    cxi = write_simulation(work/'val.cxi', sim)
    nuis = {'photons': sim.params['photons'], 'response': sim.params['detector_response']}
    spec = dict(mode='polcart', overrides=dict(probe_every=4, **({'epochs': 4} if quick else {})))   # the study's 'CPLR, cpu recipe'
    out = {}
    for dtype in ('float16', 'float32'):
        prep = load_prepared(prepare(cxi, work/f'val_{dtype}.h5', size=256, dtype=dtype, compression='blosc' if dtype == 'float16' else 'none', progress=False))
        runs = [run_variant(prep, nuis, 'CPLR, cpu recipe', spec, s, work/f'study_{dtype}') for s in range(seeds)]
        out[dtype] = {k: v for k, v in summarise(runs).items() if not isinstance(v, (list, dict))}
    return dict(n=n, seeds=seeds, simulation=VALIDATION_SEED, **out)

def case_faiss(work:Path, quick:bool)->dict:
    from bench_index import faiss_recall
    return faiss_recall(n=100_000 if quick else 1_000_000, d=128, nq=2_000 if quick else 10_000, k=13)

CASES = {'entries': case_entries, 'train_rss': case_train_rss, 'prepare': case_prepare,
         'quantisation': case_quantisation, 'training': case_training, 'faiss': case_faiss}

def markdown(r:dict)->str:
    "The results as Markdown tables, with the targets."
    md, ok = ["## Scale (issue 12)", ""], lambda b: 'met' if b else '**not met**'
    if 'entries' in r:
        e = r['entries']
        md += [f"- `cplr-prepare --select all` of {e['n']} entries: {'loads' if e['loads'] else 'FAILED'} "
               f"(last entry {e['last_entry']}), {e['wall_s']:.1f} s, peak {e['rss_gib']:.2f} GiB: {ok(e['loads'])}", ""]
    if 'train_rss' in r:
        t = r['train_rss']; s, b = t['small'], t['big']
        md += ["| cplr-train --epochs 1, 64 px | " + f"N = {s} | N = {b} | growth | target < 0.3 GB (0.28 GiB) |", "|---|---|---|---|---|"]
        for how in ('default', 'stream'):
            md.append(f"| {how} | {t[f'{how}_{s}']['rss_gib']:.2f} GiB ({t[f'{how}_{s}']['wall_s']:.0f} s) | "
                      f"{t[f'{how}_{b}']['rss_gib']:.2f} GiB ({t[f'{how}_{b}']['wall_s']:.0f} s) | {t[f'{how}_growth_gib']:+.2f} GiB | "
                      f"{ok(t[f'{how}_growth_gib'] < 0.3e9 / 2**30)} |")
        md.append("")
    if 'prepare' in r:
        p = r['prepare']; ns = sorted((v for k, v in p.items() if k != 'size'), key=lambda v: v['n'])
        md += ["| cplr-prepare, 256² -> 256 px | images/s | peak RSS |", "|---|---|---|"]
        md += [f"| {v['n']} images | {v['images_per_s']:.0f} | {v['rss_gib']:.2f} GiB |" for v in ns]
        md += ["", f"- streaming rate at {ns[-1]['n']} images: {ns[-1]['images_per_s']:.0f} images/s, target >= 300: "
               f"{ok(ns[-1]['images_per_s'] >= 300)}; peak memory {ns[0]['rss_gib']:.2f} GiB at {ns[0]['n']}, "
               f"{ns[-1]['rss_gib']:.2f} GiB at {ns[-1]['n']}"]
        sz = p['size']
        md += [f"- prepared file of {sz['n']} images: {sz['default_mb']:.0f} MB (float16, Blosc) against {sz['float32_mb']:.0f} MB "
               f"(float32, no compression: the format before), {sz['ratio']:.2f}x smaller, target >= 2x: {ok(sz['ratio'] >= 2)}; "
               f"float32 prepares at {sz['float32_images_per_s']:.0f} images/s", ""]
    if 'quantisation' in r:
        q, cols = r['quantisation'], ('overlap', 'precision', 'recall', 'f1', 'accuracy')
        md += [f"| {q['n']} images | " + " | ".join(cols) + " | max abs diff to float32 |", "|---|" + "---|" * 6]
        for k, title in [('pca', 'PCA'), ('network', f"network ({q['epochs']} epochs, trained on float32)"),
                         ('trained_on', 'network trained on the file itself (info)')]:
            for name in VARIANTS:
                if name not in q[k]: continue
                v, d = q[k][name], q[k].get(f'max_abs_diff {name}')
                md.append(f"| {title}, {name} | " + " | ".join(f"{v[s]:.4f}" for s in cols) + (f" | {d:.4f} |" if d is not None else " | |"))
        worst = max(q['pca']['max_abs_diff float16'], q['network']['max_abs_diff float16'])
        floor = max(q['pca']['max_abs_diff float32 + N(0, 1e-6)'], q['network']['max_abs_diff float32 + N(0, 1e-6)'])
        md += ["", f"- every score of PCA and of a fixed network within 0.005 of float32: {ok(worst <= 0.005)} (largest change {worst:.4f}; "
               f"the same scores move by up to {floor:.4f} when the float32 views get Gaussian noise of 10^-6, far below any rounding: "
               "the cross-validated read-out moves with any change of its input)", ""]
    if 'training' in r:
        t, cols = r['training'], ('overlap', 'precision', 'recall', 'photon_ratio')
        md += [f"| cpu recipe trained on the validation simulation (seed {t['simulation']}, {t['n']} shots), {t['seeds']} training seeds | "
               + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        md += [f"| {d} views | " + " | ".join(f"{t[d][c]:.3f} ± {t[d][c + '_std']:.3f}" for c in cols) + " |" for d in ('float32', 'float16')]
        md += ["", f"- Overlap difference float16 − float32: {t['float16']['overlap'] - t['float32']['overlap']:+.3f} "
               f"(the spread of training seeds: ±{max(t['float16']['overlap_std'], t['float32']['overlap_std']):.3f})", ""]
    if 'faiss' in r:
        f = r['faiss']
        md += [f"- faiss {f.get('kind', '')} index of {f['n']} x {f['d']}: build {f['build_s']:.0f} s, search of {f['nq']} queries "
               f"{f['search_s']:.1f} s, recall@{f['k']} {f['recall']:.4f} vs exact: "
               f"{ok(f['recall'] >= 0.95 and f['build_s'] + f['search_s'] <= 900)}", ""]
    return '\n'.join(md)

if __name__ == '__main__': run_cases(__doc__, CASES, markdown, HERE/'scale'/'results.json')
