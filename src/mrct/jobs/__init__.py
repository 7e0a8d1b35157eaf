"""The jobs behind the ``mrct`` commands, callable from Python: each reads its inputs from
files, calls the library layers, writes its outputs atomically and reports through a ``log``
callable (``mrct.cli`` passes ``typer.echo``; the default is the module's ``logging`` logger).

* :mod:`mrct.jobs.demo`: ``mrct demo`` (:func:`~mrct.jobs.demo.run_demo`);
* :mod:`mrct.jobs.recon`: ``mrct recon`` (:func:`~mrct.jobs.recon.run_recon`);
* :mod:`mrct.jobs.sr`: ``mrct sr`` (:func:`~mrct.jobs.sr.run_sr`);
* :mod:`mrct.jobs.sct`: ``mrct synth sct`` (:func:`~mrct.jobs.sct.run_sct`);
* :mod:`mrct.jobs.drr`: ``mrct drr`` (:func:`~mrct.jobs.drr.render_drrs`).

``mrct train`` runs :func:`mrct.recon.train_from_config` directly. Jobs may import every
library layer; no library layer imports a job, and jobs never import :mod:`mrct.cli`.
"""
