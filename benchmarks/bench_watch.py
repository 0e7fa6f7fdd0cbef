#!/usr/bin/env python
"""Throughput of `cplr-watch` (`cplr_nb.watch.watch`) on raw 1035x1035 detector shots (issue 13): target >= 120 shots/s on 2 CPU cores.

What is timed: `watch(..., once=True)` over a finished 3-D stack (`entry_1/data_1/data`, float32, one chunk per shot,
uncompressed), end to end per shot: reading the rows (with the readers' mask and NaN rules), the reference Polar view
at 1035 px (`reference_polar`: crop, hole mask, anti-aliased resize to the run's prepared size 256, min-max), the resize to
the network's 64 px, the `cpu` config's encoder (`make_config('cpu')` + `create_model`, untrained weights: the time does not
depend on them), the search of a faiss index of 10^5 reference embeddings (ivf, nprobe tuned for recall@13 >= 0.95) and
of 10 queries, and appending the rows to the log (flushed and fsynced per batch). Not timed: loading the run and the
index and the novelty threshold (5000 searches), reported as `startup_s`.

Data: `n_frames` shots of Poisson-distributed rings (random radius, width and brightness, a central hole), 64 distinct
ones repeated (the content does not change the cost); written just before, so read from the page cache, as a file
being written on the same machine is; --cold evicts it from the cache first, so that it is read from the disk
(120 shots/s of float32 1035² shots is 515 MB/s). Reference set: the clustered synthetic embeddings of
bench_index.py (not isotropic noise), at the model's width.

Usage:
    OMP_NUM_THREADS=2 nice -n 19 python benchmarks/bench_watch.py            # 512 shots, 10^5 references
    python benchmarks/bench_watch.py --quick                                   # 128 shots, 2*10^4 references
Prints one Markdown line; --json also the dict.
"""
import argparse, json, os, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

def _make_run(run:Path, config:str='cpu')->dict:
    "A run directory as cplr-train writes it, with the untrained model of `config`."
    import torch
    from cplr_nb.train import make_config
    from cplr_nb.model import create_model
    cfg = make_config(config)
    torch.manual_seed(0)
    run.mkdir(parents=True, exist_ok=True)
    (run/'config.json').write_text(json.dumps(cfg)); torch.save(create_model(**cfg['model']).state_dict(), run/'model.pth')
    return cfg

