#!/usr/bin/env python
"""Benchmark of the Overlap score's exact nearest-neighbour search (issue 6, DESIGN.md performance budget).

For N random 512-d float32 embeddings with random 11-label vectors, each case runs in a fresh subprocess
and reports its wall time and its peak resident memory (`ru_maxrss`):

- `floor`:     the bare blocked N×N×D matrix product (same block size as `knn_blocks`), the compute any exact
               search must do;
- `ours`:      `cplr_nb.neighbours.overlap_score(emb, labels)` (cosine, k = round(0.01 N)), everything included;
- `topk`:      the same with the plain `torch.topk` selection instead of the threshold selection (optional);
- `reference`: the reference approach, `sklearn.metrics.pairwise_distances` (full N×N matrix) + `argsort`
               of every row (once, where the reference script sorts every row once per class) + scoring;
               only where the matrix fits (N <= --reference-max).

Usage:
    nice -n 10 python benchmarks/bench_knn.py                      # N = 1260, 10000 (with reference, topk)
    nice -n 10 python benchmarks/bench_knn.py --sizes 100000       # the big one: ~2-3 min
Target (DESIGN.md): ours within 1.3x of the floor and <= 2 GB peak at N = 100 000.
"""
import argparse, json, os, resource, subprocess, sys, time

def make_data(n, dim, seed=0):
    import numpy as np
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, dim), dtype=np.float32), (rng.random((n, 11)) < 0.25).astype(np.uint8)

def rss_mb(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def case(name, n, dim, repeat=1):
    "Run one case `repeat` times in this process; returns a dict with the fastest wall time (printed by the child)."
    import torch
    from cplr_nb.neighbours import neighbours_k
    emb, labels = make_data(n, dim)
    base = rss_mb()
    k, value, walls = neighbours_k(n), None, []
    for _ in range(repeat):
        t = time.perf_counter()
        value = run_case(name, emb, labels, k)
        walls.append(time.perf_counter() - t)
    wall = min(walls)
    return dict(case=name, n=n, dim=dim, k=k, wall_s=wall, walls_s=walls, peak_rss_mb=rss_mb(), base_rss_mb=base,
                gflops=2 * n * n * dim / wall / 1e9, overlap=value, threads=torch.get_num_threads())

def run_case(name, emb, labels, k):
    "The timed work of one case; returns the Overlap (None for the floor)."
    import numpy as np, torch
    from cplr_nb.neighbours import default_block_size, overlap_score, _label_codes, _pair_table
    from cplr_nb.data import RELEVANT_IDX
    n, value = len(emb), None
    if name == 'floor':
        z = torch.nn.functional.normalize(torch.from_numpy(emb), dim=1)
        bs = default_block_size(n)
        buf = torch.empty(min(bs, n), n)
        for s in range(0, n, bs): torch.mm(z[s:s + bs], z.T, out=buf[:min(bs, n - s)])
    elif name == 'ours':
        value = overlap_score(emb, labels)[0]
    elif name == 'topk':
        import cplr_nb.neighbours as NB          # `overlap_score` looks `knn_blocks` up in its own module
        orig = NB.knn_blocks
        NB.knn_blocks = lambda *a, **kw: orig(*a, select='topk', **kw)
        value = overlap_score(emb, labels)[0]
    elif name == 'reference':
        from sklearn.metrics import pairwise_distances
        d = pairwise_distances(emb, metric='cosine')
        closest = np.array([np.argsort(x)[1:1 + k] for x in d])
        code, table = _label_codes(labels), _pair_table()
        score = table[code[:, None], code[closest]].mean(1)
        per = [score[labels[:, i] == 1].mean() for i in RELEVANT_IDX if labels[:, i].any()]
        value = float(np.nanmean(per))
    else: raise ValueError(name)
    return value

def run_child(name, n, dim, repeat):
    "Run a case in a fresh subprocess, so that its peak memory is its own."
    p = subprocess.run([sys.executable, __file__, '--child', name, '--sizes', str(n), '--dim', str(dim), '--repeat', str(repeat)],
                       capture_output=True, text=True)
    if p.returncode: raise RuntimeError(f"case {name} N={n} failed:\n{p.stderr[-3000:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r['children_maxrss_mb'] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # max over children so far
    return r

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', default='1260,10000', help='comma-separated N')
    ap.add_argument('--dim', type=int, default=512)
    ap.add_argument('--reference-max', type=int, default=10000, help='largest N for the full-matrix reference')
    ap.add_argument('--no-topk', action='store_true', help='skip the plain-topk variant')
    ap.add_argument('--repeat', type=int, default=None, help='timed repeats per case, fastest kept (default 3 for N <= 20000, else 1)')
    ap.add_argument('--child', default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(',')]
    if a.child:
        print(json.dumps(case(a.child, sizes[0], a.dim, a.repeat))); return
    print(f"# bench_knn: D={a.dim}, cores={os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at start")
    rows = []
    for n in sizes:
        cases = ['floor', 'ours'] + ([] if a.no_topk or n > 20000 else ['topk']) + (['reference'] if n <= a.reference_max else [])
        rep = a.repeat or (3 if n <= 20000 else 1)
        res = {c: run_child(c, n, a.dim, rep) for c in cases}
        fl = res['floor']['wall_s']
        for c, r in res.items():
            rows.append(r)
            ov = '' if r['overlap'] is None else f"overlap={r['overlap']:.6f}"
            print(f"N={n:>7} {c:>9}: {r['wall_s']:8.2f} s  {r['wall_s']/fl:5.2f}x floor  peak {r['peak_rss_mb']:7.0f} MB "
                  f"(after data {r['base_rss_mb']:.0f} MB)  {r['gflops']:6.1f} GFLOP/s-equiv  {ov}", flush=True)
        if 'reference' in res:
            same = abs(res['reference']['overlap'] - res['ours']['overlap']) < 1e-9
            print(f"N={n:>7} ours vs reference Overlap: {'equal' if same else 'differ by %.1e' % abs(res['reference']['overlap'] - res['ours']['overlap'])}", flush=True)
    print(f"# load average {os.getloadavg()[0]:.2f} at end")
    print(json.dumps(rows))

if __name__ == '__main__': main()
