"""Where a result came from: the date, the machine, the commit and the command, for every results file of the benchmarks."""
import os, platform, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def git(*args)->str: return subprocess.run(['git', *args], capture_output=True, text=True, cwd=ROOT).stdout.strip()

def stamp(results:str|Path)->dict:
    "When, where, at which commit and by which command a result was made; the commit is marked when tracked files other than `results` had changes it does not hold."
    import torch
    rel = Path(results).resolve().relative_to(ROOT)
    dirty = bool(git('status', '--porcelain', '--', 'cplr_nb', 'benchmarks', 'pyproject.toml', f':!{rel}'))   # new files count too
    from cplr_nb.train import cpu_bf16
    gpu = 'GPU ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'
    bf16 = 'with bfloat16' if cpu_bf16() else 'without bfloat16'    # the `cpu` recipe trains in bfloat16 autocast only where the CPU has it
    return dict(date=time.strftime('%Y-%m-%d'), machine=f"{platform.machine()}, {os.cpu_count()} CPU cores {bf16}, {gpu}",
                commit=git('rev-parse', '--short', 'HEAD') + (' with uncommitted changes' if dirty else ''),
                command=' '.join(['python', _script(sys.argv[0]), *sys.argv[1:]]))

def _script(arg:str)->str: # the script as run from the repository's root, when it is in the repository
    try: return str(Path(arg).resolve().relative_to(ROOT))
    except ValueError: return arg

def stamp_line(s:dict)->str: return f"{s['date']}, {s['machine']}, commit {s['commit']}: `{s['command']}`"
