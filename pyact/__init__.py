"""pyact: neural-network activation functions, their derivatives and fused
backward passes as compiled kernels over NumPy arrays, in place or not.

Every activation NAME of the catalogue (see ``pyact.REGISTRY``) comes as

* ``NAME(x, *, out=None, **params)``: f(x);
* ``NAME_(x, **params)``: f(x) in place, returning x;
* ``NAME_derivative(x, *, out=None, **params)``: f'(x) (elementwise functions);
* ``NAME_backward(grad, *, x=None, y=None, out=None, **params)``: grad * f'(x)
  in one pass, from the saved input x or, where possible, the saved output y.

The axis functions softmax, log_softmax and softmin take ``axis=-1`` and their
backward is the vector-Jacobian product from the saved output y.

The kernels run the best instruction-set level this CPU supports (PYACT_ISA
forces one) and split large arrays across threads (``set_num_threads``,
PYACT_NUM_THREADS, OMP_NUM_THREADS); ``config()`` shows both.
"""
from ._version import __version__
from ._registry import REGISTRY
from ._api import PUBLIC as _PUBLIC
from ._config import config, show_config
from ._threads import get_num_threads, set_num_threads

globals().update(_PUBLIC)

__all__ = ["__version__", "REGISTRY", "config", "show_config", "get_num_threads",
           "set_num_threads", *_PUBLIC]
