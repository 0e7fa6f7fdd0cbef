#!/usr/bin/env python
"""Using the embedding (issue 13): the few-label curve, the clusters, search at 10^6 and cplr-watch's pace.

  python benchmarks/bench_curate.py [--quick] [--only default,search,watch] [--workdir DIR]

Cases (the targets of issue 13, on 2 CPU cores):
- default: the default run's data (simulation seed 0, 1260 shots of 256 px, the `cpu` recipe, training seed 0):
  CPLR (polcart) and CLR (polpol) trained as `cplr-reproduce` trains them, PCA and the VAE as `cplr-baselines`
  makes them. Few labels: `few_label_curve` (the propagation chosen on the validation simulation, 1/2/5/10/20 labelled shots per relevant class, 5
  draws) of each; target: CPLR with 5 per class reaches at least the macro F1 of PCA under the full linear protocol
  (80 % labelled, `09_evaluate`). Clusters: `cluster_embedding` (HDBSCAN and k-means with k = 7, after UMAP to 10
  dimensions) of each, adjusted mutual information with the simulator's particle shapes (droplet, elongated, pair,
  capsule, dumbbell, prism, core-shell); target: CPLR above PCA. Figures for the README: the few-label curve, the
  neighbours of Figure 3 and the UMAP of CPLR, a montage of CPLR's clusters.
- search: `cplr-search` against 10^6 saved embeddings (128 dimensions, the clustered synthetic set of
  bench_index.py) with a saved faiss index; target: a query answered in under 1 s. Measured in-process (open the
  file, load the index, search, names of the hits) and as the console command (which adds Python's start-up and
  the imports of PyTorch and fastai).
- watch: `cplr-watch`'s throughput on raw 1035x1035 shots (`benchmarks/bench_watch.py`); target >= 120 shots/s.

Results: benchmarks/curate/results.json and .md, figures in benchmarks/curate/.
"""
import shutil, subprocess, sys, time
from pathlib import Path
import numpy as np, h5py

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from cases import run_cases
OUT = HERE/'curate'
RESULTS = {}      # the results so far: the default case uses the validation case's choice
SHOTS = (1, 2, 5, 10, 20)

def _save(fig, path:Path, dpi:int=90):
    "Save a figure as a PNG of at most 128 colours (the montages of magma images are 3x smaller), and close it."
    from PIL import Image
    import matplotlib.pyplot as plt
    fig.savefig(path, dpi=dpi, bbox_inches='tight'); plt.close(fig)
    Image.open(path).convert('RGB').quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)

def _data(work:Path, n:int, seed:int):
    "Simulation `seed` of `n` shots (the paper's selection), prepared; (prepared path, lazy PreparedData, particle shapes)."
    from cplr_nb.simulate import simulate, write_simulation
    from cplr_nb.projection import prepare, load_prepared
    sim, prep_path = work/f'sim_{n}_{seed}.cxi', work/f'prepared_{n}_{seed}.h5'
    if not sim.exists(): write_simulation(sim, simulate(n, 256, seed, select='paper'))
    if not prep_path.exists(): prepare(sim, prep_path, size=256, progress=False)
    with h5py.File(sim) as f: shapes = f['simulation/kind'][()].astype(str)
    return prep_path, load_prepared(prep_path, lazy=True), shapes

def _contrastive(work:Path, prep_path:Path, mode:str, epochs, tag:str)->np.ndarray:
    "Embeddings of a `cpu`-recipe run of `mode` (training seed 0) on `prep_path`, trained once."
    from cplr_nb.train import train
    from cplr_nb.embed import embed_run
    run = work/f'run_{tag}_{mode}'
    if not (run/'model.pth').exists():
        shutil.rmtree(run, ignore_errors=True)
        train(prep_path, mode, run, epochs=epochs, progress=False)
    return embed_run(run, prep_path)

def case_validation(work:Path, quick:bool)->dict:
    "The propagation method chosen on the validation simulation (seed 1001, used by no report): best macro F1 at 5 shots per class."
    from cplr_nb.curate import few_label_curve, PROPAGATION
    n, epochs = (400, 8) if quick else (1260, None)
    prep_path, prep, _ = _data(work, n, 1001)
    emb = _contrastive(work, prep_path, 'polcart', epochs, 'val')
    f1 = {m: float(np.mean([r['f1'] for r in few_label_curve(emb, prep.labels, (5,), seeds=5, method=m)])) for m in PROPAGATION}
    return dict(n=n, seed=1001, f1_at_5=f1, method=max(f1, key=f1.get))

