#!/usr/bin/env python
"""GPU checks of issue 12: one script to run on a GPU machine; one line per check, `PASS/FAIL/SKIP <check>: <figures>`.

    python benchmarks/gpu_check.py                  # on a GPU machine (about 1.5 minutes on one H100; results in benchmarks/RESULTS.md)
    python benchmarks/gpu_check.py --device cpu --quick   # a smoke test of this script on a CPU (a few minutes)

Checks (`--only` picks some, comma-separated):

1. `amp_train`: `train(config='cpu', epochs=2)` on a small simulated prepared file. On CUDA the config's
   `mixed_precision` goes through fastai's `to_bf16` on GPUs with bfloat16 (`torch.cuda.is_bf16_supported()`, A100
   and later), else `to_fp16`: the first convolution must compute in that dtype, the losses in log.csv must be finite,
   and with float16 the GradScaler's state must be in the checkpoint. Figures: seconds per epoch, peak
   GPU memory. (On a CPU: bfloat16 where the CPU has it, else float32.)
2. `kill_resume`: `cplr-train` in a subprocess gets SIGTERM once its first checkpoint exists; it must finish the
   epoch and exit 143, then `--resume` must exit 0 with every epoch once in log.csv. The final model is compared
   with an uninterrupted run's: the largest parameter difference is reported; on a CPU it must be 0, on CUDA
   (cuDNN and atomics are not bitwise reproducible) it must stay below `--resume-tol` (relative).
3. `ddp_syncbn`: a 2-process `torchrun` run of `train` on an SK-ResNet (`skresnet18`; with a full run on GPUs,
   the `paper` preset SK-ResNet50d 2×). On 2+ GPUs (NCCL) every BatchNorm must have become a SyncBatchNorm that
   keeps timm's activation; `load_run` must rebuild a network that loads the saved state dict and gives the
   trained network's outputs; both processes must end with the same parameters. With one GPU this is SKIP:
   NCCL refuses two processes on one device; `--ddp-one-gpu` runs two gloo processes on the one GPU instead (PyTorch's
   SyncBatchNorm has a code path for gloo; it worked on an H100 with torch 2.11, 2026-12-05).
   On a CPU (`--device cpu`): gloo and plain BatchNorm (SyncBatchNorm is GPU-only).
4. `paper_memory`: peak GPU memory (`torch.cuda.max_memory_allocated`) of `train(config='paper')`, 224 px,
   batch 628 pairs (1256 images through SK-ResNet50d 2×), AMP, one epoch of `--paper-steps` steps on one
   process, and whether it fits the device; if the full batch runs out of memory, halved batches are measured
   (the per-GPU batch of a DDP run on 2, 4, ... GPUs). PASS means measured; the figures say whether it fits.
   On a CPU: SKIP (the same code path runs once with a tiny stand-in model and batch).
5. `knn_gpu`: `cplr_nb.neighbours.knn(device='cuda')` against the CPU on random embeddings (cosine and
   euclidean): same neighbours up to float32 near-ties, distances within 1e-4, the same Overlap score; timings.
   On a CPU: the `topk` selection against the `threshold` selection.
6. `faiss_gpu`: where `faiss.get_num_gpus() > 0`: `knn(index='faiss', kind='flat', device='cuda')` against the exact CPU search (as in 5),
   the recall@k of `kind='ivf'`, and an ivf index saved and loaded back onto the GPU searching the same; else SKIP.
   On a CPU (`--device cpu`) the same with faiss-cpu, where installed.

Without a GPU and without `--device cpu`, every check is SKIP and the exit status is 0. Exit status 1 if any
check fails. Progress goes to stderr, the result lines to stdout.
"""
import argparse, gc, json, math, os, shutil, signal, subprocess, sys, tempfile, time, traceback
from pathlib import Path
import numpy as np, torch

CHECKS = ['amp_train', 'kill_resume', 'ddp_syncbn', 'paper_memory', 'knn_gpu', 'faiss_gpu']
T0 = time.perf_counter()

def log(msg): print(f"[gpu_check {time.perf_counter() - T0:6.1f} s] {msg}", file=sys.stderr, flush=True)

class Skip(Exception): "The check cannot run here; the message says why."

def gib(b): return f"{b / 2**30:.2f} GiB"

