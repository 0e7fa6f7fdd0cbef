"""Wall time and peak memory of the default `cplr-reproduce` (issue 8; budget in DESIGN.md: <= 20 min, <= 8 GB).

  python benchmarks/bench_reproduce.py [--out DIR] [-- extra cplr-reproduce arguments]

Runs `cplr-reproduce --out DIR` (a temporary directory by default, removed afterwards) and reads the peak resident
memory (VmHWM) of the process while it runs.
"""
import argparse, shutil, sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from bench_projection import run_with_peak_memory

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default=None); ap.add_argument('extra', nargs='*')
    a = ap.parse_args()
    out = Path(a.out or tempfile.mkdtemp())
    try:
        wall, peak = run_with_peak_memory(['cplr-reproduce', '--out', str(out), *a.extra])
        print("| run | wall (min) | peak memory (GB) | budget |\n|---|---|---|---|")
        print(f"| cplr-reproduce {' '.join(a.extra)} | {wall / 60:.1f} | {peak:.2f} | <= 20 min, <= 8 GB |")
    finally:
        if a.out is None: shutil.rmtree(out, ignore_errors=True)
