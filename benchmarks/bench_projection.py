"""Benchmark of the polar->cartesian projection and of `cplr-prepare` (issue 2; targets in DESIGN.md).

  python benchmarks/bench_projection.py [--n 1260] [--size 1035] [--repeats 5]

1. Projection of a (256,1,256,256) batch: `polar_to_cartesian` (bilinear and nearest) against a loop of
   `skimage.transform.warp_polar` and a loop of the reference formula in NumPy (index map per image, as the
   authors' code does). Target: >= 20x faster than the warp_polar loop.
2. `cplr-prepare` on N images of SIZE x SIZE written by this script to a temporary CXI file: wall time and
   peak memory (VmHWM of the cplr-prepare process). The input is in the page cache: this times the work, not the disk. Target: <= 2 min and <= 2 GB for 1260 images of 1035x1035.
"""
import argparse, math, os, resource, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np, torch
from skimage.transform import warp_polar
from cplr_nb.projection import polar_to_cartesian
from cplr_nb.data import write_cxi

def median_time(f, repeats):
    ts = []
    for _ in range(repeats):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)

def reference_numpy(img):
    "The authors' projection (TF code transcribed to NumPy), index map recomputed per image."
    r, f = img.shape[0], np.float32
    i = np.tile(np.linspace(0.0, r - 1, r, dtype=f)[:, None], (1, r))
    j = np.tile(np.linspace(0.0, r - 1, r, dtype=f)[None, :], (r, 1))
    phi, rho = i / f(r - 1) * f(2) * f(math.pi), j / f(r - 1)
    c = f(.5 * (r - 1))
    return img[np.round(c * (f(1) - rho * np.sin(phi))).astype(np.int32), np.round(c * (f(1) + rho * np.cos(phi))).astype(np.int32)]

def bench_projection(repeats):
    x = torch.rand(256, 1, 256, 256)
    imgs = x[:, 0].numpy()
    c = 127.5
    rows = {
        'polar_to_cartesian bilinear (batched)': median_time(lambda: polar_to_cartesian(x), repeats),
        'polar_to_cartesian nearest (batched)': median_time(lambda: polar_to_cartesian(x, mode='nearest'), repeats),
        'loop of skimage warp_polar (order=1)': median_time(lambda: [warp_polar(im, center=(c, c), radius=c, output_shape=(256, 256), order=1) for im in imgs], max(1, repeats // 2)),
        'loop of the reference formula (numpy)': median_time(lambda: [reference_numpy(im) for im in imgs], max(1, repeats // 2)),
    }
    base = rows['loop of skimage warp_polar (order=1)']
    print(f"\n## Projection of a (256,1,256,256) batch, {torch.get_num_threads()} threads, median of {repeats}\n")
    print("| method | time (s) | speed-up vs warp_polar loop |\n|---|---|---|")
    for k, v in rows.items(): print(f"| {k} | {v:.3f} | {base / v:.1f}x |")
    return rows

def write_input(path, n, size):
    "Write `n` ring patterns of `size`² as a CXI file (in its own process, so this one stays small)."
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size] - size // 2
    q = np.hypot(yy, xx) / size * 60 + 1e-3
    airy = (3 * (np.sin(q) - q * np.cos(q)) / q**3) ** 2
    base = [np.log1p(rng.poisson(1e4 * airy * s)).astype(np.float32) for s in (0.5, 1, 2, 4)]
    images = np.stack([np.roll(base[i % 4], i % 7, axis=0) for i in range(n)])
    labels = np.zeros((n, 11), np.uint8); labels[:, 2] = 1
    write_cxi(path, images, labels, np.full(n, 19.4), np.arange(n), compression=None)

def run_with_peak_memory(cmd):
    "Run `cmd`; return (wall seconds, peak resident memory in GB) read from the child's VmHWM while it runs."
    t, peak = time.perf_counter(), 0
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    while proc.poll() is None:
        try:
            status = Path(f'/proc/{proc.pid}/status').read_text()
            peak = max(peak, int(next(l for l in status.splitlines() if l.startswith('VmHWM')).split()[1]) * 1024)
        except (FileNotFoundError, StopIteration, ProcessLookupError): pass
        time.sleep(0.02)
    if proc.returncode: raise subprocess.CalledProcessError(proc.returncode, cmd)
    return time.perf_counter() - t, peak / 1e9

def bench_prepare(n, size):
    tmp = Path(tempfile.mkdtemp())
    try:
        t = time.perf_counter()
        subprocess.run([sys.executable, __file__, '--write-input', str(tmp/'bench.cxi'), '--n', str(n), '--size', str(size)], check=True)
        t_write = time.perf_counter() - t
        wall, peak_gb = run_with_peak_memory(['cplr-prepare', '--cxi', str(tmp/'bench.cxi'), '--out', str(tmp/'prepared.h5')])
        print(f"\n## cplr-prepare of {n} images of {size}x{size} ({(tmp/'bench.cxi').stat().st_size/1e9:.1f} GB input, written in {t_write:.0f} s)\n")
        print("| images | wall (s) | peak memory (GB) | targets |\n|---|---|---|---|")
        print(f"| {n} | {wall:.1f} | {peak_gb:.2f} | <= 120 s, <= 2 GB |")
        return wall, peak_gb
    finally: shutil.rmtree(tmp)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--n', type=int, default=1260); p.add_argument('--size', type=int, default=1035)
    p.add_argument('--repeats', type=int, default=5); p.add_argument('--skip-prepare', action='store_true')
    p.add_argument('--write-input', help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.write_input: write_input(a.write_input, a.n, a.size); sys.exit()
    bench_projection(a.repeats)
    if not a.skip_prepare: bench_prepare(a.n, a.size)