def sizes(cuda:bool, quick:bool)->dict:
    "Sizes of the checks: a CPU smoke test, a quick GPU run, a full GPU run."
    if not cuda: return dict(n=96, size=32, bs=16, amp_encoder='cpu', resume_encoder='resnet10t', resume_epochs=4,
                             ddp_encoder='skresnet18', ddp_bs=16, knn_n=4000, knn_k=100, paper_steps=1)
    if quick: return dict(n=512, size=64, bs=64, amp_encoder='cpu', resume_encoder='cpu', resume_epochs=5,
                          ddp_encoder='skresnet18', ddp_bs=64, knn_n=5000, knn_k=None, paper_steps=1)
    return dict(n=1260, size=64, bs=128, amp_encoder='cpu', resume_encoder='cpu', resume_epochs=6,
                ddp_encoder='paper', ddp_bs=64, knn_n=20000, knn_k=None, paper_steps=2)

def make_prepared(workdir:Path, n:int, det_size:int=64, size:int=64, seed:int=0, name:str='sim')->Path:
    "Simulate `n` shots (`cplr_nb.simulate`) and prepare their views (`cplr_nb.projection.prepare`); cached by name."
    from cplr_nb.simulate import simulate, write_simulation
    from cplr_nb.projection import prepare
    out = workdir/f'{name}.h5'
    if out.exists(): return out
    t = time.perf_counter()
    cxi = write_simulation(workdir/f'{name}.cxi', simulate(n, det_size, seed, select='paper'))
    prepare(cxi, out, size=size, progress=False)
    cxi.unlink()
    log(f"simulated and prepared {n} images ({det_size} px detector, {size} px views) in {time.perf_counter() - t:.1f} s")
    return out

def sub_env()->dict:
    "Environment of the subprocesses: this one's, with one OpenMP thread unless set."
    return dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'))

# ---------------------------------------------------------------------------------------------------------------
def check_amp_train(c):
    "2 epochs of the cpu config with mixed precision: compute dtype, finite losses, time per epoch, peak memory."
    from torch import nn
    from fastai.callback.core import Callback
    from fastai.callback.fp16 import MixedPrecision
    from cplr_nb.train import train, read_log, CPUBFloat16, cpu_bf16
    s, cuda = c.sizes, c.cuda
    data = make_prepared(c.workdir, s['n'], 64, 64)
    seen, found = [], {}
    class Watch(Callback):
        "Record the dtype of the first convolution's output in training and which precision callbacks the Learner has."
        def before_fit(self):
            found.update(fp16=any(isinstance(cb, MixedPrecision) for cb in self.learn.cbs),
                         bf16=any(isinstance(cb, CPUBFloat16) for cb in self.learn.cbs))
            conv = next(m for m in self.learn.model.modules() if isinstance(m, nn.Conv2d))
            self.hook = conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype) if m.training else None)
        def after_fit(self): self.hook.remove()
    if cuda: torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    run = train(data, 'polcart', c.workdir/'amp', config='cpu', epochs=2, device=c.device, progress=False, cbs=[Watch()],
                size=s['size'], bs=s['bs'], encoder=s['amp_encoder'], probe_every=1)
    wall = time.perf_counter() - t
    peak = torch.cuda.max_memory_allocated() if cuda else None
    rows = read_log(run/'log.csv')
    ck = torch.load(run/'checkpoint.pth', map_location='cpu', weights_only=True)
    gpu_bf16 = cuda and torch.cuda.is_bf16_supported()
    want = (torch.bfloat16 if gpu_bf16 else torch.float16) if cuda else (torch.bfloat16 if cpu_bf16() else torch.float32)
    dtypes = sorted({str(d).replace('torch.', '') for d in seen})
    losses = [r['train_loss'] for r in rows] + [r['valid_loss'] for r in rows]
    problems = []
    if [r['epoch'] for r in rows] != [0, 1]: problems.append(f"log epochs {[r['epoch'] for r in rows]}")
    if not all(math.isfinite(x) for x in losses): problems.append(f"non-finite loss {losses}")
    if set(seen) != {want}: problems.append(f"first conv computed in {dtypes}, expected {str(want).replace('torch.', '')}")
    if cuda and not found.get('fp16'): problems.append("no MixedPrecision callback (to_bf16/to_fp16) on CUDA")
    if cuda and not gpu_bf16 and ck.get('scaler') is None: problems.append("checkpoint has no GradScaler state")
    per_epoch = ', '.join(f"{r['time_s']:.2f}" for r in rows)
    figs = (f"{('bf16 (to_bf16)' if gpu_bf16 else 'fp16 (to_fp16)') if found.get('fp16') else 'bf16 (CPUBFloat16)' if found.get('bf16') else 'fp32'}, first conv in {'/'.join(dtypes)}; "
            f"{s['n']} images, {s['size']} px, bs {s['bs']}; train loss {rows[0]['train_loss']:.3f} -> {rows[-1]['train_loss']:.3f}, "
            f"valid {rows[-1]['valid_loss']:.3f}; s/epoch {per_epoch} (wall {wall:.1f} s with probes)"
            + (f"; peak GPU memory {gib(peak)}; scaler state saved: {ck.get('scaler') is not None}" if cuda else ''))
    if problems: raise AssertionError('; '.join(problems) + ' | ' + figs)
    return figs

