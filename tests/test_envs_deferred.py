"""jaxrl.envs defers the plotting modules gymnax imports only to render: the real module runs on
first use, once, and behaves as if imported normally."""

import os
import subprocess
import sys

from conftest import ROOT

from jaxrl.envs import _deferred


def test_defer_runs_the_module_on_first_attribute_use_only(tmp_path, monkeypatch):
    pkg = tmp_path / "deferpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "plot.py").write_text("import builtins\nbuiltins._deferpkg_runs = "
                                 "getattr(builtins, '_deferpkg_runs', 0) + 1\n"
                                 "def color(i):\n    return 10 * i\n")
    (tmp_path / "deferuser.py").write_text("import deferpkg.plot as dp\n"
                                           "from deferpkg import plot\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import builtins

    assert _deferred.defer("deferpkg.plot")
    assert not _deferred.defer("deferpkg.plot")  # already (stood in for): nothing done
    assert not _deferred.defer("no_such_module_here")
    import deferuser  # what gymnax does: `import X as Y` / `from P import X` do not run it

    assert getattr(builtins, "_deferpkg_runs", 0) == 0
    assert deferuser.dp.color(3) == 30 and deferuser.plot.color(2) == 20
    assert builtins._deferpkg_runs == 1
    import deferpkg.plot as real  # after first use: the real module, not re-executed

    assert type(real) is type(sys) and real.color is deferuser.dp.color
    assert sys.modules["deferpkg.plot"] is real and builtins._deferpkg_runs == 1
    del builtins._deferpkg_runs
    for m in ("deferpkg.plot", "deferpkg", "deferuser"):
        sys.modules.pop(m, None)


def test_importing_jaxrl_envs_does_not_load_seaborn_or_pyplot_and_render_still_works():
    code = ("import sys, jaxrl.envs\n"
            "assert 'seaborn.palettes' not in sys.modules and 'scipy.stats' not in sys.modules\n"
            "assert 'matplotlib._pylab_helpers' not in sys.modules\n"
            "from gymnax.environments.misc import pong\n"
            "pal = pong.sns.color_palette('cubehelix', 3)\n"
            "import seaborn\n"
            "assert seaborn.color_palette('cubehelix', 3) == pal and 'seaborn.palettes' in "
            "sys.modules\n"
            "import matplotlib.pyplot as plt\n"
            "assert plt.figure is sys.modules['matplotlib.pyplot'].figure\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "MPLBACKEND": "Agg"})
    assert out.returncode == 0, out.stderr[-2000:]
