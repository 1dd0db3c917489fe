"""Text prompts of the text-conditioned sampling modes: read, expanded over classes, labelled.

A prompt holding ``{class}`` is a template: it becomes one prompt per class (the dataset's class names,
or the ``classes`` a mode lists), each labelled with its class, so the held-out classifier can tell
whether a sample shows the class it was prompted with. A prompt given as ``{text: ..., class: ...}`` is
labelled with that class (a paraphrase that names no class: "a running shoe" for Sneaker). A literal
prompt is labelled with the one class name it mentions (whole words, ignoring case; "ankle boot" before
"boot"), and left unlabelled when it mentions none or several; one unlabelled prompt leaves the run
without class labels (class agreement is then skipped, and says why).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from rdmbench.errors import ConfigError

PLACEHOLDER = "{class}"


def read_file(path: str) -> list[str]:
    """One prompt per line; blank lines and lines starting with # are skipped."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"prompts file {str(file)!r} does not exist", key="prompts_file")
    lines = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def class_ids(classes: list[str] | None, class_names: tuple[str, ...]) -> list[int]:
    """Indices of ``classes`` (names, matched ignoring case) in ``class_names``; None: all of them.
    An unknown name raises a ConfigError naming the closest one."""
    if classes is None:
        return list(range(len(class_names)))
    lowered = {n.lower(): i for i, n in enumerate(class_names)}
    ids = []
    for name in classes:
        if str(name).lower() not in lowered:
            from rdmbench.registry import unknown_choice

            raise ConfigError(unknown_choice("class", name, list(class_names)), key="classes")
        ids.append(lowered[str(name).lower()])
    return ids


def expand(prompts: list[str | dict[str, str]], class_names: tuple[str, ...] | None,
           classes: list[str] | None = None) -> tuple[list[str], np.ndarray | None]:
    """(prompts with templates filled per class, their class labels or None when any is unlabelled)."""
    names = tuple(class_names or ())
    if any(isinstance(p, dict) or PLACEHOLDER in p for p in prompts) and not names:
        raise ConfigError(f"a prompt holds {PLACEHOLDER} or names its class, and the dataset names no classes",
                          key="prompts")
    ids = class_ids(classes, names) if names else []
    texts: list[str] = []
    labels: list[int] = []
    for prompt in prompts:
        if isinstance(prompt, dict):
            texts.append(prompt["text"])
            labels += class_ids([prompt["class"]], names)
        elif PLACEHOLDER in prompt:
            texts += [prompt.replace(PLACEHOLDER, names[i]) for i in ids]
            labels += ids
        else:
            texts.append(prompt)
            labels.append(mentioned_class(prompt, names))
    return texts, (np.asarray(labels, np.int64) if labels and min(labels) >= 0 else None)


def problem(prompts: list[str | dict[str, str]], class_names: tuple[str, ...] | None,
            classes: list[str] | None = None) -> str | None:
    """What ``expand`` would refuse, as one line naming the key (None: fine): a mode's ``check_classes``."""
    try:
        expand(prompts, class_names, classes)
    except ConfigError as exc:
        return f"{exc.key}: {exc.detail}" if exc.key else exc.detail
    return None


def mentioned_class(prompt: str, class_names: tuple[str, ...]) -> int:
    """The one class whose name the prompt mentions (whole words, ignoring case), else -1."""
    found, text = set(), prompt.lower()
    for i in sorted(range(len(class_names)), key=lambda i: -len(class_names[i])):
        pattern = r"(?<!\w)" + re.escape(class_names[i].lower()) + r"(?!\w)"
        if re.search(pattern, text):
            found.add(i)
            text = re.sub(pattern, " ", text)  # "ankle boot" is not also a "boot"
    return found.pop() if len(found) == 1 else -1