# ---------------------------------------------------------------------------------------------------------------
def _cli(workdir:Path, *args)->list:
    "The `cplr-train` command line: the installed script, else one of the same shape in `workdir` (a package on PYTHONPATH, not installed)."
    exe = shutil.which('cplr-train')
    if not exe:                 # `python -c` would not do: a tool reads the command line only when run as a script
        exe = workdir/'cplr-train.py'
        exe.write_text("import sys\nfrom cplr_nb.train import cplr_train\nsys.exit(cplr_train())\n")
        return [sys.executable, str(exe)] + [str(a) for a in args]
    return [exe] + [str(a) for a in args]

def _state_diff(a:dict, b:dict)->tuple:
    "(max |a-b| over the float tensors, ‖a-b‖/‖a‖ over them)."
    mx, num, den = 0., 0., 0.
    for k in a:
        if not a[k].is_floating_point(): continue
        d = (a[k].double() - b[k].double())
        mx, num, den = max(mx, float(d.abs().max()) if d.numel() else 0.), num + float(d.square().sum()), den + float(a[k].double().square().sum())
    return mx, math.sqrt(num / den) if den else 0.

def check_kill_resume(c):
    "SIGTERM to cplr-train after its first checkpoint: exit 143, --resume to the end, compare with an uninterrupted run."
    from cplr_nb.train import read_log
    s = c.sizes
    data = make_prepared(c.workdir, s['n'], 64, 64)
    E = s['resume_epochs']
    common = ['--data', data, '--epochs', E, '--size', s['size'], '--bs', s['bs'], '--encoder', s['resume_encoder'],
              '--probe-every', 0, '--device', c.device, '--no-progress']
    killed, whole = c.workdir/'killed', c.workdir/'whole'
    t = time.perf_counter()
    p = subprocess.Popen(_cli(c.workdir, *common, '--out', killed), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=sub_env())
    sent = None
    while p.poll() is None and time.perf_counter() - t < c.timeout:
        if (killed/'checkpoint.pth').exists(): p.send_signal(signal.SIGTERM); sent = time.perf_counter() - t; break
        time.sleep(0.02)
    try: out, err = p.communicate(timeout=c.timeout)
    except subprocess.TimeoutExpired: p.kill(); out, err = p.communicate(); raise AssertionError(f"the first run did not end within {c.timeout} s")
    if sent is None: raise AssertionError(f"no checkpoint appeared before the run ended (exit {p.returncode}): {err[-500:]}")
    stopped_after = torch.load(killed/'checkpoint.pth', map_location='cpu', weights_only=True)['epoch']
    if p.returncode == 143 and 'stopped:' not in err: raise AssertionError(f"exit 143 without the 'stopped:' line: {err[-500:]}")
    if p.returncode != 143:
        raise AssertionError(f"the signalled run exited {p.returncode}, expected 143 (SIGTERM at {sent:.1f} s; if 0, the epochs are too short "
                             f"for the signal to land before the last one: raise --n): {err[-500:]}")
    r2 = subprocess.run(_cli(c.workdir, '--data', data, '--out', killed, '--resume', '--device', c.device, '--no-progress'),
                        capture_output=True, text=True, env=sub_env(), timeout=c.timeout)
    r3 = subprocess.run(_cli(c.workdir, *common, '--out', whole), capture_output=True, text=True, env=sub_env(), timeout=c.timeout)
    wall = time.perf_counter() - t
    if r2.returncode != 0: raise AssertionError(f"--resume exited {r2.returncode}: {r2.stderr[-800:]}")
    if r3.returncode != 0: raise AssertionError(f"the uninterrupted run exited {r3.returncode}: {r3.stderr[-800:]}")
    lk, lw = read_log(killed/'log.csv'), read_log(whole/'log.csv')
    problems = []
    if [r['epoch'] for r in lk] != list(range(E)): problems.append(f"resumed log has epochs {[r['epoch'] for r in lk]}")
    if not all(math.isfinite(r['train_loss']) for r in lk): problems.append("non-finite losses")
    a = torch.load(whole/'model.pth', map_location='cpu', weights_only=True)
    b = torch.load(killed/'model.pth', map_location='cpu', weights_only=True)
    if list(a) != list(b): problems.append("the two models have different keys")
    mx, rel = _state_diff(a, b)
    dl0 = abs(lk[0]['train_loss'] - lw[0]['train_loss'])
    dl = max(abs(x['train_loss'] - y['train_loss']) for x, y in zip(lk, lw))
    tol = c.resume_tol if c.resume_tol is not None else (1e-2 if c.cuda else 0.)
    if rel > tol: problems.append(f"resumed model differs from the uninterrupted one by {rel:.2e} (relative) > {tol:g}")
    figs = (f"SIGTERM at {sent:.1f} s -> stopped after epoch {stopped_after}, exit 143; --resume exit 0; log epochs 0..{E - 1} once each; "
            f"vs uninterrupted: max |Δparam| {mx:.2e}, relative {rel:.2e} (tolerance {tol:g}); train-loss Δ epoch 0 {dl0:.1e} "
            f"(run-to-run noise), max over epochs {dl:.1e}; {E} epochs, encoder {s['resume_encoder']}, {s['size']} px; wall {wall:.0f} s for 3 runs")
    if problems: raise AssertionError('; '.join(problems) + ' | ' + figs)
    return figs

