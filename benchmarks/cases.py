"""The command line shared by the benchmark scripts made of named cases (bench_scale.py, bench_curate.py)."""
import argparse, json, shutil, sys, tempfile, time, warnings
from pathlib import Path
from provenance import stamp, stamp_line

def run_cases(doc:str,        # the script's docstring, for --help
              cases:dict,     # name -> function(workdir:Path, quick:bool) -> dict of results
              markdown,       # function(results) -> Markdown of all results so far
              out:Path,       # results.json (results.md beside it); read first, so that a case run alone updates its part
              results:dict=None, # the dict to fill (a case may read an earlier case's results from it)
             )->dict:
    "Parse --quick/--only/--workdir, run the cases in order, save the results after each, print and save the Markdown."
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='smaller cases, for a check of the script (nothing saved)')
    ap.add_argument('--only', default=','.join(cases), help='comma-separated cases')
    ap.add_argument('--workdir', default=None, help='keep the files here (default: a temporary directory, removed)')
    a = ap.parse_args()
    warnings.filterwarnings('ignore')
    work = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix=f'{out.parent.name}_'))
    work.mkdir(parents=True, exist_ok=True)
    results = {} if results is None else results
    if out.exists() and not a.quick: results.update(json.loads(out.read_text()))
    try:
        for name in a.only.split(','):
            if name not in cases: raise SystemExit(f"error: unknown case {name!r}; cases: {', '.join(cases)}")
            t = time.perf_counter()
            results[name] = cases[name](work, a.quick)
            results.setdefault('stamps', {})[name] = stamp(out.parent)
            print(f"{name}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
            if not a.quick:
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(results, indent=1, default=lambda o: o.item() if hasattr(o, 'item') else str(o)))
    finally:
        if not a.workdir: shutil.rmtree(work, ignore_errors=True)
    md = markdown(results) + ''.join(f"\n- {name}: {stamp_line(s)}" for name, s in results.get('stamps', {}).items())
    print(md)
    if not a.quick: out.with_suffix('.md').write_text(md + '\n')
    return results
