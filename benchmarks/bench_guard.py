"""Calibration of the quality guard (issue 20): the margins of `cplr_nb.guard` over training seeds, for the default recipe and a broken one.

  python benchmarks/bench_guard.py [--work DIR] [--seeds 8] [--broken-seeds 5]

Trains the `cpu` recipe as the guard does (`guard_run`: `GUARD` shots of simulation seed `GUARD_SEED`, `GUARD` epochs,
one torch thread as CI gives each notebook) with --seeds training seeds, and each recipe of `BROKEN` with --broken-seeds.
Each margin's threshold is the default recipe's mean minus 4 standard deviations over its seeds, rounded down to 0.005.
Writes benchmarks/guard/calibration.json and calibration.md. Runs are cached under --work, each keyed by its whole
recipe, with the stamp of the process that trained it (`trained` in the results; the file's own stamp is of the scoring).
"""
import argparse, json, math, sys
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, str(Path(__file__).parent))
from provenance import stamp, stamp_line
from cplr_nb.guard import guard_run, BROKEN, GUARD, GUARD_SEED

OUT = Path(__file__).parent/'guard'

def calibrate(work:Path, seeds:int, broken_seeds:int)->dict:
    runs = {'default': [], **{k: [] for k in BROKEN}}
    for name, overrides, n in [('default', {}, seeds)] + [(k, v, broken_seeds) for k, v in BROKEN.items()]:
        for s in range(n):
            r = guard_run(work, s, **overrides)
            made = Path(r['run'])/'provenance.json'
            if not made.exists(): made.write_text(json.dumps(stamp(OUT)))   # trained just now, by this process
            r['trained'] = json.loads(made.read_text())
            runs[name].append({k: v for k, v in r.items() if k != 'overrides'})
            print(f"{name}, seed {s}: Overlap CPLR {r['cplr']:.3f}, untrained {r['untrained']:.3f}, PCA corr {r['pca_corr']:.3f}; F1 CPLR {r['cplr_f1']:.3f}, "
                  f"PCA {r['pca_f1']:.3f}, few labels {r['few_label_f1']:.3f}; trained {r['train_s']:.0f} s", flush=True)
    good = {m: np.array([r['margins'][m] for r in runs['default']]) for m in runs['default'][0]['margins']}
    thresholds = {m: math.floor((v.mean() - 4 * v.std(ddof=1)) * 200) / 200 for m, v in good.items()}
    return dict(stamp=stamp(OUT), guard=dict(GUARD, data_seed=GUARD_SEED), thresholds=thresholds, runs=runs)

def markdown(cal:dict)->str:
    names = list(cal['thresholds'])
    rows = ['| recipe | seeds | ' + ' | '.join(f'{m}: mean ± std (lowest, highest)' for m in names) + ' | trained s (median) |', '|---|---|' + '---|' * (len(names) + 1)]
    for name, runs in cal['runs'].items():
        cells = []
        for m in names:
            v = np.array([r['margins'][m] for r in runs])
            cells.append(f"{v.mean():+.3f} ± {v.std(ddof=1):.3f} ({v.min():+.3f}, {v.max():+.3f})")
        rows.append(f"| {name} | {len(runs)} | " + ' | '.join(cells) + f" | {np.median([r['train_s'] for r in runs]):.0f} |")
    rows.append('| threshold | | ' + ' | '.join(f"{cal['thresholds'][m]:+.3f}" for m in names) + ' | |')
    trained = sorted({stamp_line(r['trained']) for runs in cal['runs'].values() for r in runs if 'trained' in r})
    return (f"# Calibration of the quality guard (issue 20)\n\nScored: {stamp_line(cal['stamp'])}\n\n"
            + ''.join(f"Trained: {t}\n\n" for t in trained) +
            f"{cal['guard']['n']} shots of simulation seed {cal['guard']['data_seed']}, {cal['guard']['epochs']} epochs of the `cpu` recipe, one torch thread. "
            "Margins: CPLR's Overlap minus the untrained network's and PCA's (correlation); the linear read-out's macro F1, CPLR minus PCA; "
            "the few-label macro F1 at 5 labelled shots per class minus PCA's full linear protocol. Thresholds: the default recipe's mean minus 4 standard deviations.\n\n"
            + '\n'.join(rows) + '\n')

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--work', default='/tmp/cplr_guard'); ap.add_argument('--seeds', type=int, default=8); ap.add_argument('--broken-seeds', type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(1)
    cal = calibrate(Path(a.work), a.seeds, a.broken_seeds)
    OUT.mkdir(exist_ok=True)
    (OUT/'calibration.json').write_text(json.dumps(cal, indent=1))
    (OUT/'calibration.md').write_text(markdown(cal))
    print(markdown(cal))
