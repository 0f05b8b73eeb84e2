"""Recipes of G3AN's own datasets: UvA-NEMO, MUG and Weizmann, with the labels its experiments use.

Each takes the tasks a plain video-folder recipe finds in the raw download and names every video's label and
speaker from where the download puts them (file names, folders), keeping only the videos G3AN trains on:

- **UvA-NEMO Smile** (``<root>/videos/<subject>_<deliberate|spontaneous>_smile_<n>.mp4``, 1920x1080, 50 fps):
  label = deliberate (posed) or spontaneous, speaker = the three-digit subject id. G3AN trains on it
  unconditionally.
- **MUG Facial Expression** (frame folders ``<root>/<subject>/[session<k>/]<expression>/take<nnn>/*.jpg``,
  896x896, 19 fps): the six expressions of G3AN's conditional run as labels (neutral is left out), the subject
  as speaker.
- **Weizmann Action** (``<person>_<action>[<n>].avi`` from the ten action zips, extracted in one folder or one per
  action; 180x144): the ten actions as labels (``wave1`` = one hand, ``wave2`` = two hands), the person as
  speaker; ``lena`` has two takes of run, skip and walk (``lena_run1``, ``lena_run2``), 93 videos in all.

A video whose name does not follow its download's pattern stops planning with the name and the pattern, before
anything is decoded: a mislabelled video would silently change a conditional model.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stylegan_v.data.recipes import Task

UVA_NEMO_NAME = re.compile(r"(?P<subject>\d{3})_(?P<kind>deliberate|spontaneous)_smile_(?P<take>\d+)")
MUG_EXPRESSIONS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")  # G3AN's six categories
MUG_SUBJECT = re.compile(r"\d{3}")
WEIZMANN_ACTIONS = ("bend", "jack", "jump", "pjump", "run", "side", "skip", "walk", "wave1", "wave2")
# wave1/wave2 are two actions; a digit after any other action numbers a second take (lena_run1, lena_run2)
WEIZMANN_NAME = re.compile(r"(?P<person>[a-z]+)_(?P<action>wave1|wave2|" + "|".join(WEIZMANN_ACTIONS[:-2])
                           + r")(?P<take>\d?)")


def _stem(task: Task) -> str:
    return PurePosixPath(task.rel).stem


def _refuse(task: Task, dataset: str, pattern: str) -> ValueError:
    return ValueError(f"{dataset}: {task.rel!r} is not named as the download names its videos ({pattern}); "
                      f"rename it, or leave it out with dataset.include")


def uva_nemo(tasks: list[Task]) -> list[Task]:
    """Label deliberate / spontaneous and the subject, from ``<subject>_<kind>_smile_<n>``."""
    out = []
    for task in tasks:
        match = UVA_NEMO_NAME.fullmatch(_stem(task))
        if match is None:
            raise _refuse(task, "UvA-NEMO", "<subject>_<deliberate|spontaneous>_smile_<n>.mp4")
        out.append(replace(task, label=match["kind"], speaker=match["subject"]))
    return out


def mug(tasks: list[Task]) -> list[Task]:
    """The takes of the six expressions (neutral and anything else left out), labelled by expression and
    subject."""
    out = []
    for task in tasks:
        parts = PurePosixPath(task.rel).parts
        if len(parts) < 2 or parts[-2] not in MUG_EXPRESSIONS:
            continue  # neutral takes, and frame folders outside <expression>/<take>
        subjects = [p for p in parts[:-2] if MUG_SUBJECT.fullmatch(p)]
        if not subjects:
            raise _refuse(task, "MUG", "<subject>/[session<k>/]<expression>/take<nnn>/ with a three-digit subject")
        out.append(replace(task, label=parts[-2], speaker=subjects[-1]))
    return out


def weizmann(tasks: list[Task]) -> list[Task]:
    """Label the action and the person, from ``<person>_<action>[<n>]``."""
    out = []
    for task in tasks:
        match = WEIZMANN_NAME.fullmatch(_stem(task))
        if match is None:
            raise _refuse(task, "Weizmann", f"<person>_<action>[<n>].avi, action one of {', '.join(WEIZMANN_ACTIONS)}")
        out.append(replace(task, label=match["action"], speaker=match["person"]))
    return out
