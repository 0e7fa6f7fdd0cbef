"""Per-method times of the Table 1 baselines (`cplr_nb.baselines.run_baselines`).

Default: 1260 simulated images (the paper's count, `select='paper'`), Polar views at 64x64, every baseline
(FA, PCA, KPCA, UMAP, VAE 'cpu' config, noise, SSIM, CW-SSIM, SIFT) with the default embedding size, evaluated
as the report does (linear read-out with 5 seeds + Overlap). Target (issue 7): all baselines, the N^2 measures
included, in <= 5 min on the 2-core CPU machine.

    python benchmarks/bench_baselines.py [--n 1260] [--size 64] [--dim 1024] [--methods ...] [--seeds 5] [--data prepared.h5]

`time_s` is the time a method takes to make its embedding (fit/train + embed) or its neighbours (the N^2
similarities); `eval_s` the time of its evaluation (linear read-out and Overlap, or Overlap alone).
"""
import argparse, json, os, tempfile, time
from pathlib import Path
import numpy as np, torch


def make_prepared(path, n, size, seed=0):
    "Simulate `n` paper-like images (256 px detector) and write their views at `size` as a prepared file."
    from cplr_nb.simulate import simulate
    from cplr_nb.projection import reference_views, write_prepared
    sim = simulate(n, size=256, seed=seed, select='paper')
    pol, cart = [], []
    for s in range(0, n, 128):
        p, c = reference_views(torch.from_numpy(np.asarray(sim.images[s:s + 128], np.float32)), size=size)
        pol.append(p[:, 0].numpy()); cart.append(c[:, 0].numpy())
    return write_prepared(path, np.concatenate(pol), np.concatenate(cart), sim.labels, source=f'simulate({n}, seed={seed})')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--n', type=int, default=1260)
    ap.add_argument('--size', type=int, default=64)
    ap.add_argument('--dim', type=int, default=None, help='embedding size (default: run_baselines default)')
    ap.add_argument('--methods', default='pca,kpca,fa,umap,vae,noise,ssim,cwssim,sift')
    ap.add_argument('--seeds', type=int, default=5)
    ap.add_argument('--data', default=None, help='use this prepared file instead of simulating')
    ap.add_argument('--out', default=None, help='output directory (default: a temporary one)')
    a = ap.parse_args()
    from cplr_nb.baselines import run_baselines
    out = Path(a.out or tempfile.mkdtemp(prefix='bench_baselines_'))
    data = a.data
    if data is None:
        t = time.perf_counter()
        data = make_prepared(out/'prepared.h5', a.n, a.size)
        print(f"simulated and prepared {a.n} images at {a.size}x{a.size} in {time.perf_counter() - t:.1f} s")
    kw = {} if a.dim is None else {'dim': a.dim}
    t0 = time.perf_counter()
    rep = run_baselines(data, out/'baselines', a.methods, size=a.size, seeds=a.seeds, progress=False, **kw)
    wall = time.perf_counter() - t0
    print(f"\n{'method':<10} {'time_s':>8} {'eval_s':>8} {'overlap':>8} {'precision':>9} {'recall':>7}")
    seen, total = set(), 0.
    for name, e in rep['methods'].items():
        fmt = lambda v: '–' if v is None else f'{v:.3f}'
        print(f"{name:<10} {e['time_s']:8.1f} {e['eval_s']:8.1f} {fmt(e['overlap']):>8} {fmt(e['precision']):>9} {fmt(e['recall']):>7}")
        if name.endswith(' corr'): continue           # shares the embedding of its method
        total += e['time_s']
    print(f"\nsum of method times: {total:.1f} s; whole run incl. evaluation and files: {wall:.1f} s "
          f"({'within' if wall <= 300 else 'OVER'} the 5 min target); torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"report: {out/'baselines'/'report.md'}")


if __name__ == '__main__': main()
