"""Benchmark of the diffraction simulator (issue 3; target: 1260 images of 256x256 in <= 60 s on the 2-core machine).

  python benchmarks/bench_simulate.py [--n 1260] [--size 256] [--repeats 3] [--voxel 20]

1. `simulate(n, size, select=...)` end to end, for 'paper' (the default of `cplr-simulate`: no Round or Empty shots,
   about 9 % of them voxelised capsules/prisms) and 'all' (the full priors); wall and CPU time, median of --repeats.
2. Where the time goes, per image: the analytic path (`analytic_intensity`) for a single droplet and a pair, the voxel
   path (`msft_intensity`) for --voxel capsules and prisms drawn from the simulator's own priors (median and maximum,
   the cost grows with the body's length), the detector model (`detect`) and the asymmetry measure.
Times are medians of repeats: the machine is shared with other jobs, so also the load average is printed; CPU time
close to wall time means the process was not starved.
"""
import argparse, os, statistics, time
import numpy as np
from cplr_nb.simulate import (simulate, detector, random_scene, render_scene, analytic_intensity, msft_intensity,
                              detect, random_detector, centro_asymmetry, Body, SCENE_KINDS)

def timed(f):
    w, c = time.perf_counter(), time.process_time()
    out = f()
    return time.perf_counter() - w, time.process_time() - c, out

def median_time(f, repeats):
    ts = [timed(f)[:2] for _ in range(repeats)]
    return statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts)

def scenes_of(kind, count, seed=0):
    "Scenes of one kind drawn from the simulator's priors."
    rng = np.random.default_rng(seed)
    return [random_scene(rng, kinds={kind: 1.}) for _ in range(count)]

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n', type=int, default=1260)
    ap.add_argument('--size', type=int, default=256)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--voxel', type=int, default=20, help='voxel-path bodies timed one by one')
    a = ap.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    simulate(8, a.size)                                        # warm-up: geometry cache, radius pool, BLAS
    rows = []
    for select in ['paper', 'all']:
        runs = [timed(lambda: simulate(a.n, a.size, seed=r, select=select)) for r in range(a.repeats)]
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        nvox = statistics.median(int(np.isin(r[2].params['kind'], [b'capsule', b'prism']).sum()) for r in runs)
        rows.append((f"simulate({a.n}, {a.size}, select='{select}')", wall, cpu, f"{wall / a.n * 1e3:.1f} ms/image, {nvox:.0f} voxel images"))
    det = detector(a.size)
    drop, pair = scenes_of('droplet', 1)[0], scenes_of('pair', 1)[0]
    I = analytic_intensity(drop.bodies, det, 64.)
    rng = np.random.default_rng(0)
    reps = max(5, a.repeats)
    for name, f in [('analytic path, one droplet', lambda: analytic_intensity(drop.bodies, det, 64.)),
                    ('analytic path, pair of droplets', lambda: analytic_intensity(pair.bodies, det, 64.)),
                    ('detector model (detect)', lambda: detect(I, det, 1e5, rng, **random_detector(rng))),
                    ('centro-asymmetry measure', lambda: centro_asymmetry(I, det))]:
        w, c = median_time(f, reps)
        rows.append((name, w, c, 'per image'))
    for kind in ['capsule', 'prism']:
        ts = [timed(lambda: render_scene(s, det))[:2] for s in scenes_of(kind, a.voxel, seed=1)]
        w = [t[0] for t in ts]
        rows.append((f"voxel path, {kind} ({a.voxel} from the prior)", statistics.median(w), statistics.median(t[1] for t in ts),
                     f"per image; slowest {max(w) * 1e3:.0f} ms"))
    print(f"\n{'what':<52} {'wall':>10} {'cpu':>10}  note")
    for name, w, c, note in rows:
        if note.startswith('per image'): print(f"{name:<52} {w * 1e3:7.2f} ms {c * 1e3:7.2f} ms  {note}")
        else: print(f"{name:<52} {w:8.2f} s {c:8.2f} s  {note}")
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}; target: simulate({a.n}, 256) <= 60 s")

if __name__ == '__main__': main()
