"""Fault injection (issue 20): kill the tools with SIGKILL at random moments, run them again, compare with an uninterrupted run.

  python benchmarks/chaos.py [--kills 20] [--tools prepare,train,embed,watch] [--work DIR] [--seed 0]

For each tool it first runs the command once, uninterrupted and timed (the reference). Then, until --kills kills have
landed (at most 3 × --kills tries): start the same command, send SIGKILL after a random time drawn uniformly between
5 % and 90 % of the reference's wall time (a try that ends before its kill is counted apart and tests nothing), look at
what the kill left, run the command again to the end as a user would (`cplr-train --resume` once the run
directory holds config.json, as the README's job script does; the other tools are simply run again), and compare:
- no partial file under a final name: right after the kill, a final output (prepared file, model.pth, embeddings file)
  is either absent or whole and equal to the reference; train's checkpoint.pth, when there is one, loads;
- after the rerun, bit-identical to the reference: every dataset of the prepared and embeddings files, every tensor of
  model.pth (the README: "a resumed run is identical to one that was never interrupted");
- the watch's log: the same rows as the reference, each shot exactly once, and the same embeddings;
- nothing left over: after the rerun the folder holds the reference's files and no others (a killed writer's temporary).
Writes benchmarks/chaos/results.json and results.md with the counts.
"""
import argparse, json, os, random, shutil, signal, subprocess, sys, time
from pathlib import Path
import numpy as np, h5py, hdf5plugin, torch  # noqa: F401 (hdf5plugin: the prepared files are Blosc-compressed)
sys.path.insert(0, str(Path(__file__).parent))
from provenance import stamp, stamp_line

OUT = Path(__file__).parent/'chaos'
TINY = ['--size', '32', '--bs', '64', '--encoder', 'resnet10t', '--probe-every', '0', '--valid-pct', '0', '--no-progress']

def commands(w:Path, out:Path)->dict: # tool -> command writing into `out`
    return {'prepare': ['cplr-prepare', '--src', str(w/'stack.h5'), '--out', str(out/'prep.h5'), '--size', '128', '--batch-size', '16'],
            'train': ['cplr-train', '--data', str(w/'ref_prepare'/'prep.h5'), '--out', str(out/'run'), '--epochs', '6', *TINY],
            'embed': ['cplr-embed', '--run', str(w/'ref_train'/'run'), '--src', str(w/'stack.h5'), '--out', str(out/'emb.h5'), '--bs', '32', '--device', 'cpu'],
            'watch': ['cplr-watch', '--run', str(w/'ref_train'/'run'), '--src', str(w/'stack.h5'), '--out', str(out/'watch.csv'), '--once',
                       '--every', '0', '--bs', '16', '--embeddings', '--device', 'cpu']}

def h5_arrays(path:Path)->dict:
    out = {}
    with h5py.File(path, 'r') as f: f.visititems(lambda k, v: out.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None)
    return out

def same_h5(a:Path, b:Path)->bool:
    x, y = h5_arrays(a), h5_arrays(b)
    bits = lambda v: np.asarray(v).tolist() if np.asarray(v).dtype == object else (np.asarray(v).shape, np.asarray(v).dtype, np.asarray(v).tobytes())
    return x.keys() == y.keys() and all(bits(x[k]) == bits(y[k]) for k in x)   # bit for bit: NaN equals NaN

def same_model(a:Path, b:Path)->bool:
    x, y = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)

def watch_rows(log:Path)->tuple: # ([(source, row)] in the log's order, embeddings (N,D))
    from cplr_nb.watch import read_watch
    r = read_watch(log)
    emb = np.fromfile(log.with_suffix('.f32'), np.float32) if log.with_suffix('.f32').exists() else np.zeros(0, np.float32)
    return list(zip(r['source'], r['row'].tolist())), emb

