"""`python -m curate_train --settings FILE`: what `curate train` runs."""

import time

STARTED = time.monotonic()  # the budget counts from here, before the heavy imports

import argparse  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402

from . import EXIT_ERROR, EXIT_POLICY, Refusal, TrainerError  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m curate_train", description=__doc__)
    ap.add_argument("--settings", required=True, help="the settings file `curate train` wrote")
    args = ap.parse_args(argv)
    try:
        from .train import run
    except ImportError as e:
        print(f"error: the trainer's Python packages are missing: {e}", file=sys.stderr)
        print("hint: pip install -r trainer/requirements.txt (curate train makes its own virtual environment)",
              file=sys.stderr)
        return EXIT_ERROR
    try:
        return run(args.settings, STARTED)
    except Refusal as e:
        print(f"error: {e}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        return EXIT_POLICY
    except TrainerError as e:
        print(f"error: {e}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        return EXIT_ERROR
    except Exception:  # an unexpected failure: the traceback is the report
        traceback.print_exc()
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
