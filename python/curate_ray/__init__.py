"""Run a curate build on a Ray cluster.

`curate run RECIPE --executor ray` makes the plan, holds the output's lock, and starts
this driver with the job on stdin; the driver submits each phase's tasks as Ray tasks
that run `curate task PLAN ID` on whichever node Ray picks, and waits for a phase to
finish before it starts the next. It holds no pipeline logic: every byte of output
comes from `curate task`, and `curate` itself writes the output folder afterwards.

`python -m curate_ray RECIPE [--address ADDR]` is the same as
`curate run RECIPE --executor ray`, run with this Python.
"""
