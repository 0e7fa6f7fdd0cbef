"""Run every benchmark of the project and write one Markdown file of their tables (the README's performance section).

  python benchmarks/run_all.py [--out benchmarks/RESULTS.md] [--quick]

Each script runs in its own process, one after the other (never two at once on a 2-core machine), with the
arguments below; its Markdown tables are collected under a heading, with the date, the hardware and the wall time of
each script. `--quick` runs smaller cases (no 100 000-image kNN, fewer repeats) for a fast check.
"""
import argparse, datetime, os, platform, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).parent
BENCHMARKS = [  # (script, title, arguments, quick arguments: None skips it under --quick)
    ('bench_projection.py', 'Projection and cplr-prepare (issue 2)', [], ['--n', '252', '--repeats', '3']),
    ('bench_simulate.py', 'Simulator (issue 3)', [], ['--n', '252', '--repeats', '1', '--voxel', '5']),
    ('bench_augment.py', 'Augmentation vs a training pass (issue 4)', ['--sizes', '64', '224', '--repeats', '3'], ['--sizes', '64', '--repeats', '2']),
    ('bench_train.py', 'fastai training loop vs a bare PyTorch loop (issue 5)', [], []),
    ('bench_knn.py', 'Exact kNN for the Overlap score (issue 6)', ['--sizes', '1260,10000,100000'], ['--sizes', '1260,10000']),
    ('bench_baselines.py', 'Baselines of Table 1 (issue 7)', [], ['--n', '252', '--seeds', '1']),
    ('bench_reproduce.py', 'The default cplr-reproduce (issue 8)', [], ['--', '--n', '252']),
    ('bench_quality.py', 'Quality of the learned embedding: the targets on the default run (issue 11)', ['--only', 'default,second'], ['--only', 'default']),
    ('bench_quality.py', "CPLR, CLR and lightly's SimCLR at several budgets (issue 19)", ['--only', 'budgets'],
     None),   # hours of training: no quick case
    ('bench_scale.py', 'Scale: the full-size data set, memory, preparation, file size, faiss (issue 12)', [], ['--quick']),
    ('bench_curate.py', 'Using the embedding: few labels, clusters, search, cplr-watch (issue 13)', [], ['--quick']),
    ('bench_facility.py', 'Facility data: European XFEL runs, the hit gate, the beam centre, the detector layer, the live stream (issue 18)', [], ['--quick', '--only', 'hits,rate,center']),
]

def tables(text:str)->str:
    "A script's output as Markdown: tables and headings kept (`##` -> `###`), other lines fenced, progress bars dropped."
    lines = [l for l in text.replace('\r', '\n').splitlines()
             if l.strip() and '█' not in l and '%|' not in l and len(l) < 400]   # long lines are machine-readable dumps
    out, plain = [], []
    def flush():
        if plain: out.extend(['```', *plain, '```']); plain.clear()
    for l in lines:
        if l.startswith('|') or l.startswith('##'):
            flush(); out.append(('#' + l) if l.startswith('## ') else l)
        else: plain.append(l)
    flush()
    return '\n'.join(out)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default=str(HERE/'RESULTS.md')); ap.add_argument('--quick', action='store_true')
    ap.add_argument('--only', default=None, help='comma-separated script names to run')
    a = ap.parse_args()
    import torch
    hw = f"{platform.machine()}, {os.cpu_count()} CPU cores, {'GPU ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}, torch {torch.__version__}"
    parts = [f"# Benchmarks\n\n{datetime.date.today().isoformat()}, {hw}{' (quick cases)' if a.quick else ''}. "
             f"Produced by `python benchmarks/run_all.py{' --quick' if a.quick else ''}`.\n"]
    for script, title, args, quick in BENCHMARKS:
        if (a.only and script not in a.only.split(',')) or (a.quick and quick is None): continue
        cmd = [sys.executable, str(HERE/script), *(quick if a.quick else args)]
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t
        print(f"{script}: exit {r.returncode} in {wall:.0f} s", flush=True)
        body = tables(r.stdout) if r.returncode == 0 else f"FAILED (exit {r.returncode}):\n```\n{r.stderr[-2000:]}\n```"
        parts.append(f"## {title}\n\n`python benchmarks/{script} {' '.join(cmd[2:])}` ({wall:.0f} s)\n\n{body}\n")
    Path(a.out).write_text('\n'.join(parts))
    print(f"wrote {a.out}")