# ---------------------------------------------------------------------------------------------------------------
DDP_WORKER = r'''
"One process of the ddp_syncbn check of benchmarks/gpu_check.py, started by torchrun."
import json, os, sys, torch, torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from fastai.callback.core import Callback
from cplr_nb.train import train, load_run

a = json.loads(sys.argv[1])
rank, local = int(os.environ['RANK']), int(os.environ.get('LOCAL_RANK', '0'))
torch.set_num_threads(1)
device = a['device'] or f'cuda:{local}'
if a['backend']:                       # joined here, so `train` keeps this group instead of choosing its own backend
    if device.startswith('cuda'): torch.cuda.set_device(torch.device(device))
    dist.init_process_group(a['backend'])

def bn_summary(m):
    bns = [x for x in m.modules() if isinstance(x, nn.modules.batchnorm._BatchNorm)]
    return dict(n_bn=len(bns), n_sync=sum(isinstance(x, nn.SyncBatchNorm) for x in bns),
                types=sorted({type(x).__name__ for x in bns}), acts=[type(getattr(x, 'act', None)).__name__ for x in bns])

class Inspect(Callback):
    "What the fit trains (after DistributedCallback has wrapped the model) and the trained network at the end."
    order = -8
    def before_fit(self):
        m = self.learn.model
        self.info = dict(ddp=isinstance(m, DDP), backend=dist.get_backend() if dist.is_initialized() else None,
                         **bn_summary(m.module if isinstance(m, DDP) else m))
    def after_fit(self): self.model = self.learn.model.module if isinstance(self.learn.model, DDP) else self.learn.model

insp = Inspect()
train(a['data'], 'polcart', a['out'], epochs=2, progress=False, device=device, cbs=[insp], **a['overrides'])
model = insp.model.eval()
res = dict(rank=rank, device=device, params=[n for n, _ in model.named_parameters()], **insp.info)
torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, os.path.join(a['report'], f'rank{rank}.pt'))
if rank == 0:
    loaded, cfg = load_run(a['out'], device=device)          # a fresh create_model + load_state_dict (strict)
    x = torch.rand(8, 1, a['size'], a['size'], device=device, generator=torch.Generator(device).manual_seed(0))
    with torch.no_grad(): res['load_diff'] = float((loaded(x).float() - model(x).float()).abs().max())
    res.update(loaded=bn_summary(loaded), world_size=cfg['world_size'])
with open(os.path.join(a['report'], f'rank{rank}.json'), 'w') as f: json.dump(res, f)
if a['backend']: dist.destroy_process_group()
'''

