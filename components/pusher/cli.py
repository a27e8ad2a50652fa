"""``conveyor push``: copy a blessed SavedModel to a version folder TensorFlow Serving watches.

The model goes to ``--destination/<version>`` (version: the epoch second of
the push), written beside as a hidden folder and renamed into place. With
``--blessing`` (a ModelBlessing folder) holding ``NOT_BLESSED`` or
``--infra-blessing`` (an InfraBlessing folder) holding ``INFRA_NOT_BLESSED``,
nothing is pushed. The step is :func:`conveyor.components.pusher.run_pusher`.

Exit status: 0 pushed, 1 not pushed (not blessed), 2 bad input (no such
model, a blessing folder without its marker, a bad destination).
"""

from __future__ import annotations

import argparse

HELP = "Push a blessed SavedModel to DIR/<version>, TensorFlow Serving's layout, atomically."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, its blessings and the destination."""
    parser.add_argument(
        "--model",
        required=True,
        metavar="DIR",
        help="a Model artifact folder (its Format-Serving SavedModel) or a SavedModel folder",
    )
    parser.add_argument(
        "--blessing",
        metavar="DIR",
        help="a ModelBlessing folder (BLESSED or NOT_BLESSED); not blessed: no push",
    )
    parser.add_argument(
        "--infra-blessing",
        metavar="DIR",
        help="an InfraBlessing folder (INFRA_BLESSED or INFRA_NOT_BLESSED); not blessed: no push",
    )
    parser.add_argument(
        "--destination",
        required=True,
        metavar="DIR",
        help="the base directory TensorFlow Serving watches (--model_base_path)",
    )


def run(args, beam_args) -> int:
    """Pushes or not, prints what it did; 0 pushed, 1 not pushed."""
    from conveyor.components.pusher.component import run_pusher, summary_line

    summary = run_pusher(
        args.model,
        None,
        push_destination={"filesystem": {"base_directory": args.destination}},
        model_blessing=args.blessing,
        infra_blessing=args.infra_blessing,
        beam_args=beam_args,
    )
    print(summary_line(summary))
    return 0 if summary["pushed"] else 1
