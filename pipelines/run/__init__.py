"""Running the pipeline here: in process, stages side by side, recovery of an interrupted
run, progress, the run's log, and the `kubetfx run` command that ties them together."""
