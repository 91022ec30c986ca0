"""Chapters stay thin: at most 60 code lines outside the parameters cell, no helper defined in two chapters, and no
chapter that tells a representation by its name or builds the built-in dataset itself (it asks the run object)."""
from __future__ import annotations

import ast
import re

from rcdm_lib.pipeline import NOTEBOOK_DIR, notebook_sources

LIMIT = 60


def code_lines(src) -> list[str]:
    """Non-blank, non-comment lines of the code cells, the parameters cell excluded (the count the issue uses)."""
    out, kind = [], None
    for line in src.read_text().splitlines():
        if line.startswith("# %%"):
            kind = "m" if "markdown" in line else ("p" if "parameters" in line else "c")
        elif kind == "c" and line.strip() and not line.lstrip().startswith("#"):
            out.append(line)
    return out


def test_code_line_counter_counts_what_the_issue_counts(tmp_path):
    src = tmp_path / "01_x.py"
    src.write_text('# %% [markdown]\n# prose\nnot = "code"\n# %% tags=["parameters"]\na = 1\n'
                   "# %%\nimport x\n\n# a comment\ny = 2  # trailing\n")
    assert code_lines(src) == ["import x", "y = 2  # trailing"]


def test_every_chapter_has_at_most_60_code_lines():
    counts = {s.stem: len(code_lines(s)) for s in notebook_sources(notebook_dir=NOTEBOOK_DIR)}
    over = {name: n for name, n in counts.items() if n > LIMIT}
    assert len(counts) == 15 and not over, f"chapters over {LIMIT} code lines: {over}"


def test_no_helper_is_defined_in_two_chapters():
    seen: dict[str, str] = {}
    for src in notebook_sources(notebook_dir=NOTEBOOK_DIR):
        code = "\n".join(code_lines(src))
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                assert node.name not in seen, f"{node.name} is defined in {seen[node.name]} and {src.stem}"
                seen[node.name] = src.stem


def test_chapters_on_the_run_never_tell_a_representation_by_its_name():
    welded = re.compile(r"FactorShapes\(|load_profile_models|endswith\([\"'](_backbone|_head)|startswith\([\"']supervised")
    for src in notebook_sources(notebook_dir=NOTEBOOK_DIR):
        hits = [line for line in code_lines(src) if welded.search(line)]
        assert not hits, f"{src.stem}: {hits}"