def run(cmd:list, env:dict)->float:
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode: raise SystemExit(f"error: {' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - t

def after_kill(tool:str, out:Path, ref:Path)->list: # what is wrong with what the kill left
    bad = []
    if tool == 'prepare' and (out/'prep.h5').exists() and not _safe(lambda: same_h5(out/'prep.h5', ref/'prep.h5')): bad.append('partial prepared file')
    if tool == 'embed' and (out/'emb.h5').exists() and not _safe(lambda: same_h5(out/'emb.h5', ref/'emb.h5')): bad.append('partial embeddings file')
    if tool == 'train':
        if (out/'run'/'model.pth').exists() and not _safe(lambda: same_model(out/'run'/'model.pth', ref/'run'/'model.pth')): bad.append('partial model.pth')
        if (out/'run'/'checkpoint.pth').exists() and not _safe(lambda: torch.load(out/'run'/'checkpoint.pth', weights_only=True) is not None): bad.append('unreadable checkpoint')
    return bad

def _safe(check)->bool:
    try: return bool(check())
    except Exception: return False

def compare(tool:str, out:Path, ref:Path)->dict: # counts of lost, duplicated and different outputs after the rerun
    if tool == 'watch':
        (rows, emb), (rrows, remb) = watch_rows(out/'watch.csv'), watch_rows(ref/'watch.csv')
        return dict(lost=len(set(rrows) - set(rows)), duplicated=len(rows) - len(set(rows)),
                    different=int(rows != rrows or not np.array_equal(emb, remb)))
    path = {'prepare': 'prep.h5', 'embed': 'emb.h5', 'train': 'run/model.pth'}[tool]
    if not (out/path).exists(): return dict(lost=1, duplicated=0, different=0)
    same = same_model(out/path, ref/path) if tool == 'train' else same_h5(out/path, ref/path)
    return dict(lost=0, duplicated=0, different=int(not same))

def chaos(w:Path, tools:list, kills:int, seed:int)->dict:
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    rng = random.Random(seed)
    if not (w/'stack.h5').exists():                           # a hit finder's stack: what every tool, the watch included, reads
        run(['cplr-simulate', '--out', str(w/'sim.cxi'), '--n', '1000', '--size', '256', '--seed', '5'], env)
        from cplr_nb.data import read_data
        d = read_data(w/'sim.cxi')
        with h5py.File(w/'stack.tmp', 'w') as f: f['images'] = np.asarray(d.images, np.float32)
        (w/'stack.tmp').rename(w/'stack.h5')
    res = {}
    for tool in ['prepare', 'train', 'embed', 'watch']:       # the later tools use the references of the earlier ones
        ref = w/f'ref_{tool}'
        shutil.rmtree(ref, ignore_errors=True); ref.mkdir(parents=True)
        cmd = commands(w, ref)[tool]
        wall = run(cmd, env)
        if tool not in tools: continue
        counts = dict(kills=0, kills_while_writing=0, ended_before_kill=0, partial=0, left_over=0, lost=0, duplicated=0, different=0, problems=[])
        for i in range(3 * kills):
            if counts['kills'] == kills: break
            out = w/f'{tool}_{i}'
            shutil.rmtree(out, ignore_errors=True); out.mkdir()
            cmd = commands(w, out)[tool]
            p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            at = rng.uniform(0.05, 0.9) * wall
            try: p.wait(at); counts['ended_before_kill'] += 1; killed = False
            except subprocess.TimeoutExpired: p.send_signal(signal.SIGKILL); p.wait(); counts['kills'] += 1; killed = True
            counts['kills_while_writing'] += killed and any(f.is_file() for f in out.rglob('*'))   # the tool had begun to write
            bad = after_kill(tool, out, ref)
            counts['partial'] += len(bad)
            again = cmd + (['--resume'] if tool == 'train' and (out/'run'/'config.json').exists() else [])
            run(again, env)
            c = compare(tool, out, ref)
            files = lambda d: {str(f.relative_to(d)) for f in d.rglob('*') if f.is_file() and f.name != 'run.lock'}
            c['left_over'] = len(files(out) - files(ref))          # a killed writer's temporaries, or anything else the rerun did not clear
            for k, v in c.items(): counts[k] += v
            if bad or any(c.values()): counts['problems'].append(dict(kill=i, at_s=round(at, 2), after_kill=bad, **c))
            print(f"{tool} {i}: {'killed' if killed else 'ended before the kill'} at {at:.1f} s of {wall:.1f}; {bad or 'nothing partial'}; rerun: {c}", flush=True)
            shutil.rmtree(out, ignore_errors=True)
        res[tool] = dict(counts, reference_s=round(wall, 1))
    return res

def markdown(r:dict)->str:
    rows = ['| tool | kills | of them after it began to write | tries that ended before the kill | partial files under a final name | files left over after the rerun | outputs lost | duplicated | different | reference run (s) |',
            '|---|---|---|---|---|---|---|---|---|---|']
    for tool, c in r['tools'].items():
        rows.append(f"| {tool} | {c['kills']} | {c['kills_while_writing']} | {c['ended_before_kill']} | {c['partial']} | {c['left_over']} | {c['lost']} | {c['duplicated']} | {c['different']} | {c['reference_s']} |")
    tot = {k: sum(c[k] for c in r['tools'].values()) for k in ('kills', 'partial', 'left_over', 'lost', 'duplicated', 'different')}
    return ("# Fault injection (issue 20)\n\n" + stamp_line(r['stamp']) + "\n\n" + '\n'.join(rows) +
            f"\n\n{tot['kills']} kills in all: {tot['partial']} partial files under a final name, {tot['left_over']} files left over, {tot['lost']} outputs lost, {tot['duplicated']} duplicated, {tot['different']} different.\n")

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--kills', type=int, default=20); ap.add_argument('--tools', default='prepare,train,embed,watch')
    ap.add_argument('--work', default='/tmp/cplr_chaos'); ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    w = Path(a.work); w.mkdir(parents=True, exist_ok=True)
    r = dict(stamp=stamp(OUT), kills_per_tool=a.kills, tools=chaos(w, a.tools.split(','), a.kills, a.seed))
    OUT.mkdir(exist_ok=True)
    (OUT/'results.json').write_text(json.dumps(r, indent=1))
    (OUT/'results.md').write_text(markdown(r))
    print(markdown(r))
