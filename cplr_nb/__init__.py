__version__ = "0.1.0"

import warnings as _warnings
# fastai's layers script two activations with torch.jit at import; PyTorch 2.14 deprecates that with a FutureWarning that
# every console tool would print before its own output. It says nothing about cplr_nb's use, so it is not shown.
_warnings.filterwarnings('ignore', message=r'`torch\.jit\.script` is deprecated', category=FutureWarning)