def check_ddp_syncbn(c):
    "Two torchrun processes training an SK-ResNet: SyncBatchNorm on GPUs, load_run, processes in sync."
    from cplr_nb.train import read_log
    s = c.sizes
    ngpu = torch.cuda.device_count() if c.cuda else 0
    if not c.cuda: backend, dev, mode = 'gloo', 'cpu', 'gloo on CPU, plain BatchNorm (SyncBatchNorm is GPU-only)'
    elif ngpu >= 2: backend, dev, mode = None, None, f'NCCL on 2 of {ngpu} GPUs'
    elif c.ddp_one_gpu: backend, dev, mode = 'gloo', 'cuda:0', 'gloo, both processes on GPU 0 (--ddp-one-gpu)'
    else: raise Skip("one GPU: NCCL refuses two processes on one device; --ddp-one-gpu runs two gloo processes on it instead; "
                     "NCCL needs 2 GPUs")
    data = make_prepared(c.workdir, s['n'], 64, 64)
    enc = c.ddp_encoder or s['ddp_encoder']
    out, report = c.workdir/'ddp', c.workdir/'ddp_report'
    report.mkdir(exist_ok=True)
    worker = c.workdir/'ddp_worker.py'
    worker.write_text(DDP_WORKER)
    args = dict(data=str(data), out=str(out), report=str(report), backend=backend, device=dev, size=s['size'],
                overrides=dict(encoder=enc, size=s['size'], bs=s['ddp_bs'], probe_every=0, valid_pct=0.1))
    t = time.perf_counter()
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', str(worker), json.dumps(args)],
                       capture_output=True, text=True, env=sub_env(), timeout=c.timeout)
    wall = time.perf_counter() - t
    if r.returncode != 0: raise AssertionError(f"torchrun exited {r.returncode} ({mode}): {r.stderr[-1500:]}")
    i0, i1 = [json.loads((report/f'rank{k}.json').read_text()) for k in (0, 1)]
    s0, s1 = [torch.load(report/f'rank{k}.pt', weights_only=True) for k in (0, 1)]
    pdiff = max(float((s0[n] - s1[n]).abs().max()) for n in i0['params'])
    bufs = [k for k in s0 if k not in set(i0['params']) and s0[k].is_floating_point()]
    bdiff = max((float((s0[k] - s1[k]).abs().max()) for k in bufs), default=0.)
    rows = read_log(out/'log.csv')
    problems = []
    if not (i0['ddp'] and i1['ddp']): problems.append("the model was not wrapped in DistributedDataParallel")
    if i0['world_size'] != 2: problems.append(f"config world_size {i0['world_size']}")
    if [x['epoch'] for x in rows] != [0, 1] or not all(math.isfinite(x['train_loss']) for x in rows): problems.append(f"log {rows}")
    if c.cuda and i0['n_sync'] != i0['n_bn']: problems.append(f"{i0['n_sync']} of {i0['n_bn']} BatchNorms are SyncBatchNorm")
    if not c.cuda and i0['n_sync'] != 0: problems.append("SyncBatchNorm on CPU processes")
    if i0['acts'] != i0['loaded']['acts']: problems.append(f"activations after conversion {i0['acts']} != load_run's {i0['loaded']['acts']}")
    if not i0['load_diff'] <= 1e-5 * (1 if not c.cuda else 10): problems.append(f"load_run's network differs from the trained one by {i0['load_diff']:.2e}")
    if pdiff > 1e-6: problems.append(f"processes ended with parameters differing by {pdiff:.2e}")
    nact = sum(x != 'NoneType' for x in i0['acts'])
    figs = (f"{mode}; encoder {enc}, {s['size']} px, bs {s['ddp_bs']} (global); {i0['n_sync']}/{i0['n_bn']} BatchNorms synchronised "
            f"({', '.join(i0['types'])}), {nact} of them with an activation, the same in load_run's network; load_run output Δ {i0['load_diff']:.1e}; "
            f"ranks' max |Δparam| {pdiff:.1e} (BN running stats Δ {bdiff:.1e}); train loss {rows[0]['train_loss']:.3f} -> "
            f"{rows[-1]['train_loss']:.3f}; wall {wall:.0f} s")
    if problems: raise AssertionError('; '.join(problems) + ' | ' + figs)
    return figs

