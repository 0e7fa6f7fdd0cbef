"""Run every benchmark of the project and write one Markdown file of their tables (the README's performance section).

  python benchmarks/run_all.py [--out benchmarks/RESULTS.md] [--quick]
  python benchmarks/run_all.py --stale


Each script runs in its own process, one after the other (never two at once on a 2-core machine), with the
arguments below; its Markdown tables are collected under a heading, with the date, the hardware and the wall time of
each script. `--quick` runs smaller cases (no 100 000-image kNN, fewer repeats) for a fast check.

`--stale` runs nothing: it lists the committed results whose code inputs (the script, the benchmark modules it imports
and every `cplr_nb` module it imports, directly or not) changed since the commit each result records, and exits with
status 1 when there is one. A result measured with uncommitted changes is listed too: no commit holds the code it ran.
A results file that records no commit is dated by the commit that last wrote it.
"""
import argparse, datetime, json, os, platform, re, subprocess, sys, time
from pathlib import Path
from provenance import ROOT, git   # beside this script

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
    ('bench_quality.py', 'Levers on the validation data: P⇔C, P⇔P and both in one loss (issue 19)', ['--only', 'levers', '--mults', '1,2', '--mult-seeds', '2:3'],
     None),   # an hour and a half of training: no quick case
    ('bench_quality.py', 'A lever on the validation data: bfloat16 or float32 on the CPU (issue 19)', ['--only', 'precision', '--mults', '1'],
     None),   # half an hour of training: no quick case
    ('bench_quality.py', 'A lever on the validation data: the optimisation, LARS lr ×3 and batches of 64 and 32 (issue 19)', ['--only', 'optim', '--mults', '1'],
     None),   # an hour of training: no quick case
    ('bench_quality.py', 'A lever on the validation data: CPLR at batch 128 and 64, six seeds (issue 19)', ['--only', 'batch', '--mults', '1', '--seeds', '6'],
     None),   # half an hour of training: no quick case
    ('bench_quality.py', 'A lever on the validation data: the temperature and the crops (issue 19)', ['--only', 'views', '--mults', '1'],
     None),   # an hour of training: no quick case
    ('bench_quality.py', "A lever on the validation data: the encoder's width (issue 19)", ['--only', 'width', '--mults', '1'],
     None),   # an hour of training: no quick case
    ('bench_quality.py', "A lever on the validation data: the views' resolution (issue 19)", ['--only', 'resolution', '--mults', '1'],
     None),   # 45 minutes of training: no quick case
    ('bench_quality.py', 'A lever on the validation data: CPLR at 64 px and at 48 px with 1.5x the epochs, six seeds (issue 19)', ['--only', 'res48', '--mults', '1', '--seeds', '6'],
     None),   # half an hour of training: no quick case
    ('bench_quality.py', 'The shipped encoder on the validation data: no training, started from it, from scratch (issue 19)', ['--only', 'shipped', '--mults', '1'],
     None),   # 15 minutes of training: no quick case
    ('bench_quality.py', "The shipped encoder beside CPLR, CLR and lightly's SimCLR on the default run and the second simulation (issue 19)", ['--only', 'shipped_budgets', '--budget-data', 'default,second', '--mults', '1,2', '--mult-seeds', '2:3'],
     None),   # 40 minutes of training: no quick case
    ('bench_scale.py', 'Scale: the full-size data set, memory, preparation, file size, faiss (issue 12)', [], ['--quick']),
    ('bench_curate.py', 'Using the embedding: few labels, clusters, search, cplr-watch (issue 13)', [], ['--quick']),
    ('bench_facility.py', 'Facility data: European XFEL runs, the hit gate, the beam centre, the detector layer, the live stream (issue 18)', [], ['--quick', '--only', 'hits,rate,center']),
    ('bench_guard.py', 'Calibration of the quality guard (issue 20)', [], None),    # half an hour of training: no quick case
    ('chaos.py', 'Fault injection: SIGKILL and rerun of prepare, train, embed and watch (issue 20)', [], None),
]

RESULTS_FILES = {  # committed results -> the script that writes them (None: every script of `BENCHMARKS`)
    'RESULTS.md': None, 'quality/study.json': 'bench_quality.py', 'quality/targets.json': 'bench_quality.py',
    'quality/budgets.json': 'bench_quality.py', 'quality/levers.json': 'bench_quality.py', 'quality/precision.json': 'bench_quality.py',
    'quality/optim.json': 'bench_quality.py', 'quality/batch.json': 'bench_quality.py', 'quality/views.json': 'bench_quality.py', 'quality/width.json': 'bench_quality.py', 'quality/resolution.json': 'bench_quality.py', 'quality/res48.json': 'bench_quality.py', 'quality/shipped.json': 'bench_quality.py', 'quality/shipped_budgets.json': 'bench_quality.py', 'curate/results.json': 'bench_curate.py', 'scale/results.json': 'bench_scale.py',
    'facility/results.json': 'bench_facility.py', 'guard/calibration.json': 'bench_guard.py', 'chaos/results.json': 'chaos.py',
}

