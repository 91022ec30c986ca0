"""Widgets that work in the static book (no kernel), and the Sphinx hook serving their JavaScript.

`image_slider` precomputes every frame and links a slider to a Stack of images on the
browser side (`jslink`), so the executed notebook's saved widget state is all the static
site needs. `setup` is a Sphinx extension (listed in book/_config.yml): when the build has
vendored the widget and MathJax JavaScript from npm (`rcdm_lib.pipeline.vendor_js`), the
site loads them from `_static/vendor/` and works offline; otherwise the public CDN is used.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

# Files that `rcdm_lib.pipeline.vendor_js` writes under the vendor root: `static/` is served
# as _static/, `extra/` is copied to the site root. The html-manager must sit at the root
# under its npm name: its bundle loads its fonts and chunks from
# <page folder>/@jupyter-widgets/html-manager/dist/ (the module path resolved by RequireJS).
REQUIRE_JS = "static/vendor/requirejs/require.js"
EMBED_AMD_JS = "extra/@jupyter-widgets/html-manager/dist/embed-amd.js"
MATHJAX_JS = "static/vendor/mathjax/tex-mml-chtml.js"
# ipywidgets 8's html-manager typesets widget labels with the MathJax 2 API
# (MathJax.Hub.Queue); the book loads MathJax 3, which has none. Deferred after MathJax.
MATHJAX_HUB_SHIM = """if (window.MathJax && !window.MathJax.Hub) {
  window.MathJax.Hub = {Queue: function (job) {
    var el = job && job[2];
    if (el && window.MathJax.typesetPromise) { window.MathJax.typesetPromise([el]).catch(function () {}); }
  }};
}
"""


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 [H, W, 3] -> PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def image_slider(frames: list[np.ndarray], labels: list[str], description: str = "alpha"):
    """A slider over precomputed uint8 [H, W, 3] frames that works without a kernel.

    The slider's value is linked in the browser to the selected index of a Stack of Image
    widgets and of a Stack of labels (ipywidgets 8), so moving it in the static site shows
    the corresponding frame.
    """
    import ipywidgets as w

    if len(frames) != len(labels) or len(frames) < 2:
        raise ValueError(f"image_slider needs at least 2 frames with one label each, got "
                         f"{len(frames)} frames and {len(labels)} labels")
    h, wd = frames[0].shape[:2]
    images = [w.Image(value=png_bytes(f), format="png", width=wd, height=h) for f in frames]
    stack = w.Stack(images, selected_index=0)
    text = w.Stack([w.HTML(f"<code>{lab}</code>") for lab in labels], selected_index=0)
    slider = w.IntSlider(value=0, min=0, max=len(frames) - 1, step=1, description=description,
                         readout=False, continuous_update=True)
    w.jslink((slider, "value"), (stack, "selected_index"))
    w.jslink((slider, "value"), (text, "selected_index"))
    return w.VBox([w.HBox([slider, text]), stack])


def image_menus(panels, menus: list[tuple[str, list[str]]]):
    """Dropdown menus over precomputed uint8 [H, W, 3] panels that work without a kernel.

    panels is nested one level per menu: panels[i][j]... is the panel for option i of the
    first menu, option j of the second, and so on. Each level is a Stack; every menu is
    linked in the browser (`jslink`) to the selected index of all Stacks of its level.
    """
    import ipywidgets as w

    if not menus:
        raise ValueError("image_menus needs at least one (description, options) menu")
    levels: list[list] = [[] for _ in menus]

    def build(node, depth: int, path: tuple):
        if depth == len(menus):
            img = np.asarray(node)
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] != 3:
                raise ValueError(f"panel {list(path)} must be uint8 [H, W, 3], got {img.dtype} {list(img.shape)}")
            return w.Image(value=png_bytes(img), format="png", width=img.shape[1], height=img.shape[0])
        desc, options = menus[depth]
        if len(node) != len(options):
            raise ValueError(f"panels{''.join(f'[{i}]' for i in path)} has {len(node)} entries but menu "
                             f"{desc!r} has {len(options)} options")
        stack = w.Stack([build(c, depth + 1, path + (i,)) for i, c in enumerate(node)], selected_index=0)
        levels[depth].append(stack)
        return stack

    root = build(panels, 0, ())
    drops = [w.Dropdown(options=list(opts), index=0, description=desc) for desc, opts in menus]
    for drop, stacks in zip(drops, levels):
        for stack in stacks:
            w.jslink((drop, "index"), (stack, "selected_index"))
    return w.VBox([w.HBox(drops), root])


def vendor_root() -> Path:
    """Where the build finds vendored JavaScript (holding `static/` and `extra/`)."""
    from rcdm_lib.config import REPO_ROOT

    return Path(os.environ.get("RCDM_BOOK_VENDOR", REPO_ROOT / ".cache" / "book-js"))


def _static(rel: str) -> str:
    """A vendor file's path relative to _static/, which Sphinx prefixes to relative scripts."""
    return rel[len("static/"):] if rel.startswith("static/") else "../" + rel[len("extra/"):]


def _configure(app, config) -> None:
    root = vendor_root()
    if all((root / f).is_file() for f in (REQUIRE_JS, EMBED_AMD_JS, MATHJAX_JS)):
        config.html_static_path = list(config.html_static_path) + [str(root / "static")]
        config.html_extra_path = list(config.html_extra_path) + [str(root / "extra")]
        config.nb_ipywidgets_js = {_static(REQUIRE_JS): {}, _static(EMBED_AMD_JS): {}}
        config.mathjax_path = _static(MATHJAX_JS)
        mode = f"local copies from {root}"
    else:
        mode = "the public CDN (npm was not available at build time)"
    title = os.environ.get("RCDM_BOOK_TITLE")
    if title:
        config.html_title = title
    from sphinx.util import logging

    logging.getLogger(__name__).info(f"rcdm_lib.widgets: widget and MathJax JavaScript from {mode}")


def _dedupe_assets(app, pagename, templatename, context, doctree) -> None:
    # Sphinx 7.4 re-adds inline scripts registered after Builder.init() with filename ''
    # instead of None, so they appear twice (sphinx-thebe's `const THEBE_JS_URL`,
    # togglebutton's selector); a repeated `const` is a SyntaxError in the browser console.
    for key in ("script_files", "css_files"):
        if key in context:
            seen, unique = set(), []
            for asset in context[key]:
                ident = (getattr(asset, "filename", asset) or "",
                         tuple(sorted((getattr(asset, "attributes", None) or {}).items())))
                if ident not in seen:
                    seen.add(ident)
                    unique.append(asset)
            context[key][:] = unique   # in place: later handlers add to this same list


def _add_shim(app) -> None:
    static = Path(app.outdir) / "_static"
    static.mkdir(parents=True, exist_ok=True)
    (static / "rcdm-mathjax-hub.js").write_text(MATHJAX_HUB_SHIM)
    app.add_js_file("rcdm-mathjax-hub.js", priority=900, defer="defer")


def setup(app):
    app.connect("config-inited", _configure, priority=400)
    app.connect("builder-inited", _add_shim)
    app.connect("html-page-context", _dedupe_assets, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