def case_default(work:Path, quick:bool)->dict:
    import matplotlib; matplotlib.use('Agg')
    from sklearn.metrics import adjusted_mutual_info_score
    from cplr_nb.embed import read_embeddings
    from cplr_nb.baselines import run_baselines
    from cplr_nb.curate import few_label_curve, plot_few_label, cluster_embedding, cluster_montage
    from cplr_nb.report import figure3, pick_queries, umap_panels
    n, epochs = (400, 8) if quick else (1260, None)
    val = RESULTS.get('validation') or case_validation(work, quick)
    method = val['method']
    prep_path, prep, shapes = _data(work, n, 0)
    labels = prep.labels
    embs = {name: _contrastive(work, prep_path, mode, epochs, 'default') for name, mode in [('CPLR', 'polcart'), ('CLR', 'polpol')]}
    rep = run_baselines(prep_path, work/'baselines', methods='pca,vae', progress=False, **({'vae_epochs': 5} if quick else {}))
    pca, vae = read_embeddings(work/'baselines'/'pca.h5'), read_embeddings(work/'baselines'/'vae.h5')
    embs['PCA'] = pca['embeddings']
    embs['VAE'] = vae['mu']                                       # the VAE's means: the [mu, logvar] concatenation is for W2
    metrics = {'CPLR': 'cosine', 'CLR': 'cosine', 'PCA': 'euclidean', 'VAE': 'euclidean'}   # each embedding's own geometry, as in Table 1
    few = {name: few_label_curve(e, labels, SHOTS, seeds=5, method=method, metric=metrics[name]) for name, e in embs.items()}
    clusters = {}
    for name, e in embs.items():
        per = {}
        for cm in ('hdbscan', 'kmeans'):
            res = cluster_embedding(e, cm, n_clusters=7, metric=metrics[name])
            per[cm] = dict(ami=float(adjusted_mutual_info_score(shapes, res['cluster'])),
                           n_clusters=int(len(set(res['cluster'].tolist()) - {-1})), noise=float((res['cluster'] < 0).mean()))
            if name == 'CPLR' and cm == 'kmeans': cplr_clusters = res
        clusters[name] = dict(per, ami=max(v['ami'] for v in per.values()))
    figs = work if quick else OUT                                  # a quick run's figures stay out of the repository
    figs.mkdir(exist_ok=True)
    pca_f1 = float(rep['methods']['pca']['f1'])
    _save(plot_few_label(few, {'PCA, linear protocol (80 % labelled)': pca_f1}), figs/'few_label.png', 110)
    polar = prep.polar[:]
    _save(figure3(polar, labels, {'CPLR': (embs['CPLR'], 'cosine'), 'PCA': (pca['embeddings'], 'euclidean')}, pick_queries(labels)[:3], k=5),
          figs/'figure3.png')
    _save(umap_panels(embs['CPLR'], labels, 'cosine', 'CPLR, default run'), figs/'umap_cplr.png', 80)
    _save(cluster_montage(cplr_clusters, polar, n=8), figs/'clusters_cplr.png', 80)
    return dict(n=n, method=method, few_label=few, pca_full_f1=pca_f1, clusters=clusters,
                shapes=dict(zip(*np.unique(shapes, return_counts=True))), epochs=epochs or 'cpu config')

