"""Training runs as a library: what the programs do, callable from Python.

- `fields`: each setting declared once: default, help, flag group, valid values.
- `config`: `RunConfig`, every setting of a run, typed and validated.
- `options`: the programs' flags, generated from `RunConfig`'s fields.
- `run_dir`, `run_lock`: checked, locked output folders.
- `pipeline`: a configuration's compiled model and data pipelines.
- `training`: prepare, train (or resume), evaluate and report a run.
- `tuning`, `hypermodel`: the KerasTuner search and its hypermodel.

`zerograd-train`, `zerograd-eval` (`zerograd_tf.trainers`) and
`zerograd-tune` (`zerograd_tf.tuning`) parse their command line, call these
and print. Importing this package imports nothing else (the programs import
it before parsing, without TensorFlow).
"""
