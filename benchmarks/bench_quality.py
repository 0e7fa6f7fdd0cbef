"""Quality of the learned embedding (issue 11): the ablation study, and the targets on the default run.

  python benchmarks/bench_quality.py [--work DIR] [--seeds 3] [--only study,default,second,budgets,shipped_budgets,levers,precision,optim,batch,views,width,resolution,res48,shipped]
      [--budget-data independent,default,second] [--lever-data independent,validation,detector] [--mults 1,2,4] [--mult-seeds 2:3]

1. `study`: `cplr_nb.ablation.study` on the validation simulation (seed `VALIDATION_SEED`, used nowhere else), every
   variant with `--seeds` training seeds. Writes benchmarks/quality/study.json, study.md, ablation.png, minutes.png.
2. `default`, `second`: the default `cplr-reproduce` (3 training seeds of CPLR P<=>C and CLR P<=>P, the fast baselines,
   the untrained encoder) on the default simulation (seed 0) and on a second one (`SECOND_SEED`), run as a user runs it
   (wall time and peak memory measured), then every method's nuisance measures, and the targets of issue 11 checked.
   Writes benchmarks/quality/targets.md and targets.json.
3. `levers` (issue 19): the same comparison for `LEVER_METHODS` (CPLR P<=>C, the mixed `polmix` pairs, CLR P<=>P) on the
   validation data of --lever-data (`independent`, `validation`, and `detector`: the validation simulation through the facility
   detector's validation seed, prepared with everything found from the data), with PCA and UMAP. Writes
   benchmarks/quality/levers.json, levers.md and levers.png.
   `precision`: the same for `PRECISION_METHODS` (CPLR P<=>C and CLR P<=>P, each in the recipe's bfloat16 autocast and in float32,
   which differ only on CPUs with bfloat16). Writes benchmarks/quality/precision.json, .md and .png. The levers share one cache
   (--work/levers), so the runs of the recipe itself are trained once.
   `optim`: the same for `OPTIM_METHODS` (CPLR P<=>C and CLR P<=>P with the LARS learning rate ×3 and at batch 64, CPLR P<=>C at batch 32;
   twice and four times the steps per epoch). Writes benchmarks/quality/optim.json, .md and .png.
   `batch`: `BATCH_METHODS` (CPLR P<=>C at the recipe's batch of 128 and at 64), for more seeds of the one change `optim` left
   open (`--seeds 6`). Writes benchmarks/quality/batch.json, .md and .png.
   `views`: `VIEW_METHODS` (CPLR P<=>C at the NT-Xent temperatures 0.1 and 0.5, without crops, and with a crop of 25-100 % of the area on
   every view). Writes benchmarks/quality/views.json, .md and .png.
   `width`: `WIDTH_METHODS` (CPLR P<=>C with the `cpu` encoder at full width: 512-d features, about 2-3x the minutes). Writes
   benchmarks/quality/width.json, .md and .png.
   `resolution`: `RESOLUTION_METHODS` (CPLR P<=>C with 48 px views at 1, 1.5 and 2 times the recipe's epochs, and with 96 px views at half
   the epochs; the recipe: 64 px). Writes benchmarks/quality/resolution.json, .md and .png.
   `res48`: `RES48_METHODS` (CPLR P<=>C at 64 px, the recipe, and at 48 px with 1.5x the epochs, the recipe's minutes), for more seeds of
   the one change `resolution` left open (`--seeds 6`). Writes benchmarks/quality/res48.json, .md and .png.
   `shipped`: `SHIPPED_METHODS` (the package's pretrained encoder with no training, the recipe started from it, and the recipe from
   scratch). Writes benchmarks/quality/shipped.json, .md and .png.
4. `budgets` (issue 19): `cplr_nb.ablation.budgets` on each data set of --budget-data (`independent`: ../shared/data/independent_val.h5,
   another simulator's shots, `--select all`; `default`: simulation seed 0; `second`: seed `SECOND_SEED`; `validation`: seed
   `VALIDATION_SEED`): CPLR, CLR and lightly's SimCLR recipe (`pip install "cplr_nb[peers]"`) at --mults times the minutes of one
   default CPLR run, --seeds seeds at 1x and --mult-seeds at the longer budgets, with the pixel baselines. Writes
   benchmarks/quality/budgets.json, budgets.md and budgets.png, each with the date, machine and commit it ran on.
   `shipped_budgets`: the same with the shipped encoder beside them (`SHIPPED_METHODS`' no training and the recipe started from it),
   sharing the budgets' cache. Writes benchmarks/quality/shipped_budgets.json, .md and .png.

Everything is cached under --work (default /tmp/cplr_quality): run the same command again after an interruption
(an interrupted default run restarts, for an honest wall time, unless --resume).
The study takes about two hours on 2 CPU cores, each default run about a quarter of an hour.
"""
import argparse, json, math, shutil, sys
from pathlib import Path
import numpy as np, h5py
sys.path.insert(0, str(Path(__file__).parent))
from bench_projection import run_with_peak_memory
from provenance import stamp
from cplr_nb.ablation import (study, study_table, plot_study, plot_minutes, nuisance, baseline_neighbours, _curve, _slug, fold_overlap,
                              study_data, budgets, budget_table, plot_budgets, VALIDATION_SEED, SECOND_SEED, LEVER_METHODS, PRECISION_METHODS, OPTIM_METHODS, BATCH_METHODS, VIEW_METHODS, WIDTH_METHODS, RESOLUTION_METHODS, RES48_METHODS, SHIPPED_METHODS, BUDGET_METHODS)
