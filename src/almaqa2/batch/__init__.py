"""``qa2 batch``: many MOUSes packaged, split and verified at once on Dask distributed.

``plan`` reads the PLAN (TOML) into jobs and finds the reductions under a directory for
``--init`` (pure reading); ``ledger`` keeps what each job did, beside the PLAN; ``task`` is
what one worker does for one MOUS (the same library calls as ``qa2 package``, ``stage``,
``tarsplit`` and ``verify``); ``runner`` hands the tasks to a Dask cluster and collects.
"""
