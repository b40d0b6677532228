"""What the benchmarks and studies share, as a library.

- `machine`: the record of where a result was measured.
- `study_plan`: a study's settings, methods and seeds, read from a JSON
  file, and the `RunConfig` and data of each run.
- `study_records`: a study's run records: loading, the per-run row and the
  CSV files.
- `study_tables`: a study's Markdown summary and its targets.
- `study_choices`: the decisions taken from a study's records by written
  rules (a development choice, the default's target, the safest method).
- `study_run`, `epoch_monitor`, `partial_run`: one run of a study (trained
  or resumed, measured every epoch, evaluated), its per-epoch measurement,
  and the state from which a killed run resumes.
- `study_default`: what the study says of `zerograd-train`'s default (the
  target per recipe, the README's opening claim).
- `study_docs`, `study_plots`: the documents' text and figures.
- `vs_pytorch_report`: the side-by-side's tables and targets.
- `step_cost`: a method's compiled model on a network and a callable that
  runs one training step, for timing.

The programs under `benchmarks/` import these, never each other. Importing
this package imports nothing else.
"""