from cplr_nb.projection import prepare, load_prepared
from cplr_nb.neighbours import knn, neighbours_k
from cplr_nb.embed import read_embeddings
from cplr_nb.report import UNTRAINED
from cplr_nb.train import read_log

HERE = Path(__file__).parent
RESULTS = HERE/'quality'

def save_fig(fig, path):
    fig.savefig(path, dpi=90, bbox_inches='tight')

def run_study(work:Path, seeds:int):
    res = study(work/'study', seeds=seeds)
    RESULTS.mkdir(exist_ok=True)
    for v in res['variants'].values():               # the per-epoch curves stay; the big per-run fields do not
        for r in v['runs']: r.pop('spec', None)
    (RESULTS/'study.json').write_text(json.dumps(dict(res, stamp=stamp(RESULTS)), indent=1))
    (RESULTS/'study.md').write_text(f"# Ablation study (validation simulation, seed {VALIDATION_SEED})\n\n" + study_table(res))
    save_fig(plot_study(res), RESULTS/'ablation.png'); save_fig(plot_minutes(res), RESULTS/'minutes.png')
    print(study_table(res))

def nuisance_params(cxi:Path)->dict:
    "Photons and detector response of every simulated shot, from the simulator's `/simulation` group."
    with h5py.File(cxi, 'r') as f: return {'photons': f['simulation/photons'][()], 'response': f['simulation/detector_response'][()]}

def default_run(work:Path, seed:int, resume:bool=False)->dict:
    "Run `cplr-reproduce` as a user would (wall time, peak memory), then add each method's nuisance measures."
    out = work/f'reproduce_seed{seed}'
    timing = out/'timing.json'
    if not timing.exists():
        cmd = ['cplr-reproduce', '--out', str(out), '--seed', str(seed)]
        if resume and (out/'stages').exists():     # finish an interrupted run; its wall time and memory are then not measured
            run_with_peak_memory(cmd)
            timing.write_text(json.dumps(dict(wall_min=None, peak_gb=None, resumed=True)))
        else:
            shutil.rmtree(out, ignore_errors=True)
            wall, peak = run_with_peak_memory(cmd)
            timing.write_text(json.dumps(dict(wall_min=wall / 60, peak_gb=peak)))
    rep = json.loads((out/'report.json').read_text())
    nuis = nuisance_params(out/'data'/'simulated.cxi')
    k = neighbours_k(rep['dataset']['n'])
    files = {'CPLR P⇔C': sorted((out/'embeddings').glob('polcart_s*.h5')), 'CLR P⇔P': sorted((out/'embeddings').glob('polpol_s*.h5')),
             UNTRAINED: [out/'embeddings'/'untrained.h5']}
    for name, fs in files.items():
        ns = [nuisance(knn(read_embeddings(f)['embeddings'], k, 'cosine', exclude_self=True)[0], **nuis) for f in fs]
        rep['methods'][name].update({key: float(np.mean([x[key] for x in ns])) for key in ns[0]})
    names = {'PCA': 'pca', 'PCA (correlation)': 'pca corr', 'KPCA': 'kpca', 'KPCA (correlation)': 'kpca corr', 'FA': 'fa',
             'UMAP': 'umap', 'VAE': 'vae', 'noise': 'noise', 'SSIM': 'ssim'}
    for name, b in names.items():
        if name in rep['methods']: rep['methods'][name].update(nuisance(baseline_neighbours(out/'baselines', b, k), **nuis))
    curves = [[(t, o) for t, o, _ in _curve(read_log(d/'log.csv'))] for d in sorted((out/'runs').glob('polcart_s*'))]
    return dict(seed=seed, **json.loads(timing.read_text()), methods=rep['methods'], cplr_curves=curves)