def case_search(work:Path, quick:bool)->dict:
    from bench_index import make_embeddings
    from cplr_nb.neighbours import build_index
    from cplr_nb.embed import write_embeddings
    from cplr_nb.curate import search_file
    n = 100_000 if quick else 1_000_000
    emb, _ = make_embeddings(n, 128, nq=1)
    path, index = work/f'emb_{n}.h5', work/f'emb_{n}.faiss'
    write_embeddings(path, emb, None, 'cplr', metric='cosine', extra={'entries': [f'entry_{i + 1}' for i in range(n)]})
    t0 = time.perf_counter(); build_index(emb, 'cosine').save(index); build = time.perf_counter() - t0
    del emb
    times = []
    for q in ['entry_17', 'entry_500001' if n > 500_000 else 'entry_50001', 'entry_999999' if n > 999_999 else 'entry_99999']:
        t0 = time.perf_counter(); hits = search_file(path, [q], k=10, index=index); times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    r = subprocess.run(['cplr-search', '--emb', str(path), '--query', 'entry_17', '--k', '10', '--index', str(index)], capture_output=True, text=True)
    cli = time.perf_counter() - t0
    if r.returncode != 0: raise RuntimeError(r.stderr[-2000:])
    t0 = time.perf_counter()
    subprocess.run([sys.executable, '-c', 'import cplr_nb.curate'], check=True)
    imports = time.perf_counter() - t0
    return dict(n=n, build_s=build, query_s=times, median_query_s=float(np.median(times)), cli_s=cli, import_s=imports, hits=len(hits))

def case_watch(work:Path, quick:bool)->dict:
    from bench_watch import watch_throughput
    return watch_throughput(quick=quick)

CASES = {'validation': case_validation, 'default': case_default, 'search': case_search, 'watch': case_watch}

def markdown(r:dict)->str:
    md, ok = ["## Using the embedding (issue 13)", ""], lambda b: 'met' if b else '**not met**'
    if 'default' in r:
        d = r['default']
        names = list(d['few_label'])
        v = r.get('validation', {})
        if v: md += [f"Propagation chosen on the validation simulation (seed {v['seed']}, {v['n']} shots, CPLR): macro F1 at 5 labelled shots per class "
                     + ", ".join(f"{m} {f:.3f}" for m, f in v['f1_at_5'].items()) + f" -> {v['method']}", ""]
        md += [f"Few labels: macro F1 (7 classes) of the shots left unlabelled, {d['method']} propagation, mean ± std over 5 draws; "
               f"{d['n']} shots of the default run.", "",
               "| labelled per class | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for s in SHOTS:
            cells = []
            for m in names:
                v = np.array([x['f1'] for x in d['few_label'][m] if x['shots'] == s])
                cells.append(f"{v.mean():.3f} ± {v.std():.3f}")
            md.append(f"| {s} | " + " | ".join(cells) + " |")
        c5 = np.mean([x['f1'] for x in d['few_label']['CPLR'] if x['shots'] == 5])
        md += ["", f"- CPLR with 5 labelled shots per class: {c5:.3f}; PCA with the full linear protocol (80 % labelled): "
               f"{d['pca_full_f1']:.3f}: {ok(c5 >= d['pca_full_f1'])}", "",
               "| clusters vs particle shapes (AMI) | HDBSCAN | k-means (k = 7) | best |", "|---|---|---|---|"]
        for m, v in d['clusters'].items():
            md.append(f"| {m} | {v['hdbscan']['ami']:.3f} ({v['hdbscan']['n_clusters']} clusters, {100 * v['hdbscan']['noise']:.0f} % noise) | "
                      f"{v['kmeans']['ami']:.3f} | {v['ami']:.3f} |")
        md += ["", f"- CPLR's clusters agree better with the particle shapes than PCA's: {ok(d['clusters']['CPLR']['ami'] > d['clusters']['PCA']['ami'])}", ""]
    if 'search' in r:
        s = r['search']
        md += [f"- cplr-search against {s['n']} saved embeddings with a faiss index (built in {s['build_s']:.0f} s): a query in "
               f"{s['median_query_s']:.2f} s (median of {len(s['query_s'])}: open, load the index, search, names), target < 1 s: "
               f"{ok(s['median_query_s'] < 1)}; the console command takes {s['cli_s']:.1f} s, of which {s['import_s']:.1f} s are "
               f"Python's start-up and the imports", ""]
    if 'watch' in r:
        w = r['watch']
        md += [f"- cplr-watch: {w.get('shots_per_s', float('nan')):.0f} shots/s on raw 1035² shots, target >= 120: "
               f"{ok(w.get('shots_per_s', 0) >= 120)}" + (f" ({w['summary']})" if 'summary' in w else ''), ""]
    return '\n'.join(md)

if __name__ == '__main__': run_cases(__doc__, CASES, markdown, OUT/'results.json', RESULTS)