def _imports(path:Path)->set: # (kind, name) of what a file imports: ('pkg', module of cplr_nb) or ('bench', a module beside the scripts)
    src, out = path.read_text(), set()
    out |= {('pkg', m) for m in re.findall(r'^\s*(?:from|import)\s+cplr_nb\.(\w+)', src, re.M)}
    out |= {('pkg', m.strip()) for g in re.findall(r'^\s*from\s+cplr_nb\s+import\s+\(?([\w\s,]+)', src, re.M) for m in g.split(',') if m.strip()}
    if path.parent.name == 'cplr_nb': out |= {('pkg', m) for m in re.findall(r'^\s*from\s+\.(\w+)\s+import', src, re.M)}
    else: out |= {('bench', m) for m in re.findall(r'^\s*(?:from|import)\s+(\w+)', src, re.M) if (HERE/f'{m}.py').exists()}
    return out

def code_inputs(script:str)->list:
    "The files a benchmark's results depend on: the script, the benchmark modules it imports, and the `cplr_nb` modules it imports, transitively."
    todo, seen = [HERE/script], set()
    while todo:
        p = todo.pop()
        if p in seen or not p.exists(): continue
        seen.add(p)
        todo += [ROOT/'cplr_nb'/f'{m}.py' if kind == 'pkg' else HERE/f'{m}.py' for kind, m in _imports(p)]
    return sorted(str(p.relative_to(ROOT)) for p in seen)

def _stamps(x, where='')->list: # [(where in the file, stamp)] of every dict in a results file that records a commit
    if isinstance(x, dict):
        if isinstance(x.get('commit'), str): return [(where or 'all', x)]
        return [s for k, v in x.items() for s in _stamps(v, f"{where}/{k}" if where else k)]
    if isinstance(x, list): return [s for i, v in enumerate(x) for s in _stamps(v, f"{where}[{i}]")]
    return []

def stale()->list:
    "One line per result whose code inputs changed since the commit it records (or that ran with uncommitted changes)."
    lines = []
    for rel, script in RESULTS_FILES.items():
        path = HERE/rel
        if not path.exists(): continue
        inputs = sorted({f for s in ([script] if script else [b[0] for b in BENCHMARKS]) for f in code_inputs(s)})
        found = _stamps(json.loads(path.read_text())) if path.suffix == '.json' else []
        if not found: found = [('all', dict(commit=git('log', '-1', '--format=%h', '--', str(path)), dated_by_git=True))]
        for where, s in found:
            commit = s['commit'].split()[0]
            changed = git('diff', '--name-only', commit, '--', *inputs).split()   # the commit against the working tree
            how = 'committed in' if s.get('dated_by_git') else 'measured at'
            if changed: lines.append(f"{rel} [{where}]: {how} {s['commit'][:60]}; changed since: {', '.join(changed)}")
            elif 'uncommitted' in s['commit']: lines.append(f"{rel} [{where}]: {how} {s['commit'][:60]}: no commit holds the code it ran")
    return lines

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

GPU_SECTION = '## GPU checks'

def kept_gpu_section(path:Path)->str:
    "The GPU section of an existing results file (`gpu_check.py`'s output from a GPU machine, the file's last section), kept when the file is rewritten."
    text = path.read_text() if path.exists() else ''
    i = text.find('\n' + GPU_SECTION)
    return '\n' + text[i + 1:] if i >= 0 else ''

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default=str(HERE/'RESULTS.md')); ap.add_argument('--quick', action='store_true')
    ap.add_argument('--only', default=None, help='comma-separated script names to run')
    ap.add_argument('--stale', action='store_true', help='list the results whose code changed since they were measured, and run nothing')
    a = ap.parse_args()
    if a.stale:
        lines = stale()
        print('\n'.join(lines) if lines else 'nothing stale: every result records a commit whose code inputs are those of the working tree')
        sys.exit(1 if lines else 0)
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
    Path(a.out).write_text('\n'.join(parts) + kept_gpu_section(Path(a.out)))
    print(f"wrote {a.out}")