def minutes_to_beat(curves:list, level:float)->float:
    "Mean over runs of the training minutes at which the probe's Overlap first exceeds `level` (inf where it never does)."
    return float(np.mean([next((t for t, o in c if o > level), math.inf) for c in curves]))

BASELINES = ('PCA', 'PCA (correlation)', 'KPCA', 'KPCA (correlation)', 'FA', 'UMAP', 'VAE', 'noise', 'SSIM')

def targets(run:dict)->list:
    "(target, value, required, met) for the issue's targets on one default run."
    m = run['methods']
    base = {n: m[n] for n in BASELINES if n in m}
    best_o = max(base, key=lambda n: base[n]['overlap'])
    best_r = max((n for n in base if base[n].get('recall') is not None), key=lambda n: base[n]['recall'])
    c = m['CPLR P⇔C']
    rows = [(f"CPLR Overlap − best baseline ({best_o})", c['overlap'] - base[best_o]['overlap'], 0.05),
            ("CPLR Overlap − untrained encoder", c['overlap'] - m[UNTRAINED]['overlap'], 0.10),
            ("CPLR Overlap − noise", c['overlap'] - m['noise']['overlap'], 0.15),
            (f"CPLR recall − best baseline recall ({best_r})", c['recall'] - base[best_r]['recall'], 0.10),
            ("CPLR neighbours' photon distance / random", c['photon_ratio'], 0.80),
            (f"training minutes until CPLR's probe beats {best_o} (at most)", minutes_to_beat(run['cplr_curves'], base[best_o]['overlap']), 5.),
            ("wall time of cplr-reproduce (min, at most)", run['wall_min'], 20.),
            ("peak memory (GB, at most)", run['peak_gb'], 8.)]
    return [(t, v, req, v <= req if 'at most' in t else v >= req) for t, v, req in rows if v is not None]  # a resumed run has no wall time

def method_table(run:dict)->str:
    lines = ['| method | Overlap | precision | recall | photon distance / random | same response |', '|---|---|---|---|---|---|']
    f = lambda e, k: f"{e[k]:.3f} ± {e[k + '_std']:.3f}" if e.get(k + '_std') else (f"{e[k]:.3f}" if e.get(k) is not None else '–')
    for name, e in run['methods'].items():
        lines.append(f"| {name} | {f(e, 'overlap')} | {f(e, 'precision')} | {f(e, 'recall')} | "
                     f"{e.get('photon_ratio', math.nan):.2f} | {e.get('same_response', math.nan):.2f} |")
    return '\n'.join(lines)

def write_targets(runs:list):
    RESULTS.mkdir(exist_ok=True)
    md = ["# Targets of issue 11 on the default run", "",
          "`cplr-reproduce` with its defaults (3 training seeds per mode; mean ± std over the seeds), on the default simulation "
          f"(seed 0) and on a second simulation (seed {SECOND_SEED}); produced by `python benchmarks/bench_quality.py`.", ""]
    for run in runs:
        t = targets(run)
        md += [f"## Simulation seed {run['seed']}", ""]
        if run.get('resumed'): md += ["This run was interrupted and resumed (`--resume`): its wall time and memory are not measured.", ""]
        md += [method_table(run), "", "| target | value | required | met |", "|---|---|---|---|"]
        md += [f"| {name} | {v:.3f} | {'≤' if 'at most' in name else '≥'} {req} | {'yes' if ok else '**no**'} |" for name, v, req, ok in t]
        md.append('')
    (RESULTS/'targets.md').write_text('\n'.join(md) + '\n')
    (RESULTS/'targets.json').write_text(json.dumps([dict(r, stamp=stamp(RESULTS)) for r in runs], indent=1))
    print('\n'.join(md))

INDEPENDENT = HERE.parent.parent/'shared'/'data'/'independent_val.h5'
BUDGET_DATA = {'independent': 'independent_val.h5 (another simulator, --select all)', 'default': 'default run (simulation seed 0)',
               'second': f'second simulation (seed {SECOND_SEED})', 'validation': f'validation simulation (seed {VALIDATION_SEED})',
               'detector': f'validation simulation (seed {VALIDATION_SEED}) through the facility detector (seed {VALIDATION_SEED})'}

