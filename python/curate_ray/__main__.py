"""`python -m curate_ray RECIPE [--address ADDR] [--curate PATH] [-- CURATE_ARGS…]`, or,
as `curate` calls it, `python -m curate_ray --job -` with the job on stdin."""

import argparse
import os
import shutil
import sys


def main(argv):
    if argv[:1] == ["--job"]:
        from . import driver

        return driver.main(argv[1:])
    p = argparse.ArgumentParser(
        prog="python -m curate_ray",
        description="Run a curate recipe on a Ray cluster (the same as `curate run RECIPE --executor ray`).",
    )
    p.add_argument("recipe", help="the recipe file")
    p.add_argument("--address", help="the Ray cluster (default: RAY_ADDRESS, else a local cluster)")
    p.add_argument("--curate", help="the curate binary (default: CURATE_BIN, else `curate` on PATH)")
    p.add_argument("rest", nargs="*", metavar="-- CURATE_ARGS", help="more `curate run` options, after `--`")
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    a = p.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    curate = a.curate or os.environ.get("CURATE_BIN") or shutil.which("curate")
    if not curate or not os.path.isfile(curate):
        print(
            "error: cannot find the curate binary\n"
            "hint: give it with --curate PATH or CURATE_BIN, or put `curate` on PATH",
            file=sys.stderr,
        )
        return 2
    cmd = [curate, "run", a.recipe, "--executor", "ray", "--python", sys.executable]
    if a.address:
        cmd += ["--address", a.address]
    os.execv(curate, cmd + rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
