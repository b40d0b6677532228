"""The programs `zerograd-train` (`train`) and `zerograd-eval` (`evaluate`).

This folder is the package `zerograd_tf.trainers` (setup.cfg's
`package_dir`), and that is its only import name: imported as `trainers`
(from a checkout's root) it would be a second copy of every module, whose
classes and exceptions differ from the first's. The library they call is
`zerograd_tf.runs`.
"""

if __name__ != "zerograd_tf.trainers":
    raise ImportError(f"{__name__!r} is the package 'zerograd_tf.trainers': import it by that "
                      "name (pip install -e . in a checkout)")
