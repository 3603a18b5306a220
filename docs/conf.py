"""Sphinx configuration of cogviz's documentation site (built by `make docs`, see docs/build.py).

Sphinx with MyST-NB renders the guide (Markdown), the API reference (autodoc and autosummary, from
the docstrings) and the lessons (executed notebooks, never re-executed here: docs/build.py runs them
once, or hands over notebooks the tests executed). Everything the pages load is local, MathJax
included, so the site works offline.
"""
project = "cogviz"
author = "the cogviz developers"
copyright = "the cogviz developers"

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.napoleon",
              "sphinx.ext.viewcode"]
# .rst first: autosummary writes the API pages in reStructuredText
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "build.py", "**.ipynb_checkpoints"]

# the lessons arrive executed (docs/build.py): showing them is this build's only job
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

autosummary_generate = True
# each object on the page of the module that defines it (re-exports in __all__ would repeat it)
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_inherit_docstrings = False  # a subclass of PIL's Image would show PIL's references
add_module_names = False

html_theme = "furo"
html_title = "cogviz"
html_static_path = ["_static"]
html_theme_options = {"navigation_with_keys": True}
# MathJax 2.7 from the local copy docs/build.py puts in _static (jupyter-server-mathjax's, which
# ships the combined TeX/MathML config and the STIX-Web fonts only), so nothing is fetched
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
html_show_sourcelink = False
suppress_warnings = ["mystnb.unknown_mime_type"]
html_css_files = ["cogviz.css"]
mathjax2_config = {
    # MathJax 2's blank fallback font points at about:blank, which Chromium reports as a failed fetch
    "HTML-CSS": {"availableFonts": ["STIX-Web"], "preferredFont": "STIX-Web", "webFont": "STIX-Web",
                 "styles": {"@font-face": {"font-family": "MathJax_Blank", "src": "local('MathJax_Blank')"}}},
    "tex2jax": {"processClass": "tex2jax_process|mathjax_process|math|output_area"},
}
html_favicon = "_static/favicon.png"  # the badge sample, 32 px
