"""The program `zerograd-tune` (`search`).

This folder is the package `zerograd_tf.tuning` (setup.cfg's `package_dir`),
and that is its only import name: imported as `tuning` (from a checkout's
root) it would be a second copy of every module. The search and its
hypermodel are the library's: `zerograd_tf.runs.tuning.search` and
`zerograd_tf.runs.tuning.ZeroGradHyperModel`.
"""

if __name__ != "zerograd_tf.tuning":
    raise ImportError(f"{__name__!r} is the package 'zerograd_tf.tuning': import it by that "
                      "name (pip install -e . in a checkout)")