# ---------------------------------------------------------------------------------------------------------------
def _is_oom(e:Exception)->bool:
    "A CUDA allocation failure, from the caching allocator or from cuDNN/cuBLAS."
    return isinstance(e, torch.OutOfMemoryError) or (isinstance(e, RuntimeError) and any(
        m in str(e) for m in ('out of memory', 'NOT_ENOUGH_MEMORY', 'ALLOC_FAILED')))

def _paper_run(c, data:Path, name:str, **overrides)->dict:
    "One epoch of train(config='paper') with `overrides`: peak memory, time and the logged loss, or oom=True."
    from cplr_nb.train import train, read_log
    out = c.workdir/name
    if c.cuda: gc.collect(); torch.cuda.empty_cache(); torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    t, oom = time.perf_counter(), False
    try: train(data, 'polcart', out, config='paper', epochs=1, probe_every=0, progress=False, device=c.device, **overrides)
    except Exception as e:
        if not _is_oom(e): raise
        oom = True
    wall = time.perf_counter() - t
    rows = read_log(out/'log.csv')
    res = dict(oom=oom, wall=wall, loss=rows[0]['train_loss'] if rows else None)
    if c.cuda:
        torch.cuda.synchronize()
        res.update(peak=torch.cuda.max_memory_allocated(), reserved=torch.cuda.max_memory_reserved())
        gc.collect(); torch.cuda.empty_cache()
    if not oom and not (res['loss'] is not None and math.isfinite(res['loss'])):
        raise AssertionError(f"{name}: the epoch logged loss {res['loss']} (log {rows})")
    shutil.rmtree(out, ignore_errors=True)
    return res

def check_paper_memory(c):
    "Peak GPU memory of the paper configuration (224 px, 628 pairs per step, AMP) on one device."
    from cplr_nb.train import CONFIGS
    cfg = CONFIGS['paper']
    if not c.cuda:      # the same code path with a tiny stand-in, to check this script
        data = make_prepared(c.workdir, 16, 64, 64, name='paper_standin')
        r = _paper_run(c, data, 'paper_standin', size=32, bs=16, encoder='skresnet18')
        raise Skip(f"no GPU; the code path ran with a stand-in (skresnet18, 32 px, bs 16, 1 step) in {r['wall']:.1f} s, loss {r['loss']:.3f}")
    steps = c.paper_steps or c.sizes['paper_steps']
    bs = cfg['bs']
    data = make_prepared(c.workdir, bs * steps, 256, 256, name='paper')
    total = torch.cuda.get_device_properties(0).total_memory
    results, b = [], bs
    while True:
        r = _paper_run(c, data, f'paper_bs{b}', bs=b)
        results.append((b, r))
        log(f"paper config bs {b}: {'OOM' if r['oom'] else gib(r['peak'])} in {r['wall']:.1f} s")
        if not r['oom'] or b < 32: break
        b //= 2
    b, r = results[-1]
    head = f"{torch.cuda.get_device_name(0)}, {gib(total)}; paper config ({cfg['encoder']} encoder, {cfg['size']} px, AMP, LARS)"
    if r['oom']: raise AssertionError(f"{head}: out of memory down to bs {b}")
    tried = '; '.join(f"bs {x}: OOM" for x, y in results if y['oom'])
    n_gpu = math.ceil(bs / b)
    fits = (f"bs {bs} FITS one device: peak allocated {gib(r['peak'])} ({r['peak'] / total:.0%}), reserved {gib(r['reserved'])}"
            if b == bs else f"bs {bs} does NOT fit one device ({tried}); bs {b} (the per-GPU batch on {n_gpu} GPUs): peak allocated "
            f"{gib(r['peak'])} ({r['peak'] / total:.0%}), reserved {gib(r['reserved'])}")
    return f"{head}: {fits}; {(bs * steps) // b} steps in {r['wall']:.1f} s (incl. model build and data loading), loss {r['loss']:.3f}"

