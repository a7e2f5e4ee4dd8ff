"""From a reduction directory to the delivery package: ``scan`` (one read-only walk) ->
``layouts`` (which EBs, where) -> ``rules`` (every name and place, as data tables) -> ``plan``
(pure: where every file goes) -> ``materialize`` (the payload) into ``package_dir`` (the
package on disk: marker, lock, staging, atomic install); ``facts``, ``readme``, ``ticket``
and ``pipemanifest`` write what travels with it; ``packager`` and ``stage`` orchestrate,
``legacy`` keeps ``QA_Packager``."""
