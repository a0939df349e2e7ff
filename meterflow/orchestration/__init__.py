"""Running the pipeline: the table of steps and the runner that chains them as child runs
(``steps``, ``runner``, ``pipeline``), run reuse (``reuse``), one run at a time (``lock``,
``scheduler``), leftovers of killed runs (``reconcile``), the state record beside the data
(``state``), the checks before a run (``preflight``, ``launch``) and model promotion
(``decision``, ``registry``)."""
