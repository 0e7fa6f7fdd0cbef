#!/usr/bin/env python
"""Throughput of the contrastive training loop: fastai `Learner` (cplr_nb.train) vs a bare PyTorch loop.

Both loops train the same model (same seed, same initial weights) with the same LARS optimizer, the same
learning-rate schedule and the same augmented batches of `pair_dls`, for one epoch of the `cpu` config.
Reported: images/s (each pair is two images through the encoder) of the training phase of one epoch, the
ratio fastai/bare (target >= 0.9), and a breakdown of a bare-loop step: data (gather + augmentation),
encoder forward, head + loss forward, head + loss backward, encoder backward, optimizer step; the share of a
step spent outside the encoder's forward/backward.

    python benchmarks/bench_train.py                     # synthetic ring patterns, 1260 images
    python benchmarks/bench_train.py --data prepared.h5  # a prepared file (e.g. from cplr-simulate + cplr-prepare)

Runs alternate (fastai, bare, fastai, bare, ...) after one warm-up epoch. On a shared machine whole-epoch times
swing with the neighbours' load, so the main figure is the median step time (one batch start to the next,
everything included); per-epoch medians are printed too.
"""
import argparse, math, statistics, sys, tempfile, time
from pathlib import Path
import numpy as np, torch
from fastai.callback.core import Callback
from cplr_nb.augment import pair_dls
from cplr_nb.loss import NTXentLoss
from cplr_nb.model import create_model
from cplr_nb.projection import PreparedData, load_prepared
from cplr_nb.train import LARS, contrastive_learner, exclude_bn_bias, make_config, scaled_lr, warmup_cosine


def ring_prepared(n, size=128, seed=0):
    "Synthetic Polar/Cartesian-like views (rings, ellipses, streaks), enough to time the loop."
    rng = np.random.default_rng(seed)
    yy, xx = (np.mgrid[:size, :size] - size / 2) / size
    pol = np.empty((n, size, size), np.float32)
    for i in range(n):
        a, e, k = rng.uniform(0, np.pi), rng.uniform(0.6, 1), rng.uniform(40, 90)
        u, v = xx * np.cos(a) + yy * np.sin(a), (-xx * np.sin(a) + yy * np.cos(a)) / e
        r = np.hypot(u, v)
        pol[i] = np.cos(k * r) ** 2 * np.exp(-4 * r)
    cart = np.ascontiguousarray(np.transpose(pol, (0, 2, 1))[:, ::-1])
    return PreparedData(pol, cart)


class PhaseTimer(Callback):
    "Wall time of the training phase of an epoch, and of each of its steps (start of one batch to the next)."
    order = 100
    def before_train(self): self.t0 = time.perf_counter(); self.stamps = []
    def before_batch(self):
        if self.training: self.stamps.append(time.perf_counter())
    def after_train(self):
        t = time.perf_counter(); self.time = t - self.t0; self.steps = list(np.diff(self.stamps + [t]))


def fastai_epoch(dls, cfg):
    learn = contrastive_learner(dls, cfg, cbs=[PhaseTimer()])
    with learn.no_bar(), learn.no_logging(): learn.fit(1)
    return learn.phase_timer.time, learn.phase_timer.steps