def _make_stack(path:Path, n:int, size:int=1035, distinct:int=64, seed:int=0):
    "n Poisson ring shots of size² float32 in entry_1/data_1/data, `distinct` different ones repeated."
    import h5py
    rng = np.random.default_rng(seed)
    r = np.hypot(*(np.mgrid[:size, :size] - size // 2)).astype(np.float32)
    with h5py.File(path, 'w') as f:
        ds = f.create_dataset('entry_1/data_1/data', (n, size, size), np.float32, chunks=(1, size, size), maxshape=(None, size, size))
        frames = []
        for i in range(min(distinct, n)):
            lam = 20 * rng.uniform(0.5, 2) * np.exp(-((r - rng.uniform(0.1, 0.4) * size) / rng.uniform(5, 30))**2) * (r > 0.15 * size) + 0.05
            frames.append(rng.poisson(lam).astype(np.float32))
        for i in range(n): ds[i] = frames[i % len(frames)]

def _evict(path:Path):
    "Drop the file's pages from the page cache (only this file's), so that it is read from the disk."
    fd = os.open(path, os.O_RDONLY)
    try: os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally: os.close(fd)

def _stage_times(run:Path, images:np.ndarray, reps:int=3)->dict:
    "ms per shot of the parts of the embedding on one batch: reference_polar, resize, model."
    import torch
    from cplr_nb.embed import RawEmbedder
    from cplr_nb.projection import reference_polar
    from cplr_nb.augment import resize_images
    e = RawEmbedder(run, 'cpu')
    x = torch.from_numpy(images)
    def t(f):
        f(); t0 = time.perf_counter()
        for _ in range(reps): r = f()
        return (time.perf_counter() - t0) / reps / len(images) * 1e3, r
    out = {}
    with torch.inference_mode():
        out['polar_ms'], p = t(lambda: reference_polar(x, e.prepared_size))
        out['resize_ms'], v = t(lambda: resize_images(p, e.size))
        out['model_ms'], _ = t(lambda: e.model.embed(v))
    return out

def watch_throughput(n_frames:int=512, size:int=1035, n_ref:int=100_000, bs:int=32, quick:bool=False,
                     workdir:str=None, config:str='cpu', threads:int=None, cold:bool=False)->dict:
    "Shots per second of `watch(once=True)` on a raw stack, with a faiss index of `n_ref` references; the time per stage (`cold`: the stack read from the disk)."
    import torch
    from cplr_nb.embed import write_embeddings
    from cplr_nb.neighbours import build_index
    from cplr_nb.watch import watch, read_watch, faiss_threads
    from bench_index import make_embeddings
    if quick: n_frames, n_ref = min(n_frames, 128), min(n_ref, 20_000)
    if threads: torch.set_num_threads(threads)
    work = Path(workdir or tempfile.mkdtemp(prefix='bench_watch_'))
    work.mkdir(parents=True, exist_ok=True)
    import h5py
    from cplr_nb.neighbours import EmbeddingIndex
    from cplr_nb.train import load_run
    t = time.perf_counter()
    cfg = _make_run(work/'run', config)
    d = load_run(work/'run')[0].embed_dim
    key = json.dumps(dict(n_frames=n_frames, size=size, n_ref=n_ref, d=d))       # a --workdir holding these data is reused
    if not (work/'data.json').exists() or (work/'data.json').read_text() != key:
        _make_stack(work/'stack.cxi', n_frames, size)
        emb, _ = make_embeddings(n_ref, d, 1)
        write_embeddings(work/'ref.h5', emb, None, 'cplr', extra={'entries': [f'entry_{i+1}' for i in range(n_ref)]})
        t_data = time.perf_counter() - t
        t = time.perf_counter()
        index = build_index(emb, 'cosine', device='cpu'); index.save(work/'ref.faiss')            # what cplr-index does
        t_index = time.perf_counter() - t
        (work/'data.json').write_text(key)
    else: t_data, t_index, index = None, None, EmbeddingIndex.load(work/'ref.faiss', 'cpu')
    for p in work.glob('watch.csv*'): p.unlink()
    if cold: _evict(work/'stack.cxi')
    args = dict(reference=work/'ref.h5', index=work/'ref.faiss', query=','.join(f'entry_{i}' for i in range(1, 11)), device='cpu', bs=bs, every=0)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        first = watch(work/'run', work/'stack.cxi', work/'watch.csv', max_shots=bs, **args)    # the first batch: one-time set-up costs
        t1, c1 = time.perf_counter(), time.process_time()
        s = watch(work/'run', work/'stack.cxi', work/'watch.csv', once=True, **args)           # the rest, continuing the log
    wall, cpu = time.perf_counter() - t1, time.process_time() - c1
    assert read_watch(work/'watch.csv')['row'].tolist() == list(range(n_frames))   # every shot once, in order
    with h5py.File(work/'stack.cxi') as f: batch = f['entry_1/data_1/data'][:bs]
    with faiss_threads(1): parts = _stage_times(work/'run', batch)     # as in `watch`: faiss's idle threads would spin
    ms = {k: v / s['shots'] * 1e3 for k, v in s['stages'].items()}
    r = dict(shots=s['shots'], shots_per_s=s['rate'], loop_s=s['seconds'], startup_s=wall - s['seconds'], bs=bs, size=size,
             first_batch_s=first['seconds'], first_startup_s=t1 - t - first['seconds'], cpu_ms_per_shot=cpu / s['shots'] * 1e3,
             n_ref=n_ref, dim=d, index=repr(index), config=config, input=cfg['size'], stage_ms=ms, embed_parts_ms=parts,
             cold=cold, novelty=s['novelty'], novel=s['novel'], data_s=t_data, index_build_s=t_index, threads=torch.get_num_threads(),
             cores=os.cpu_count(), load=os.getloadavg()[0], workdir=str(work))
    r['summary'] = (f"{s['shots']} shots of {size}² px{' read from the disk' if cold else ''} after a first batch ({first['seconds']:.2f} s), bs {bs}, {r['threads']} torch threads: per shot read {ms['read']:.2f} ms, "
                    f"embed {ms['embed']:.2f} ms (Polar view {parts['polar_ms']:.2f}, resize {parts['resize_ms']:.2f}, "
                    f"model {parts['model_ms']:.2f}), search {ms['search']:.2f} ms in {n_ref} references, write {ms['write']:.2f} ms; "
                    f"CPU time {r['cpu_ms_per_shot']:.2f} ms/shot (all threads); load average {r['load']:.2f} on {r['cores']} cores")
    return r

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--frames', type=int, default=512); ap.add_argument('--size', type=int, default=1035)
    ap.add_argument('--refs', type=int, default=100_000); ap.add_argument('--bs', type=int, default=32)
    ap.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s)')
    ap.add_argument('--quick', action='store_true'); ap.add_argument('--workdir', default=None)
    ap.add_argument('--cold', action='store_true', help='evict the stack from the page cache first: read from the disk')
    ap.add_argument('--json', action='store_true')
    a = ap.parse_args()
    r = watch_throughput(a.frames, a.size, a.refs, a.bs, a.quick, a.workdir, threads=a.threads, cold=a.cold)
    print(f"| cplr-watch | {r['shots_per_s']:.0f} shots/s (target >= 120) | {r['summary']} |", flush=True)
    if a.json: print(json.dumps(r))

if __name__ == '__main__': main()