# ---------------------------------------------------------------------------------------------------------------
def _compare_knn(ref, new, tol=1e-4)->dict:
    "How far two (idx, dist) kNN results are apart: identical rows, neighbour-set agreement, distance gap."
    (ia, da), (ib, db) = ref, new
    same = float((ia == ib).all(1).mean())
    agree = float(np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(ia, ib)]))
    gap = float(np.abs(da - db).max())
    return dict(same=same, agree=agree, gap=gap, ok=gap <= tol and agree >= 0.999)

def check_knn_gpu(c):
    "Exact kNN on the GPU against the CPU (on a CPU: topk against threshold selection), with timings."
    from cplr_nb.neighbours import knn, overlap_score, neighbours_k
    s = c.sizes
    n, d = c.knn_n or s['knn_n'], 128
    k = s['knn_k'] or neighbours_k(n)
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((n, d), dtype=np.float32)
    labels = (rng.random((n, 11)) < 0.25).astype(np.uint8)
    if c.cuda: ref_kw, new_kw, what = dict(device='cpu'), dict(device=c.device), 'GPU vs CPU'
    else: ref_kw, new_kw, what = dict(device='cpu', select='threshold'), dict(device='cpu', select='topk'), 'CPU topk vs CPU threshold'
    if c.cuda: knn(emb[:512], 5, device=c.device)           # warm up CUDA and cuBLAS
    parts, problems = [], []
    for metric in ('cosine', 'euclidean'):
        t = time.perf_counter(); ref = knn(emb, k, metric, **ref_kw); t_ref = time.perf_counter() - t
        t = time.perf_counter(); new = knn(emb, k, metric, **new_kw); t_new = time.perf_counter() - t
        cmp = _compare_knn(ref, new)
        if not cmp['ok']: problems.append(f"{metric}: {cmp}")
        parts.append(f"{metric}: rows identical {cmp['same']:.4f}, neighbour sets {cmp['agree']:.5f}, max |Δdist| {cmp['gap']:.1e}, "
                     f"{t_ref:.2f} s -> {t_new:.2f} s ({t_ref / t_new:.1f}x)")
    o_ref, o_new = overlap_score(emb, labels, k, **ref_kw)[0], overlap_score(emb, labels, k, **new_kw)[0]
    if abs(o_ref - o_new) > 1e-6: problems.append(f"Overlap {o_ref} vs {o_new}")
    tf32 = f"; TF32 matmul {'ON' if torch.backends.cuda.matmul.allow_tf32 else 'off'}" if c.cuda else ''
    figs = f"{what}, N={n}, D={d}, k={k}: " + '; '.join(parts) + f"; Overlap {o_ref:.6f} vs {o_new:.6f}{tf32}"
    if problems: raise AssertionError('; '.join(problems) + ' | ' + figs)
    return figs

def check_faiss_gpu(c):
    "faiss on the GPU through the project's index API: exact (flat) against `knn`, ivf recall, save/load; on a CPU the same with faiss-cpu."
    import cplr_nb.neighbours as nb
    try: import faiss
    except ImportError: raise Skip("the faiss package is not installed") from None
    ngpu = faiss.get_num_gpus() if hasattr(faiss, 'get_num_gpus') else 0
    if c.cuda and ngpu == 0: raise Skip(f"faiss {faiss.__version__} sees no GPU (faiss-cpu?); install faiss-gpu")
    dev = 'cuda' if c.cuda else 'cpu'
    s = c.sizes
    n, d = c.knn_n or s['knn_n'], 128
    k = s['knn_k'] or nb.neighbours_k(n)
    emb = np.random.default_rng(1).standard_normal((n, d), dtype=np.float32)
    parts, problems = [], []
    for metric in ('cosine', 'euclidean'):
        exact = nb.knn(emb, k, metric, device='cpu')
        t = time.perf_counter(); flat = nb.knn(emb, k, metric, index='faiss', kind='flat', device=dev); t_flat = time.perf_counter() - t
        cmp = _compare_knn(exact, flat)
        if not cmp['ok']: problems.append(f"{metric} flat: {cmp}")
        t = time.perf_counter(); ivf = nb.knn(emb, k, metric, index='faiss', kind='ivf', device=dev); t_ivf = time.perf_counter() - t
        rec = float(np.mean([np.isin(x, y).mean() for x, y in zip(ivf[0], exact[0])]))
        if rec < 0.9: problems.append(f"{metric} ivf recall@{k} {rec:.3f} < 0.9")
        parts.append(f"{metric}: flat vs exact rows identical {cmp['same']:.4f}, sets {cmp['agree']:.5f}, max |Δdist| {cmp['gap']:.1e} "
                     f"({t_flat:.2f} s); ivf recall@{k} {rec:.3f} ({t_ivf:.2f} s, tuned nprobe included)")
    index = nb.build_index(emb, 'cosine', 'ivf', k=k, device=dev)
    before = index.search(emb[:200], k)
    path = index.save(c.workdir/'faiss.index')
    again = nb.EmbeddingIndex.load(path, device=dev)
    after = again.search(emb[:200], k)
    same = bool(np.array_equal(before[0], after[0]) and np.allclose(before[1], after[1], atol=1e-6))
    if not same: problems.append("save/load changed the search")
    figs = (f"faiss {faiss.__version__} on {dev} ({ngpu} GPU(s) seen), N={n}, D={d}, k={k}: " + '; '.join(parts)
            + f"; ivf save/load on {dev}: {again!r}, same search {same}")
    if problems: raise AssertionError('; '.join(problems) + ' | ' + figs)
    return figs

