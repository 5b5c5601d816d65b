"""scikit-learn's digits (8x8 pixels, bundled with the package: no download) for the experiments that train
on them in torch (kinkhit, maxpool): the data, loaded once per process, and what to install when missing."""

_DATA = {}


def missing(what):
    """None when scikit-learn and torch import, else the line that says how to install them for ``what``."""
    try:
        import sklearn.datasets  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return (f"{what} needs scikit-learn (for its bundled digits data) and torch: "
                "pip install -e '.[paper]'  (or: pip install scikit-learn torch)")
    return None


def digits():
    """(X, y): the 1797 digits as float64 rows of 64 pixels / 16 (exact dyadic values) and their labels."""
    if "digits" not in _DATA:
        from sklearn.datasets import load_digits
        X, y = load_digits(return_X_y=True)
        _DATA["digits"] = (X / 16.0, y)
    return _DATA["digits"]