def budget_data(work:Path, key:str)->tuple:
    "(prepared file, nuisance parameters or None) of one data set of the budget comparison; None when it is not there."
    if key == 'independent':
        if not INDEPENDENT.exists():
            print(f"{INDEPENDENT}: not found, the independent simulator's row is skipped"); return None
        out = work/'budgets'/'independent'/'prepared.h5'
        if not out.exists(): out.parent.mkdir(parents=True, exist_ok=True); prepare(INDEPENDENT, out, size=256, select='all', progress=False)
        return out, None
    if key == 'detector':          # dark, hits and centre found from the data, partner fill: the default of `cplr-prepare` on such a run
        from bench_facility import facility_pair, prepare_variant
        fac_work = work/'detector'
        clean, fac, det = facility_pair(fac_work, VALIDATION_SEED, VALIDATION_SEED, 1260)
        return prepare_variant(fac_work, clean, fac, det, 'auto', dict(auto=True, fill='partner')), None
    seed = {'default': 0, 'second': SECOND_SEED, 'validation': VALIDATION_SEED}[key]
    return study_data(seed, work/'study_data')

TITLES = {'budgets': "CPLR, CLR and a general library's SimCLR at several budgets (issue 19)",
          'levers': "Levers on the validation data: the paper's P⇔C pairs, P⇔P pairs, and both in one loss (issue 19)",
          'precision': "A lever on the validation data: bfloat16 autocast or float32 on a CPU that has bfloat16 (issue 19)",
          'optim': "A lever on the validation data: the optimisation (LARS learning rate ×3; batch 64 and 32: twice and four times the steps) (issue 19)",
          'batch': "A lever on the validation data: CPLR P⇔C at batch 128 (the recipe) and 64, with more seeds (issue 19)",
          'views': "A lever on the validation data: the NT-Xent temperature (0.1, 0.2, 0.5) and the crops (none, half the views, every view) (issue 19)",
          'width': "A lever on the validation data: the encoder's width, half (the recipe, 256-d) or full (512-d) (issue 19)",
          'resolution': "A lever on the validation data: the views' resolution, 48, 64 (the recipe) or 96 px, at the recipe's minutes or epochs (issue 19)",
          'res48': "A lever on the validation data: CPLR P⇔C at 64 px (the recipe) and at 48 px with 1.5× the epochs (the recipe's minutes), with more seeds (issue 19)",
          'shipped_budgets': "The shipped encoder beside CPLR, CLR and a general library's SimCLR at several budgets, on the data of issue 19's targets",
          'shipped': "The shipped encoder on the validation data: no training, the recipe started from it, and the recipe from scratch (issue 19)"}
SHIPPED_BUDGET_METHODS = {**BUDGET_METHODS, **{m: SHIPPED_METHODS[m] for m in ('shipped, no training', 'shipped + the usual minutes')}}
BUDGET_KINDS = {'budgets': BUDGET_METHODS, 'shipped_budgets': SHIPPED_BUDGET_METHODS}   # comparisons on --budget-data; their runs share one cache (work/budgets)
LEVERS = {'levers': LEVER_METHODS, 'precision': PRECISION_METHODS, 'optim': OPTIM_METHODS, 'batch': BATCH_METHODS, 'views': VIEW_METHODS, 'width': WIDTH_METHODS, 'resolution': RESOLUTION_METHODS, 'res48': RES48_METHODS, 'shipped': SHIPPED_METHODS}   # lever -> its methods; their runs share one cache (work/levers)

def within_ceiling(out:Path, res:dict)->dict|None:
    "Each method's Overlap at 1x within the held-out folds of the committed study's supervised ceiling, beside that ceiling and the untrained floor (the study's data only; else None)."
    path = RESULTS/'study.json'
    st = json.loads(path.read_text()) if path.exists() else {}
    if 'ceiling' not in st or st['data'] != dict(seed=VALIDATION_SEED, n=res['data']['n'], size=256): return None
    labels = load_prepared(res['data']['source']).labels
    folds = [f['test'] for f in st['ceiling']['folds']]
    def emb(r):
        name = _slug(r['variant'])
        found = [p for p in (out/'results'/f"{name}_s{r['seed']}.npy", out/'results'/f"{name}.npy") if p.exists()]
        if not found: raise FileNotFoundError(f"{out/'results'}: no embedding of {r['variant']} (seed {r['seed']}) to score within the ceiling's folds")
        return np.load(found[0])
    floor, top = st['ceiling']['within_folds']['untrained'], st['ceiling']['supervised']
    within = {m: float(np.mean([fold_overlap(emb(r), labels, folds) for r in v['1']['runs']])) for m, v in res['methods'].items() if '1' in v}
    return dict(supervised=top, untrained=floor, within_folds=within, share={m: (x - floor) / (top - floor) for m, x in within.items()})

