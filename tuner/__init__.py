"""edgetune core: knobs and configs, boards, power sampling, the CLI.

Import cost matters here: ``edgetune status`` and the daemon import this
package, so nothing heavy (torch, pandas, scikit-optimize, matplotlib) may be
imported at module level anywhere under ``tuner``.
"""

__version__ = "0.1.0"
