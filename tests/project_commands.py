"""project.yml commands as the tests run them: a command's script line with
its ${vars.*} filled in."""
import shlex
import sys
from pathlib import Path
from typing import List

import srsly

ROOT = Path(__file__).resolve().parents[1]


def project_script(name: str, **project_vars: str) -> List[str]:
    """The arguments of a project.yml command's (one-line) script, ${vars.*}
    filled in (project defaults, then `project_vars`), `python` this one."""
    project = srsly.read_yaml(ROOT / "project.yml")
    values = {**project["vars"], **project_vars}
    (command,) = [c for c in project["commands"] if c["name"] == name]
    (line,) = command["script"]
    for key, value in values.items():
        line = line.replace("${vars.%s}" % key, str(value))
    args = shlex.split(line)
    return [sys.executable if args[0] == "python" else args[0]] + args[1:]