def bare_epoch(dls, cfg, breakdown=False):
    torch.manual_seed(cfg['seed'])
    model = create_model(**cfg['model']).to(dls.device).train()
    opt = exclude_bn_bias(LARS(list(model.parameters()), lr=0., mom=cfg['momentum'], wd=cfg['weight_decay'],
                               trust_coeff=cfg['trust_coeff']), model)
    loss_fn = NTXentLoss(cfg['temperature'])
    peak, n_iter = scaled_lr(cfg['base_lr'], cfg['bs'], cfg['lr_scaling']), len(dls.train)
    warm, total = int(round(cfg['warmup_epochs'] * n_iter)), cfg['epochs'] * n_iter
    parts = {k: [] for k in ('data', 'enc_fwd', 'head_loss_fwd', 'head_loss_bwd', 'enc_bwd', 'opt')}
    steps = []
    t0 = time.perf_counter()
    it, step = iter(dls.train), 0
    while True:
        ta = time.perf_counter()
        try: x1, x2 = next(it)
        except StopIteration: break
        opt.set_hypers(lr=warmup_cosine(step, peak, warm, total))
        x = torch.cat([x1, x2])
        tb = time.perf_counter()
        if breakdown:
            h = model.encoder(x); tc = time.perf_counter()
            hd = h.detach().requires_grad_()
            z = model.head(hd); loss = loss_fn(z[:len(x1)], z[len(x1):]); td = time.perf_counter()
            loss.backward(); te = time.perf_counter()
            h.backward(hd.grad); tf = time.perf_counter()
        else:
            z = model(x); loss = loss_fn(z[:len(x1)], z[len(x1):]); loss.backward()
            tc = td = te = tf = time.perf_counter()
        opt.step(); opt.zero_grad(); tg = time.perf_counter()
        for k, v in zip(parts, (tb - ta, tc - tb, td - tc, te - td, tf - te, tg - tf)): parts[k].append(v)
        steps.append(tg - ta)
        step += 1
    return time.perf_counter() - t0, steps, parts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data', help='prepared HDF5 file (default: synthetic rings)')
    ap.add_argument('--n', type=int, default=1260, help='synthetic images when no --data')
    ap.add_argument('--repeats', type=int, default=3, help='timed epochs per loop')
    ap.add_argument('--threads', type=int, default=None, help='torch threads (default: torch default)')
    ap.add_argument('--bs', type=int, default=None, help='override the cpu config batch size')
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    prep = load_prepared(a.data) if a.data else ring_prepared(a.n)
    cfg = make_config('cpu', 'polcart', bs=a.bs)
    dls = pair_dls(prep, 'polcart', size=cfg['size'], bs=cfg['bs'], valid_pct=cfg['valid_pct'], seed=0, device='cpu', **cfg['aug'])
    img_per_epoch = 2 * cfg['bs'] * len(dls.train)
    print(f"cpu config: encoder {cfg['model']['encoder']}, {cfg['size']} px, bs {cfg['bs']}, {len(dls.train)} steps/epoch, "
          f"{len(prep)} images ({'file ' + a.data if a.data else 'synthetic rings'}), torch threads {torch.get_num_threads()}")
    bare_epoch(dls, cfg)                                                     # warm-up (one-time kernel setup)
    fa, ba, fs, bs_, bd = [], [], [], [], []
    for r in range(a.repeats):
        t, st = fastai_epoch(dls, cfg); fa.append(t); fs += st
        t, st, _ = bare_epoch(dls, cfg); ba.append(t); bs_ += st
    for r in range(a.repeats): bd.append(bare_epoch(dls, cfg, breakdown=True)[2])
    step_imgs = 2 * cfg['bs']
    f_ips, b_ips = step_imgs / statistics.median(fs), step_imgs / statistics.median(bs_)
    print(f"per step (median of {len(fs)} / {len(bs_)} steps):")
    print(f"  fastai Learner : {f_ips:7.1f} images/s  ({1000 * statistics.median(fs):.0f} ms/step)")
    print(f"  bare loop      : {b_ips:7.1f} images/s  ({1000 * statistics.median(bs_):.0f} ms/step)")
    print(f"  ratio fastai/bare: {f_ips / b_ips:.3f}  (target >= 0.9)")
    print(f"per epoch (median of {a.repeats}): fastai {img_per_epoch / statistics.median(fa):.1f} images/s, bare {img_per_epoch / statistics.median(ba):.1f} images/s, "
          f"ratio {statistics.median(ba) / statistics.median(fa):.3f}; epochs fastai {[round(t, 2) for t in fa]} s, bare {[round(t, 2) for t in ba]} s")
    med = {k: statistics.median([statistics.median(p[k]) for p in bd]) for k in bd[0]}
    step = sum(med.values())
    print("bare-loop step breakdown (median over steps and runs):")
    for k, v in med.items(): print(f"  {k:14s} {1000 * v:8.1f} ms  {100 * v / step:5.1f} %")
    print(f"  step total     {1000 * step:8.1f} ms")
    print(f"share outside the encoder forward/backward: {100 * (1 - (med['enc_fwd'] + med['enc_bwd']) / step):.1f} %"
          f"  (data+augmentation {100 * med['data'] / step:.1f} %, head+loss {100 * (med['head_loss_fwd'] + med['head_loss_bwd']) / step:.1f} %,"
          f" optimizer {100 * med['opt'] / step:.1f} %)")
    print(f"cpu config estimate: {cfg['epochs']} epochs x {statistics.median(fa):.1f} s = {cfg['epochs'] * statistics.median(fa) / 60:.1f} min of training"
          " (plus validation and the online probe)")


if __name__ == '__main__': main()
