# %% [markdown]
# # The report card: discovered manifolds against the baselines
#
# Every direction finder (GANSpace, SeFa, InterFaceGAN, the masked Jacobian line and loop) is run at the same
# strength K·c as the discovered chain and scored by the same metrics. A method of your own joins by
# registering it here.

# %% tags=["parameters"]
REGIONS = ["mouth"]
SEEDS = [0]
STRENGTHS = [1]
METHODS = None       # None: every default method (and the one registered below)
EPOCHS = None
N_FRAMES = None
STORE = "runs/methods"

# %% [markdown]
# ## A method of your own
# A method gets a context (`ctx.G`, `ctx.w_ref`, `ctx.mask`, `ctx.layers`, `ctx.k`, `ctx.seed`, ...) and returns
# candidate directions and their names; the toolkit picks one (the oracle), scales it to equal strength and
# renders the run. Random directions are the floor every method should beat.

# %%
import numpy as np

import mgm_analysis as mgm


def random_directions(ctx):
    """k random unit directions in w, the same on every free layer"""
    d = np.random.default_rng(ctx.seed).standard_normal((ctx.k, ctx.w_ref.shape[-1]))
    return d / np.linalg.norm(d, axis=1, keepdims=True), [f"R{i}" for i in range(ctx.k)]


mgm.register_method("random", random_directions, description="random unit directions in w (a floor)")

# %%
from mgm_analysis.finders.registry import default_methods

methods = METHODS or [*default_methods(), "random"]
settings = {k: v for k, v in {"epochs": EPOCHS, "n_frames": N_FRAMES}.items() if v is not None}
table = mgm.compare_methods(regions=REGIONS, seeds=SEEDS, strengths=STRENGTHS, methods=methods, out=STORE,
                            quiet=True, **settings)
cols = [c for c in ("method", "region", "strength", "locality", "semantic_locality", "spread", "inside_path",
                    "jump_ratio") if c in table.columns]
table[cols]

# %% [markdown]
# ## Look at the best baseline beside the discovered run

# %%
store = mgm.open_store(STORE)
found = store.runs(kind="discover")[0]
found

# %%
line = store.runs(kind="baseline", method="jacobian")
line[0] if line else "no jacobian run in this store"