# ---------------------------------------------------------------------------------------------------------------
def main(argv=None)->int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cuda', choices=['cuda', 'cpu'], help="cuda (default; SKIP everything without a GPU) or cpu (smoke test)")
    ap.add_argument('--quick', action='store_true', help='smaller cases')
    ap.add_argument('--only', default=None, help=f"comma-separated checks, of {','.join(CHECKS)}")
    ap.add_argument('--workdir', default=None, help='keep the files here (default: a temporary directory, removed at the end)')
    ap.add_argument('--n', type=int, default=None, help='simulated images for checks 1-3 (default 96 on a CPU, 512 quick, 1260)')
    ap.add_argument('--knn-n', type=int, default=None, help='embeddings of the kNN check')
    ap.add_argument('--paper-steps', type=int, default=None, help='steps of the paper-config memory check (default 1 quick, else 2)')
    ap.add_argument('--ddp-encoder', default=None, help='encoder of the DDP check (default skresnet18; paper on a full GPU run)')
    ap.add_argument('--ddp-one-gpu', action='store_true', help='with one GPU, run two gloo processes on it')
    ap.add_argument('--resume-tol', type=float, default=None, help='relative parameter tolerance of the resume check (default 0 on a CPU, 1e-2 on CUDA)')
    ap.add_argument('--timeout', type=float, default=500, help='seconds allowed to each subprocess')
    a = ap.parse_args(argv)
    only = CHECKS if a.only is None else a.only.split(',')
    bad = [x for x in only if x not in CHECKS]
    if bad: ap.error(f"unknown checks {bad}; known: {CHECKS}")
    if a.device == 'cuda' and not torch.cuda.is_available():
        for name in only: print(f"SKIP {name}: no GPU (torch.cuda.is_available() is False); --device cpu runs a smoke test of this script", flush=True)
        return 0
    c = argparse.Namespace(**vars(a))
    c.cuda = a.device == 'cuda'
    c.sizes = sizes(c.cuda, a.quick)
    if a.n: c.sizes['n'] = a.n
    c.workdir = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix='gpu_check_'))
    c.workdir.mkdir(parents=True, exist_ok=True)
    hw = torch.cuda.get_device_name(0) + f" x{torch.cuda.device_count()}" if c.cuda else f"CPU, {os.cpu_count()} cores"
    log(f"device {a.device} ({hw}), torch {torch.__version__}, workdir {c.workdir}")
    failed = False
    try:
        for name in only:
            log(f"{name} ...")
            t = time.perf_counter()
            try: status, figs = 'PASS', globals()[f'check_{name}'](c)
            except Skip as e: status, figs = 'SKIP', str(e)
            except Exception as e:
                status, figs, failed = 'FAIL', f"{type(e).__name__}: {e}", True
                traceback.print_exc()
            print(f"{status} {name}: {figs} [{time.perf_counter() - t:.0f} s]", flush=True)
    finally:
        if not a.workdir: shutil.rmtree(c.workdir, ignore_errors=True)
    return 1 if failed else 0

if __name__ == '__main__': sys.exit(main())
