#!/usr/bin/env python
"""Keep the figures that notebooks are committed with small.

  OMP_NUM_THREADS=1 nbdev-test --n-workers 2 --save && python tools/shrink_outputs.py && nbdev-clean

Every PNG output of nbs/*.ipynb wider than --max-width pixels is scaled down to it (Lanczos) and re-encoded with
at most --colors colours (a palette image: plots need no more). Montages of noisy diffraction images compress
badly as PNG: where a JPEG (quality 85) is less than 60 % of the palette PNG, the output becomes that JPEG. An image
is replaced only where the result is smaller. Output written to stderr (warnings that name this machine's paths,
progress noise) is dropped: a reader is shown what the cells print and draw. Prints what each notebook went from and to.
"""
import argparse, base64, io, json
from pathlib import Path
from PIL import Image

def shrink_png(data:str, max_width:int, colors:int)->tuple:
    "(mime type, base64 data) of a base64 PNG scaled to `max_width` at most: a palette PNG, a JPEG, or the original, the smallest."
    im = Image.open(io.BytesIO(base64.b64decode(data)))
    if im.width > max_width: im = im.resize((max_width, round(im.height * max_width / im.width)), Image.LANCZOS)
    if im.mode in ('RGBA', 'LA', 'P'):                       # flatten transparency onto white, as the page shows it
        bg = Image.new('RGB', im.size, 'white'); bg.paste(im.convert('RGBA'), mask=im.convert('RGBA').split()[-1]); im = bg
    buf, jpg = io.BytesIO(), io.BytesIO()
    im.convert('RGB').quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(buf, format='png', optimize=True)
    im.convert('RGB').save(jpg, format='jpeg', quality=85, optimize=True)
    mime, new = ('image/jpeg', jpg) if len(jpg.getvalue()) < 0.6 * len(buf.getvalue()) else ('image/png', buf)
    new = base64.b64encode(new.getvalue()).decode()
    return (mime, new) if len(new) < len(data) else ('image/png', data)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('paths', nargs='*', default=sorted(Path('nbs').glob('*.ipynb')))
    ap.add_argument('--max-width', type=int, default=900); ap.add_argument('--colors', type=int, default=128)
    a = ap.parse_args()
    for p in map(Path, a.paths):
        nb, before = json.loads(p.read_text()), p.stat().st_size
        for c in nb['cells']:
            if 'outputs' in c: c['outputs'] = [o for o in c['outputs'] if not (o.get('output_type') == 'stream' and o.get('name') == 'stderr')]
            for o in c.get('outputs', []):
                if 'image/png' in o.get('data', {}):
                    png = o['data'].pop('image/png')
                    mime, new = shrink_png(png if isinstance(png, str) else ''.join(png), a.max_width, a.colors)
                    o['data'][mime] = new
        p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
        print(f"{p.name}: {before // 1024} kB -> {p.stat().st_size // 1024} kB")
