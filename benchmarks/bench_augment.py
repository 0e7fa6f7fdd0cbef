"""Benchmark of the per-sample augmentation (issue 4; target in DESIGN.md: <= 10 % of a CPU training step).

  python benchmarks/bench_augment.py [--sizes 64 224] [--bs 256] [--repeats 5] [--model cpu|stand-in] [--threads N]

For each training resolution S, on a (bs,1,S,S) batch of random images in [0,1]:
1. `Augment()` of the two views (two calls, p=0.5 per transform as `pair_dls` uses it), and the worst case p=1;
2. one batch of `pair_dls(...).train` (host gather + move + augmentation of both views), views pre-resized;
3. one forward+backward pass of the default CPU model on the same (bs,1,S,S) batch (the issue's yardstick), and a
   whole training step: forward+backward of both views (2*bs images) with the NT-Xent loss.
The default CPU model is `cplr_nb.model.create_model('cpu')` (the 'cpu' encoder preset + SimCLRv2 head) when that
module exists, else the stand-in timm `resnet18d` (in_chans=1, num_classes=0) with a 3-layer MLP head.
Times are medians of --repeats runs (the machine may be shared with other jobs: medians, not means). On a loaded
machine the number of torch threads matters a lot: with 2 OpenMP threads on 2 busy cores, short element-wise kernels
(the augmentation) wait for a descheduled partner thread far more than long convolutions do; try --threads 1 and 2.
"""
import argparse, statistics, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
from cplr_nb.augment import Augment, pair_dls
from cplr_nb.projection import PreparedData

def median_time(f, repeats, warmup=1):
    for _ in range(warmup): f()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)

def stand_in_model():
    import timm
    enc = timm.create_model('resnet18d', pretrained=False, in_chans=1, num_classes=0)
    d = enc.num_features
    head = nn.Sequential(nn.Linear(d, d, bias=False), nn.BatchNorm1d(d), nn.ReLU(), nn.Linear(d, d, bias=False),
                         nn.BatchNorm1d(d), nn.ReLU(), nn.Linear(d, 128, bias=False), nn.BatchNorm1d(128))
    return nn.Sequential(enc, head), 'stand-in: timm resnet18d (in_chans=1, num_classes=0) + 3-layer MLP head'

def default_model(kind):
    if kind == 'cpu':
        try:
            from cplr_nb.model import create_model
            return create_model('cpu'), "cplr_nb.model.create_model('cpu')"
        except ImportError: pass
    return stand_in_model()

def loss_fn():
    try:
        from cplr_nb.loss import NTXentLoss
        return NTXentLoss(0.1)
    except ImportError:
        def nt_xent(z1, z2, t=0.1):
            z = F.normalize(torch.cat([z1, z2]), dim=1); n = len(z1)
            sim = (z @ z.T / t).fill_diagonal_(-1e9)
            return F.cross_entropy(sim, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]))
        return nt_xent

def bench(size, bs, repeats, model, loss):
    x1, x2 = torch.rand(bs, 1, size, size), torch.rand(bs, 1, size, size)
    aug, aug1 = Augment(), Augment(p=1.)
    g = torch.Generator().manual_seed(0)
    t_aug = median_time(lambda: (aug(x1, generator=g), aug(x2, generator=g)), repeats)
    t_aug1 = median_time(lambda: (aug1(x1, generator=g), aug1(x2, generator=g)), repeats)
    n = max(2 * bs, 512)
    views = np.random.default_rng(0).random((n, size, size), dtype=np.float32)
    dls = pair_dls(PreparedData(views, views[::-1].copy()), 'polcart', size=size, bs=bs, valid_pct=0, device='cpu')
    it = {'it': iter(dls.train)}
    def next_batch():
        try: return next(it['it'])
        except StopIteration: it['it'] = iter(dls.train); return next(it['it'])
    t_dl = median_time(next_batch, repeats)
    model.train()
    def fwd_bwd():
        model.zero_grad(set_to_none=True)
        model(x1).float().pow(2).mean().backward()
    def step():
        model.zero_grad(set_to_none=True)
        z = model(torch.cat([x1, x2]))
        loss(z[:bs], z[bs:]).backward()
    reps_model = max(1, min(repeats, 3 if size > 100 else repeats))
    t_fb = median_time(fwd_bwd, reps_model)
    t_step = median_time(step, reps_model)
    return dict(aug=t_aug, aug1=t_aug1, dl=t_dl, fb=t_fb, step=t_step, reps_model=reps_model)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--sizes', type=int, nargs='+', default=[64, 224]); p.add_argument('--bs', type=int, default=256)
    p.add_argument('--repeats', type=int, default=5); p.add_argument('--model', default='cpu', choices=['cpu', 'stand-in'])
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s choice)')
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model, desc = default_model(a.model)
    loss = loss_fn()
    print(f"\n## Augmentation vs training step, bs={a.bs}, {torch.get_num_threads()} torch threads, CPU")
    print(f"model: {desc}; medians of {a.repeats} runs for the augmentation (fewer for the model at 224 px: see last column)\n")
    print("| size | augment 2 views, p=0.5 (s) | p=1 (s) | pair_dls batch (s) | fwd+bwd, bs images (s) | ratio | "
          "step: fwd+bwd 2*bs + loss (s) | ratio | model repeats |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in a.sizes:
        r = bench(s, a.bs, a.repeats, model, loss)
        print(f"| {s} | {r['aug']:.3f} | {r['aug1']:.3f} | {r['dl']:.3f} | {r['fb']:.2f} | {100 * r['aug'] / r['fb']:.1f} % | "
              f"{r['step']:.2f} | {100 * r['aug'] / r['step']:.1f} % | {r['reps_model']} |", flush=True)