def run_budgets(work:Path, keys:list, seeds:int, mult_seeds:int, mults:tuple, kind:str='budgets'):
    "The budget comparison (`kind` a key of `BUDGET_KINDS`: CPLR, CLR, the peer, and the shipped encoder; a key of `LEVERS`: its methods) on each data set; the results of earlier data sets are kept, each with its own stamp."
    path = RESULTS/f'{kind}.json'
    done = json.loads(path.read_text()) if path.exists() else {}
    for key in keys:
        data = budget_data(work, key)
        if data is None: continue
        extra = dict(methods=LEVERS[kind], baselines=('pca', 'umap')) if kind in LEVERS else dict(methods=BUDGET_KINDS[kind])
        res = budgets(work/('levers' if kind in LEVERS else 'budgets')/key, *data, mults=mults, seeds=seeds, mult_seeds=mult_seeds, **extra)
        if key == 'validation' and (ceiling := within_ceiling(work/('levers' if kind in LEVERS else 'budgets')/key, res)): res['ceiling'] = ceiling
        done[BUDGET_DATA[key]] = dict(res, stamp=stamp(RESULTS))
        RESULTS.mkdir(exist_ok=True)
        path.write_text(json.dumps(done, indent=1))
        md = [f"# {TITLES[kind]}", "",
              f"Produced by `python benchmarks/bench_quality.py --only {kind}`. The unit of minutes is one default CPLR run on that data set; "
              "every method is scored by `cplr_nb.ablation.score` (Overlap with k = 1 % of N, cosine; macro precision and recall of the "
              "linear read-out, 3 seeds × 5 folds).", ""]
        for name, r in done.items():
            s = r['stamp']
            md += [f"## {name}", "", f"{s['date']}, {s['machine']}, commit {s['commit']}; one default CPLR run: {r['unit_min']:.2f} min.", ""]
            for mult in sorted({m for v in r['methods'].values() for m in v}, key=float):
                md += [f"### {mult}× the minutes", "", budget_table({name: r}, int(mult)), ""]
        (RESULTS/f'{kind}.md').write_text('\n'.join(md) + '\n')
        save_fig(plot_budgets({k: v for k, v in done.items()}), RESULTS/f'{kind}.png')
        print(budget_table({BUDGET_DATA[key]: res}))

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--work', default='/tmp/cplr_quality'); ap.add_argument('--seeds', type=int, default=3)
    ap.add_argument('--only', default='study,default,second,budgets', help=f"of study, default, second, {', '.join(BUDGET_KINDS)}, {', '.join(LEVERS)}")
    ap.add_argument('--budget-data', default='independent,default,second', help=f"data sets of the budget comparison, of {list(BUDGET_DATA)}")
    ap.add_argument('--lever-data', default='independent,validation,detector', help=f"data sets of the levers (validation data only), of {list(BUDGET_DATA)}")
    ap.add_argument('--mults', default='1,2,4', help='budgets, in units of one default CPLR run')
    ap.add_argument('--mult-seeds', default='1', help="training seeds at the budgets above 1x: N, or per budget, e.g. 2:3,4:1")
    ap.add_argument('--resume', action='store_true', help='finish interrupted default runs instead of restarting them (no wall time then)')
    a = ap.parse_args()
    work, only = Path(a.work), a.only.split(',')
    if 'study' in only: run_study(work, a.seeds)
    runs = [default_run(work, s, a.resume) for s, key in ((0, 'default'), (SECOND_SEED, 'second')) if key in only]
    if runs: write_targets(runs)
    mult_seeds = {int(m): int(n) for m, n in (x.split(':') for x in a.mult_seeds.split(','))} if ':' in a.mult_seeds else int(a.mult_seeds)
    for name in (*BUDGET_KINDS, *LEVERS):
        if name not in only: continue
        flag, keys = ('--budget-data', a.budget_data.split(',')) if name in BUDGET_KINDS else ('--lever-data', a.lever_data.split(','))
        bad = [k for k in keys if k not in BUDGET_DATA]
        if bad: sys.exit(f"error: {flag} {bad}: not among {list(BUDGET_DATA)}")
        if name in LEVERS and {'default', 'second'} & set(keys): sys.exit(f"error: {flag}: levers are chosen on validation data (independent, validation, detector)")
        run_budgets(work, keys, a.seeds, mult_seeds, tuple(int(m) for m in a.mults.split(',')), name)
